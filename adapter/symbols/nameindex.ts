// Name index of a module's DWARF, built on first need by skimming the DIE stream without
// building DIE objects: names -> DIE offsets for functions (with code), inlined instances,
// globals, types and enumerators. Lookups then parse only the units that hold the answers.
import { CompUnit, Dwarf, DW, skipForm } from './dwarf';
import type { Accelerator } from './accel';
import { Cursor, cstrAt } from './reader';

export interface NameIndex {
  funcs: Map<string, number[]>;
  inlined: Map<string, number[]>;
  globals: Map<string, number[]>;
  types: Map<string, number[]>;
  enumerators: Map<string, number[]>;
}

interface Rec {
  off: number; tag: number; parent: number; name?: string; linkage?: string; spec?: number; origin?: number;
  code: boolean; enumClass: boolean; declaration: boolean;
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
  constructor(private dwarf: Dwarf, readonly accel?: Accelerator) {}

  lookup(kind: keyof NameIndex, name: string): number[] {
    if (!this.accel) {
      if (!this.full) this.full = buildNameIndex(this.dwarf);
      return this.full[kind].get(name) ?? [];
    }
    for (const u of this.accel.unitsFor(name)) {
      if (this.skimmed.has(u)) continue;
      this.skimmed.add(u);
      try { skimUnit(this.dwarf, u, this.partial); } catch { /* unreadable unit */ }
    }
    return this.partial[kind].get(name) ?? [];
  }

  /** units skimmed so far (for tests and diagnostics) */
  get skimmedUnits(): number { return this.full ? this.dwarf.units.length : this.skimmed.size; }
}

function add(m: Map<string, number[]>, k: string, v: number): void {
  const l = m.get(k);
  if (l) { if (l[l.length - 1] !== v) l.push(v); } else m.set(k, [v]);
}

