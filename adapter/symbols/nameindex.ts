// Name index of a module's DWARF, built on first need by skimming the DIE stream without
// building DIE objects: names -> DIE offsets for functions (with code), inlined instances,
// globals, types and enumerators. Lookups then parse only the units that hold the answers.
import { CompUnit, Dwarf, DW, formSize, skipForm } from './dwarf';
import type { Accelerator } from './accel';
import { Cursor, cstrAt } from './reader';

export interface NameIndex {
  funcs: Map<string, number[]>;
  inlined: Map<string, number[]>;
  globals: Map<string, number[]>;
  types: Map<string, number[]>;
  enumerators: Map<string, number[]>;
}

const NAME = DW.AT_name, LINK = DW.AT_linkage_name, MLINK = DW.AT_MIPS_linkage_name;

export function buildNameIndex(dwarf: Dwarf): NameIndex {
  const idx: NameIndex = { funcs: new Map(), inlined: new Map(), globals: new Map(), types: new Map(), enumerators: new Map() };
  for (const cu of dwarf.units) {
    if (cu.unitType !== 1 && cu.unitType !== 3 && cu.unitType !== 2 && cu.unitType !== 4) continue;
    try { skimUnit(dwarf, cu, idx); } catch (e) { if (process.env.CRYO_SYMBOLS_DEBUG) console.error(`name index: unit 0x${cu.offset.toString(16)}: ${(e as Error).message}`); }
  }
  return idx;
}

/**
 * A module's names: with an accelerator table only the units it lists for a name are skimmed
 * (and each unit once); without one, every unit is skimmed on the first lookup.
 */
export class ModuleNames {
  private full?: NameIndex;
  private partial: NameIndex = { funcs: new Map(), inlined: new Map(), globals: new Map(), types: new Map(), enumerators: new Map() };
  private skimmed = new Set<CompUnit>();
  /** `isFunctionSymbol(name, addr)`: the symbol table has a function `name` at link-time `addr` */
  constructor(private dwarf: Dwarf, readonly accel?: Accelerator, private isFunctionSymbol?: (name: string, addr: bigint) => boolean) {}

  private probed = new Map<string, { funcs: number[]; inlined: number[] } | null>();

  lookup(kind: keyof NameIndex, name: string): number[] {
    if (!this.accel) {
      if (!this.full && (kind === 'funcs' || kind === 'inlined')) {
        let r = this.probed.get(name);
        if (r === undefined) { r = this.probe(name); this.probed.set(name, r); }
        if (r) return r[kind];
      }
      if (!this.full) this.full = buildNameIndex(this.dwarf);
      return this.full[kind].get(name) ?? [];
    }
    for (const u of this.accel.unitsFor(name)) this.skim(u);
    return this.partial[kind].get(name) ?? [];
  }

  private skim(u: CompUnit): void {
    if (this.skimmed.has(u)) return;
    this.skimmed.add(u);
    try { skimUnit(this.dwarf, u, this.partial); } catch { /* unreadable unit */ }
  }