function skimUnit(mainDwarf: Dwarf, unit: CompUnit, idx: NameIndex): void {
  // a skeleton's names are in its split unit; offsets are stored with the unit's link base
  const cu = mainDwarf.splitOf(unit) ?? unit;
  const dwarf = cu.dwarf;
  const base = cu.linkBase;
  const addL = (m: Map<string, number[]>, k: string, v: number) => add(m, k, v + base);
  const root = cu.unitDie; // sets the unit's bases
  const cxx = cu.isCxx;
  const s = dwarf.s;
  const info = s.info!;
  const abbrevs = dwarf.abbrevTable(cu.abbrevOffset);
  const c = new Cursor(info, cu.dieOffset, cu.end);
  const recs = new Map<number, Rec>();
  const inlined: { off: number; origin: number }[] = [];
  // stack of open DIEs with children: record offset (or -1), tag, inside a subprogram
  const stack: { off: number; tag: number; inSub: boolean }[] = [];
  const os = cu.offSize;
  const strx = (i: number): string => {
    const so = s.strOffsets!;
    const off = os === 8 ? Number(so.readBigUInt64LE(cu.strOffsetsBase + i * 8)) : so.readUInt32LE(cu.strOffsetsBase + i * 4);
    return cstrAt(s.str!, off);
  };
  let first = true;
  while (c.pos < cu.end) {
    const off = c.pos;
    const code = c.uleb();
    if (code === 0) { stack.pop(); if (!stack.length && !first) break; continue; }
    const ab = abbrevs.get(code);
    if (!ab) throw new Error(`bad abbrev ${code}`);
    let name: string | undefined, linkage: string | undefined, spec: number | undefined, origin: number | undefined;
    let codeRange = false, enumClass = false, declaration = false;
    for (const sp of ab.specs) {
      let form = sp.form;
      if (form === 0x16) form = c.uleb();
      const at = sp.at;
      // strings we want
      if (at === NAME || at === LINK || at === MLINK) {
        let v: string | undefined;
        switch (form) {
          case 0x08: v = c.cstr(); break;
          case 0x0e: v = cstrAt(s.str!, c.off(os)); break;
          case 0x1f: v = cstrAt(s.lineStr!, c.off(os)); break;
          case 0x1a: v = strx(c.uleb()); break;
          case 0x25: v = strx(c.u8()); break;
          case 0x26: v = strx(c.u16()); break;
          case 0x27: v = strx(Number(c.uN(3))); break;
          case 0x28: v = strx(c.u32()); break;
          default: skipForm(c, form, cu, sp.implicit);
        }
        if (at === NAME) name = v; else linkage = v;
        continue;
      }
      if (at === DW.AT_specification || at === DW.AT_abstract_origin) {
        let r: number | undefined;
        switch (form) {
          case 0x11: r = cu.offset + c.u8(); break;
          case 0x12: r = cu.offset + c.u16(); break;
          case 0x13: r = cu.offset + c.u32(); break;
          case 0x14: r = cu.offset + c.u64n(); break;
          case 0x15: r = cu.offset + c.uleb(); break;
          case 0x10: r = c.off(os); break;
          default: skipForm(c, form, cu, sp.implicit);
        }
        if (at === DW.AT_specification) spec = r; else origin = r;
        continue;
      }
      if (at === DW.AT_low_pc || at === DW.AT_ranges) codeRange = true;
      else if (at === DW.AT_enum_class) enumClass = form === 0x19 || (form === 0x0c && info[c.pos] !== 0);
      else if (at === DW.AT_declaration) declaration = form === 0x19 || (form === 0x0c && info[c.pos] !== 0);
      skipForm(c, form, cu, sp.implicit);
    }
    if (first) { first = false; if (ab.children) stack.push({ off, tag: ab.tag, inSub: false }); continue; }
    const parent = stack[stack.length - 1];
    const inSub = !!parent && (parent.inSub || parent.tag === DW.TAG_subprogram);
    if (ab.tag === DW.TAG_inlined_subroutine && origin !== undefined) inlined.push({ off, origin });
    if (!inSub) {
      recs.set(off, { off, tag: ab.tag, parent: parent ? parent.off : -1, name, linkage, spec, origin, code: codeRange, enumClass, declaration });
    } else if (ab.tag === DW.TAG_subprogram) {
      // nested functions / abstract origins referenced from inline instances
      recs.set(off, { off, tag: ab.tag, parent: -1, name, linkage, spec, origin, code: codeRange, enumClass, declaration });
    }
    if (ab.children) stack.push({ off, tag: ab.tag, inSub });
  }
  void root;

  // qualified names, as Module's qualifiedName computes them
  const qcache = new Map<number, string>();
  const foreign = (o: number): string | undefined => {
    const d = dwarf.dieAt(o);
    return d?.name;
  };
  const qname = (r: Rec, depth = 0): string => {
    const hit = qcache.get(r.off);
    if (hit !== undefined) return hit;
    let out: string;
    const sref = r.spec ?? (r.name === undefined ? r.origin : undefined);
    if (sref !== undefined && depth < 8) {
      const t = recs.get(sref);
      out = t ? qname(t, depth + 1) : foreign(sref) ?? '';
    } else if (!cxx) out = r.linkage ?? r.name ?? '';
    else {
      const parts = [r.name ?? ''];
      let p = recs.get(r.parent);
      while (p && p.tag !== DW.TAG_compile_unit && p.off !== cu.dieOffset) {
        if (p.tag === DW.TAG_namespace) parts.unshift(p.name ?? '(anonymous namespace)');
        else if (p.tag === DW.TAG_structure_type || p.tag === DW.TAG_class_type || p.tag === DW.TAG_union_type) parts.unshift(p.name ?? '{unnamed}');
        else if (p.tag === DW.TAG_subprogram) break;
        p = recs.get(p.parent);
      }
      out = parts.join('::');
    }
    qcache.set(r.off, out);
    return out;
  };
  const bare = (r: Rec, depth = 0): string | undefined => {
    if (r.name !== undefined) return r.name;
    const sref = r.origin ?? r.spec;
    if (sref === undefined || depth > 8) return undefined;
    const t = recs.get(sref);
    return t ? bare(t, depth + 1) : foreign(sref);
  };
  const linkageOf = (r: Rec, depth = 0): string | undefined => {
    if (r.linkage !== undefined) return r.linkage;
    const sref = r.origin ?? r.spec;
    if (sref === undefined || depth > 8) return undefined;
    const t = recs.get(sref);
    return t ? linkageOf(t, depth + 1) : undefined;
  };
  // which scopes are walked: the unit, namespaces, structs and classes (as Module did)
  const walked = (r: Rec): boolean => {
    let p = recs.get(r.parent);
    if (r.parent === cu.dieOffset) return true;
    while (p) {
      if (p.tag !== DW.TAG_namespace && !((p.tag === DW.TAG_structure_type || p.tag === DW.TAG_class_type) && p.name)) return false;
      if (p.parent === cu.dieOffset) return true;
      p = recs.get(p.parent);
    }
    return false;
  };
  const prefixOf = (r: Rec): string => {
    const parts: string[] = [];
    let p = recs.get(r.parent);
    while (p && p.off !== cu.dieOffset) {
      parts.unshift(p.tag === DW.TAG_namespace ? (p.name ?? '(anonymous namespace)') : (p.name ?? ''));
      p = recs.get(p.parent);
    }
    return parts.length ? parts.join('::') + '::' : '';
  };
  for (const r of recs.values()) {
    if (r.parent === -1) continue;
    if (r.tag === DW.TAG_enumerator) {
      const e = recs.get(r.parent);
      if (!e || e.tag !== DW.TAG_enumeration_type || !r.name || !walked(e)) continue;
      const pre = prefixOf(e);
      addL(idx.enumerators, e.enumClass && e.name ? `${pre}${e.name}::${r.name}` : pre + r.name, r.off);
      continue;
    }
    if (!walked(r)) continue;
    switch (r.tag) {
      case DW.TAG_subprogram: {
        if (!r.code) break;
        const q = qname(r);
        addL(idx.funcs, q, r.off);
        const b = bare(r);
        if (b && b !== q) addL(idx.funcs, b, r.off);
        const ln = linkageOf(r);
        if (ln) addL(idx.funcs, ln, r.off);
        const lt = q.indexOf('<');
        if (lt > 0) addL(idx.funcs, q.slice(0, lt), r.off);
        break;
      }
      case DW.TAG_variable:
        if (r.spec !== undefined) addL(idx.globals, qname(r), r.off);
        else if (r.name) addL(idx.globals, prefixOf(r) + r.name, r.off);
        break;
      case DW.TAG_structure_type: case DW.TAG_class_type: case DW.TAG_union_type: case DW.TAG_enumeration_type: case DW.TAG_typedef: case DW.TAG_base_type:
        if (r.name) addL(idx.types, r.spec !== undefined ? qname(r) : prefixOf(r) + r.name, r.off);
        break;
    }
  }
  for (const { off, origin } of inlined) {
    const o = recs.get(origin);
    let q: string | undefined, b: string | undefined;
    if (o) { q = qname(o); b = bare(o); }
    else { const d = dwarf.dieAt(origin); q = d?.name; b = q; }
    if (!q) continue;
    addL(idx.inlined, q, off);
    const lt = q.indexOf('<');
    if (lt > 0) addL(idx.inlined, q.slice(0, lt), off);
    if (b && b !== q) addL(idx.inlined, b, off);
  }
}