  /**
   * A function looked up by a plain name without an index: the DIEs that can carry the name
   * are found by searching .debug_info for references to the name's string (native byte
   * search) instead of skimming every unit. A reference that is the DW_AT_name of a function
   * with code of its own (not inlined, not a declaration) is the answer itself; any other
   * reference (a declaration, an abstract instance, a variable of the same name) has its unit
   * skimmed; bytes that only look like a reference (no DIE puts a name there) are passed over. null when the DWARF keeps names in ways the
   * search cannot see (string offsets tables, 64-bit DWARF, split units).
   */
  private probe(name: string): { funcs: number[]; inlined: number[] } | null {
    const d = this.dwarf;
    const s = d.s;
    if (!this.isFunctionSymbol || !/^[A-Za-z_]\w*$/.test(name) || !s.info || !s.str || s.strOffsets) return null;
    if (d.units.some((u) => u.offSize !== 4 || u.unitType !== 1)) return null;
    const info = s.info;
    // the name itself, and (C++) template instances named `name<...>`
    const text = Buffer.from(name + '\0', 'latin1'), tmpl = Buffer.from(name + '<', 'latin1');
    const refs: number[] = [];
    for (const t of [text, tmpl]) for (let o = s.str.indexOf(t); o >= 0; o = s.str.indexOf(t, o + 1)) refs.push(o);
    // (position of the value, whether it is DW_FORM_strp)
    const hits: [number, boolean][] = [];
    const pat = Buffer.alloc(4);
    for (const o of refs) {
      pat.writeUInt32LE(o);
      for (let p = info.indexOf(pat); p >= 0; p = info.indexOf(pat, p + 1)) hits.push([p, true]);
    }
    for (const t of [text, tmpl]) for (let p = info.indexOf(t); p >= 0; p = info.indexOf(t, p + 1)) hits.push([p, false]);
    const units = d.units;
    const unitAt = (p: number): CompUnit | undefined => {
      let lo = 0, hi = units.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1, u = units[mid];
        if (p < u.offset) hi = mid - 1; else if (p >= u.end) lo = mid + 1; else return u;
      }
      return undefined;
    };
    const own = new Set<number>();
    for (const [p, strp] of hits) {
      const u = unitAt(p);
      if (!u || this.skimmed.has(u)) continue;
      const o = nameOwner(u, p, strp);
      // a C function (C++ names have scopes and templates the index spells out) whose entry
      // the symbol table confirms under this name
      if (o.k === 'own' && !u.isCxx && this.isFunctionSymbol(name, o.lowPc)) own.add(o.off + u.linkBase);
      else if (o.k !== 'none') this.skim(u);
    }
    const funcs = new Set([...own, ...(this.partial.funcs.get(name) ?? [])]);
    return { funcs: [...funcs].sort((a, b) => a - b), inlined: this.partial.inlined.get(name) ?? [] };
  }

  /** units skimmed so far (for tests and diagnostics) */
  get skimmedUnits(): number { return this.full ? this.dwarf.units.length : this.skimmed.size; }
}

/**
 * What holds the name at `p`: 'own' with the DIE's offset and entry when it is the DW_AT_name
 * of a function with code of its own (DW_AT_low_pc) that nothing else refers to by name (no
 * DW_AT_inline, not a declaration or a specification); 'other' for any other DIE's name; 'none' when no DIE has
 * its name there (bytes that only look like a reference). A DIE's abbreviation code is a few
 * bytes before its name: each candidate start is decoded until one places a name exactly at p.
 */
function nameOwner(cu: CompUnit, p: number, strp: boolean): { k: 'own'; off: number; lowPc: bigint } | { k: 'other' } | { k: 'none' } {
  const info = cu.dwarf.s.info!;
  const abbrevs = cu.dwarf.abbrevTable(cu.abbrevOffset);
  for (let start = p - 1; start >= Math.max(cu.dieOffset, p - 32); start--) {
    const c = new Cursor(info, start, cu.end);
    const ab = abbrevs.get(c.uleb());
    if (!ab) continue;
    let at = -1, other = false, lowPc: bigint | undefined;
    try {
      for (const sp of ab.specs) {
        let form = sp.form;
        if (form === 0x16) form = c.uleb();
        if ((sp.at === NAME || sp.at === LINK || sp.at === MLINK) && c.pos === p && form === (strp ? 0x0e : 0x08)) { at = p; if (sp.at !== NAME) other = true; }
        if (sp.at === DW.AT_low_pc && form === 0x01) lowPc = info.readBigUInt64LE(c.pos);
        if (sp.at === DW.AT_inline || sp.at === DW.AT_declaration || sp.at === DW.AT_specification || sp.at === DW.AT_abstract_origin) other = true;
        if (c.pos > p && at < 0) break;
        skipForm(c, form, cu, sp.implicit);
      }
    } catch { continue; }
    if (at === p) return ab.tag === DW.TAG_subprogram && lowPc !== undefined && !other ? { k: 'own', off: start, lowPc } : { k: 'other' };
  }
  return { k: 'none' };
}

function add(m: Map<string, number[]>, k: string, v: number): void {
  const l = m.get(k);
  if (l) { if (l[l.length - 1] !== v) l.push(v); } else m.set(k, [v]);
}

/**
 * An abbreviation as the skim reads it: attributes in arrays, the size of each fixed-size value
 * (-1 when variable), the size of all values when every one is fixed (-1 otherwise), and
 * whether a DIE of it carries anything the index reads.
 */
interface SkimAbbrev {
  tag: number; children: boolean; ats: number[]; forms: number[]; sizes: number[]; fixed: number; wanted: boolean;
  /** inside functions only functions and inlined instances are read */
  readInFunction: boolean;
}

const WANTED_AT = new Set<number>([NAME, LINK, MLINK, DW.AT_specification, DW.AT_abstract_origin, DW.AT_low_pc, DW.AT_ranges, DW.AT_enum_class]);

function skimAbbrevs(dwarf: Dwarf, cu: CompUnit): SkimAbbrev[] {
  const out: SkimAbbrev[] = [];
  for (const [code, ab] of dwarf.abbrevTable(cu.abbrevOffset)) {
    const ats: number[] = [], forms: number[] = [], sizes: number[] = [];
    let fixed = 0, wanted = false;
    for (const sp of ab.specs) {
      const size = sp.form === 0x16 ? -1 : formSize(sp.form, cu);
      ats.push(sp.at); forms.push(sp.form); sizes.push(size);
      fixed = size < 0 || fixed < 0 ? -1 : fixed + size;
      if (WANTED_AT.has(sp.at)) wanted = true;
    }
    const readInFunction = ab.tag === DW.TAG_subprogram || ab.tag === DW.TAG_inlined_subroutine;
    out[code] = { tag: ab.tag, children: ab.children, ats, forms, sizes, fixed, wanted, readInFunction };
  }
  return out;
}

const ROOT = -2;

/** What the scan of a unit keeps (see scanUnit). */
interface Records {
  // per record: DIE offset, tag, parent record (ROOT: the unit, -1: none), name and linkage
  // name (string references, -1: none), specification and abstract origin (DIE offsets, -1:
  // none), whether it has code, whether an enum is an enum class
  offs: number[]; tags: number[]; parents: number[]; names: number[]; links: number[];
  specs: number[]; origins: number[]; codes: boolean[]; enumClasses: boolean[];
  // inlined instances: DIE offset and abstract origin
  inlOffs: number[]; inlOrigins: number[];
}

/** A string reference: 4 * offset + section (0 .debug_str, 1 inline in .debug_info, 2 .debug_line_str). */
function strRef(c: Cursor, form: number, cu: CompUnit, end: number): number {
  switch (form) {
    case 0x08: { const p = c.pos; let z = c.buf.indexOf(0, p); if (z < 0 || z > end) z = end; c.pos = z + 1; return p * 4 + 1; }
    case 0x0e: return c.off(cu.offSize) * 4;
    case 0x1f: return c.off(cu.offSize) * 4 + 2;
    case 0x1a: return strxRef(cu, c.uleb());
    case 0x25: return strxRef(cu, c.u8());
    case 0x26: return strxRef(cu, c.u16());
    case 0x27: return strxRef(cu, Number(c.uN(3)));
    case 0x28: return strxRef(cu, c.u32());
  }
  skipForm(c, form, cu);
  return -1;
}

function strxRef(cu: CompUnit, i: number): number {
  const so = cu.dwarf.s.strOffsets!;
  return (cu.offSize === 8 ? Number(so.readBigUInt64LE(cu.strOffsetsBase + i * 8)) : so.readUInt32LE(cu.strOffsetsBase + i * 4)) * 4;
}

/** A DIE reference (-1 for forms that are not one within .debug_info). */
function dieRef(c: Cursor, form: number, cu: CompUnit): number {
  switch (form) {
    case 0x11: return cu.offset + c.u8();
    case 0x12: return cu.offset + c.u16();
    case 0x13: return cu.offset + c.u32();
    case 0x14: return cu.offset + c.u64n();
    case 0x15: return cu.offset + c.uleb();
    case 0x10: return c.off(cu.offSize);
  }
  skipForm(c, form, cu);
  return -1;
}

/**
 * One pass over a unit's DIEs with no DIE objects and no strings: for each DIE outside
 * functions (and for nested functions) a record of numbers in parallel arrays (names as
 * references into the string sections), for each inlined instance its origin. DIEs inside
 * functions are skipped by size unless they are functions or inlined instances.
 *
 * This loop runs before the JIT has optimized it (a fresh process asks once), so it is kept
 * small (its optimized code is ready sooner) and plain: the position in a local, one-byte
 * abbreviation codes read inline, DIEs of all-fixed-size values skipped in one step.
 */
function scanUnit(cu: CompUnit, abbrevs: SkimAbbrev[]): Records {
  const info = cu.dwarf.s.info!;
  const c = new Cursor(info, cu.dieOffset, cu.end);
  const end = cu.end;
  const offs: number[] = [], tags: number[] = [], parents: number[] = [], names: number[] = [], links: number[] = [];
  const specs: number[] = [], origins: number[] = [], codes: boolean[] = [], enumClasses: boolean[] = [];
  const inlOffs: number[] = [], inlOrigins: number[] = [];
  // open DIEs with children: record (or -1), whether their children are inside a function
  const stRec: number[] = [], stKids: boolean[] = [];
  let depth = 0;
  let first = true;
  let pos = cu.dieOffset;
  while (pos < end) {
    const off = pos;
    let code = info[pos++];
    if (code >= 0x80) { c.pos = pos - 1; code = c.uleb(); pos = c.pos; }
    if (code === 0) { if (depth) depth--; if (!depth && !first) break; continue; }
    const ab = abbrevs[code];
    if (!ab) throw new Error(`bad abbrev ${code}`);
    const tag = ab.tag;
    const parentInSub = depth > 0 && stKids[depth - 1];
    if (first || !ab.wanted || (parentInSub && !ab.readInFunction)) {
      // nothing to read: skip the values
      if (ab.fixed >= 0) pos += ab.fixed;
      else {
        c.pos = pos;
        const forms = ab.forms, sizes = ab.sizes;
        for (let i = 0; i < forms.length; i++) {
          const sz = sizes[i];
          if (sz >= 0) c.pos += sz;
          else { let form = forms[i]; if (form === 0x16) form = c.uleb(); skipForm(c, form, cu); }
        }
        pos = c.pos;
      }
      let rec = -1;
      if (first) { first = false; rec = ROOT; }
      else if (!parentInSub) {
        rec = offs.length;
        offs.push(off); tags.push(tag); parents.push(depth ? stRec[depth - 1] : -1);
        names.push(-1); links.push(-1); specs.push(-1); origins.push(-1); codes.push(false); enumClasses.push(false);
      }
      if (ab.children) { stRec[depth] = rec; stKids[depth] = parentInSub || tag === DW.TAG_subprogram; depth++; }
      continue;
    }
    c.pos = pos;
    let name = -1, linkage = -1, spec = -1, origin = -1, codeRange = false, enumClass = false;
    const ats = ab.ats, forms = ab.forms, sizes = ab.sizes;
    for (let i = 0; i < ats.length; i++) {
      let form = forms[i];
      if (form === 0x16) form = c.uleb();
      const at = ats[i];
      if (at === NAME) { name = strRef(c, form, cu, end); continue; }
      if (at === LINK || at === MLINK) { linkage = strRef(c, form, cu, end); continue; }
      if (at === DW.AT_specification) { spec = dieRef(c, form, cu); continue; }
      if (at === DW.AT_abstract_origin) { origin = dieRef(c, form, cu); continue; }
      if (at === DW.AT_low_pc || at === DW.AT_ranges) codeRange = true;
      else if (at === DW.AT_enum_class) enumClass = form === 0x19 || (form === 0x0c && info[c.pos] !== 0);
      const sz = sizes[i];
      if (sz >= 0 && form === forms[i]) c.pos += sz; else skipForm(c, form, cu);
    }
    pos = c.pos;
    if (tag === DW.TAG_inlined_subroutine && origin !== -1) { inlOffs.push(off); inlOrigins.push(origin); }
    let rec = -1;
    if (!parentInSub || tag === DW.TAG_subprogram) {
      rec = offs.length;
      // nested functions (abstract origins referenced from inline instances) have no parent
      offs.push(off); tags.push(tag); parents.push(parentInSub || !depth ? -1 : stRec[depth - 1]);
      names.push(name); links.push(linkage); specs.push(spec); origins.push(origin); codes.push(codeRange); enumClasses.push(enumClass);
    }
    if (ab.children) { stRec[depth] = rec; stKids[depth] = parentInSub || tag === DW.TAG_subprogram; depth++; }
  }
  return { offs, tags, parents, names, links, specs, origins, codes, enumClasses, inlOffs, inlOrigins };
}

/** Skims a unit (scanUnit), then reads the names of the records that are indexed (once each). */
function skimUnit(mainDwarf: Dwarf, unit: CompUnit, idx: NameIndex): void {
  // a skeleton's names are in its split unit; offsets are stored with the unit's link base
  const cu = mainDwarf.splitOf(unit) ?? unit;
  const dwarf = cu.dwarf;
  const base = cu.linkBase;
  const addL = (m: Map<string, number[]>, k: string, v: number) => add(m, k, v + base);
  void cu.unitDie; // sets the unit's bases
  const cxx = cu.isCxx;
  const s = dwarf.s;
  const info = s.info!;
  const end = cu.end;
  const { offs, tags, parents, names, links, specs, origins, codes, enumClasses, inlOffs, inlOrigins } = scanUnit(cu, skimAbbrevs(dwarf, cu));

  // strings of the records, read on first need
  const strCache = new Map<number, string>();
  const str = (ref: number): string | undefined => {
    if (ref < 0) return undefined;
    let v = strCache.get(ref);
    if (v === undefined) {
      const kind = ref % 4, o = (ref - kind) / 4;
      v = kind === 0 ? cstrAt(s.str!, o) : kind === 2 ? cstrAt(s.lineStr!, o) : cstrInUnit(info, o, end);
      strCache.set(ref, v);
    }
    return v;
  };
  // the record of a DIE offset (records are in offset order)
  const recAt = (o: number): number => {
    let lo = 0, hi = offs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1, v = offs[mid];
      if (v === o) return mid;
      if (v < o) lo = mid + 1; else hi = mid - 1;
    }
    return -1;
  };

  // qualified names, as Module's qualifiedName computes them
  const qcache: (string | undefined)[] = [];
  const foreign = (o: number): string | undefined => {
    const d = dwarf.dieAt(o);
    return d?.name;
  };
  const qname = (r: number, depth = 0): string => {
    const hit = qcache[r];
    if (hit !== undefined) return hit;
    let out: string;
    const sref = specs[r] !== -1 ? specs[r] : names[r] === -1 && origins[r] !== -1 ? origins[r] : -1;
    if (sref !== -1 && depth < 8) {
      const t = recAt(sref);
      out = t >= 0 ? qname(t, depth + 1) : foreign(sref) ?? '';
    } else if (!cxx) out = str(links[r]) ?? str(names[r]) ?? '';
    else {
      const parts = [str(names[r]) ?? ''];
      let p = parents[r];
      while (p >= 0) {
        const pt = tags[p];
        if (pt === DW.TAG_namespace) parts.unshift(str(names[p]) ?? '(anonymous namespace)');
        else if (pt === DW.TAG_structure_type || pt === DW.TAG_class_type || pt === DW.TAG_union_type) parts.unshift(str(names[p]) ?? '{unnamed}');
        else if (pt === DW.TAG_subprogram) break;
        p = parents[p];
      }
      out = parts.join('::');
    }
    qcache[r] = out;
    return out;
  };
  const bare = (r: number, depth = 0): string | undefined => {
    if (names[r] !== -1) return str(names[r]);
    const sref = origins[r] !== -1 ? origins[r] : specs[r];
    if (sref === -1 || depth > 8) return undefined;
    const t = recAt(sref);
    return t >= 0 ? bare(t, depth + 1) : foreign(sref);
  };
  const linkageOf = (r: number, depth = 0): string | undefined => {
    if (links[r] !== -1) return str(links[r]);
    const sref = origins[r] !== -1 ? origins[r] : specs[r];
    if (sref === -1 || depth > 8) return undefined;
    const t = recAt(sref);
    return t >= 0 ? linkageOf(t, depth + 1) : undefined;
  };
  // which scopes are walked: the unit, namespaces, structs and classes (as Module did)
  const walked = (r: number): boolean => {
    let p = parents[r];
    if (p === ROOT) return true;
    while (p >= 0) {
      const pt = tags[p];
      if (pt !== DW.TAG_namespace && !((pt === DW.TAG_structure_type || pt === DW.TAG_class_type) && str(names[p]))) return false;
      if (parents[p] === ROOT) return true;
      p = parents[p];
    }
    return false;
  };
  const prefixOf = (r: number): string => {
    const parts: string[] = [];
    let p = parents[r];
    while (p >= 0) {
      parts.unshift(tags[p] === DW.TAG_namespace ? (str(names[p]) ?? '(anonymous namespace)') : (str(names[p]) ?? ''));
      p = parents[p];
    }
    return parts.length ? parts.join('::') + '::' : '';
  };
  for (let r = 0; r < offs.length; r++) {
    if (parents[r] === -1) continue;
    const tag = tags[r];
    if (tag === DW.TAG_enumerator) {
      const e = parents[r];
      const n = str(names[r]);
      if (e < 0 || tags[e] !== DW.TAG_enumeration_type || !n || !walked(e)) continue;
      const pre = prefixOf(e);
      const en = str(names[e]);
      addL(idx.enumerators, enumClasses[e] && en ? `${pre}${en}::${n}` : pre + n, offs[r]);
      continue;
    }
    switch (tag) {
      case DW.TAG_subprogram: {
        if (!codes[r] || !walked(r)) break;
        const q = qname(r);
        addL(idx.funcs, q, offs[r]);
        const b = bare(r);
        if (b && b !== q) addL(idx.funcs, b, offs[r]);
        const ln = linkageOf(r);
        if (ln) addL(idx.funcs, ln, offs[r]);
        const lt = q.indexOf('<');
        if (lt > 0) addL(idx.funcs, q.slice(0, lt), offs[r]);
        break;
      }
      case DW.TAG_variable: {
        if (!walked(r)) break;
        const n = str(names[r]);
        if (specs[r] !== -1) addL(idx.globals, qname(r), offs[r]);
        else if (n) addL(idx.globals, prefixOf(r) + n, offs[r]);
        break;
      }
      case DW.TAG_structure_type: case DW.TAG_class_type: case DW.TAG_union_type: case DW.TAG_enumeration_type: case DW.TAG_typedef: case DW.TAG_base_type: {
        const n = str(names[r]);
        if (n && walked(r)) addL(idx.types, specs[r] !== -1 ? qname(r) : prefixOf(r) + n, offs[r]);
        break;
      }
    }
  }
  for (let i = 0; i < inlOffs.length; i++) {
    const off = inlOffs[i], origin = inlOrigins[i];
    const o = recAt(origin);
    let q: string | undefined, b: string | undefined;
    if (o >= 0) { q = qname(o); b = bare(o); }
    else { const d = dwarf.dieAt(origin); q = d?.name; b = q; }
    if (!q) continue;
    addL(idx.inlined, q, off);
    const lt = q.indexOf('<');
    if (lt > 0) addL(idx.inlined, q.slice(0, lt), off);
    if (b && b !== q) addL(idx.inlined, b, off);
  }
}

/** A string stored in the DIE stream (DW_FORM_string), ending at the unit's end at the latest. */
function cstrInUnit(info: Buffer, pos: number, end: number): string {
  let z = info.indexOf(0, pos);
  if (z < 0 || z > end) z = end;
  return info.toString('utf8', pos, z);
}
