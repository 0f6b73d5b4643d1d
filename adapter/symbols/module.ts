// One loaded ELF object (executable or shared library) with its debug information:
// lines, functions, CFI. Addresses given to and returned by Module are runtime addresses
// (link-time address + bias).
import { existsSync } from 'node:fs';
import { basename, dirname, posix } from 'node:path';
import { CfiTable, FrameRules } from './cfi';
import { CompUnit, Die, DW, Dwarf, DwarfSections } from './dwarf';
import { ElfFile, findDebugFile, pickSymbol, PT_LOAD, STT_FUNC, STT_GNU_IFUNC } from './elf';
import { LineRow, LineTable, lineFiles, parseLineTable } from './line';
import { demangle } from './demangle';
import { ModuleNames, NameIndex } from './nameindex';
import { Accelerator, readDebugNames, readGdbIndex } from './accel';

export interface SourceLocation {
  file: string; line: number; column: number;
}

export class Module {
  readonly elf: ElfFile;
  readonly debugElf?: ElfFile;
  private dwarfCache?: Dwarf | null;
  private ehCache?: CfiTable;
  private dfCache?: CfiTable;
  private lineCache = new Map<CompUnit, LineTable | null>();
  private fileCache = new Map<CompUnit, string[]>();
  private nameSeen = new Map<string, boolean>();
  readonly lo: bigint;
  readonly hi: bigint;
  /** address of the loader's link_map entry for this object (shared libraries) */
  linkMap?: bigint;
  /** the Program this module belongs to (set by Program) */
  program?: unknown;

  constructor(readonly path: string, readonly bias: bigint, elf?: ElfFile) {
    this.elf = elf ?? new ElfFile(path);
    if (!this.elf.section('.debug_info')) {
      const dbg = findDebugFile(this.elf);
      if (dbg) { try { this.debugElf = new ElfFile(dbg); } catch { /* ignore */ } }
    }
    let lo: bigint | undefined, hi = 0n;
    for (const s of this.elf.segments) {
      if (s.type !== PT_LOAD) continue;
      if (lo === undefined || s.vaddr < lo) lo = s.vaddr;
      const e = s.vaddr + BigInt(s.memsz);
      if (e > hi) hi = e;
    }
    this.lo = (lo ?? 0n) + bias;
    this.hi = hi + bias;
  }

  get name(): string { return basename(this.path); }
  contains(addr: bigint): boolean { return addr >= this.lo && addr < this.hi; }

  /** ELF file holding the DWARF sections. */
  get dwarfElf(): ElfFile { return this.debugElf ?? this.elf; }

  get dwarf(): Dwarf | null {
    if (this.dwarfCache !== undefined) return this.dwarfCache;
    const e = this.dwarfElf;
    const g = (n: string) => e.sectionData(n);
    const s = lazySections(g);
    // .debug_info inflated (if compressed) only as far as its units are read
    const info = e.sectionPartial('.debug_info');
    Object.defineProperty(s, 'info', { value: info?.data ?? null, enumerable: true });
    if (info) s.ensureInfo = (end) => info.ensure(end);
    this.dwarfCache = s.info && s.abbrev ? new Dwarf(s) : null;
    if (this.dwarfCache) {
      this.dwarfCache.owner = this;
      this.dwarfCache.openSplit = (sk) => this.openSplit(sk, s);
      const types = g('.debug_types');
      if (types) {
        // the same sections, but the type units as .debug_info (the others still read on first use)
        const t: DwarfSections = Object.create(s);
        Object.defineProperty(t, 'info', { value: types });
        Object.defineProperty(t, 'ensureInfo', { value: undefined });
        this.dwarfCache.types = new Dwarf(t, true);
        this.dwarfCache.types.owner = this;
      }
    }
    return this.dwarfCache;
  }

  /** Opens the .dwo file of a skeleton unit (DW_AT_dwo_name, relative to DW_AT_comp_dir). */
  private openSplit(sk: CompUnit, main: DwarfSections): Dwarf | undefined {
    const root = sk.unitDie;
    const name = root.str(DW.AT_dwo_name) ?? root.str(DW.AT_GNU_dwo_name);
    if (!name) return undefined;
    const candidates = [posix.isAbsolute(name) ? name : posix.join(sk.compDir, name), posix.join(dirname(this.path), posix.basename(name))];
    for (const p of candidates) {
      if (!existsSync(p)) continue;
      try {
        const e = new ElfFile(p);
        const g = (n: string) => e.sectionData(n + '.dwo');
        const d = new Dwarf({
          info: g('.debug_info'), abbrev: g('.debug_abbrev'), str: g('.debug_str'), lineStr: main.lineStr,
          strOffsets: g('.debug_str_offsets'), addr: main.addr, rnglists: g('.debug_rnglists'), loclists: g('.debug_loclists'),
          ranges: null, loc: g('.debug_loc'), line: main.line, aranges: null,
        });
        d.owner = this;
        return d;
      } catch { /* try the next place */ }
    }
    return undefined;
  }

  /** The unit holding the DIEs of a unit found by address (its split unit for skeletons). */
  dieUnit(cu: CompUnit): CompUnit {
    return this.dwarf?.splitOf(cu) ?? cu;
  }

  // ---- CFI
  private get eh(): CfiTable {
    if (!this.ehCache) {
      const sec = this.elf.section('.eh_frame');
      this.ehCache = new CfiTable(sec ? this.elf.sectionData('.eh_frame') : null, sec?.addr ?? 0n, true);
    }
    return this.ehCache;
  }
  private get debugFrame(): CfiTable {
    if (!this.dfCache) {
      const d = this.elf.sectionData('.debug_frame') ?? this.debugElf?.sectionData('.debug_frame') ?? null;
      this.dfCache = new CfiTable(d, 0n, false);
    }
    return this.dfCache;
  }
  frameRules(pc: bigint): FrameRules | undefined {
    const a = pc - this.bias;
    return this.eh.rulesAt(a) ?? this.debugFrame.rulesAt(a);
  }

  // ---- ELF symbols
  /** `sym+off` for an address, with the demangled name. */
  elfSymbolAt(addr: bigint): { name: string; offset: bigint; addr: bigint } | undefined {
    const a = addr - this.bias;
    const s = pickSymbol([...this.elf.symbolsAt(a), ...(this.debugElf?.symbolsAt(a) ?? [])]);
    if (!s) return undefined;
    const name = s.name.endsWith('@plt') ? demangle(s.name.slice(0, -4)) + '@plt' : demangle(s.name);
    return { name, offset: addr - this.bias - s.value, addr: s.value + this.bias };
  }
  /** Runtime addresses of the ELF symbols with this name (functions and data; `code` only functions). */
  elfSymbols(name: string, code = false): bigint[] {
    const out = new Set<bigint>();
    for (const e of [this.elf, this.debugElf]) {
      if (!e) continue;
      for (const s of e.symbolsByName(name)) {
        if (s.type === STT_FUNC || s.type === STT_GNU_IFUNC || (!code && s.type === 1)) out.add(s.value + this.bias);
      }
    }
    return [...out];
  }

  /** Whether a symbol table of this object names `name` (functions, data, TLS). */
  definesName(name: string): boolean {
    for (const e of [this.elf, this.debugElf]) if (e && e.symbolsByName(name).some((s) => s.type === STT_FUNC || s.type === STT_GNU_IFUNC || s.type === 1 || s.type === 6)) return true;
    return false;
  }

  // ---- units and lines
  unitFor(addr: bigint): CompUnit | undefined {
    return this.dwarf?.unitForAddr(addr - this.bias);
  }

  lineTable(unit: CompUnit): LineTable | null {
    const cu = unit.skeleton ?? unit;
    if (this.lineCache.has(cu)) return this.lineCache.get(cu)!;
    let t: LineTable | null = null;
    const off = cu.unitDie.num(DW.AT_stmt_list);
    if (off !== undefined && this.dwarf!.s.line) {
      t = parseLineTable(this.dwarf!.s, off, cu.compDir, cu.name);
    }
    this.lineCache.set(cu, t);
    return t;
  }

  unitFiles(unit: CompUnit): string[] {
    const cu = unit.skeleton ?? unit;
    let f = this.fileCache.get(cu);
    if (!f) {
      const off = cu.unitDie.num(DW.AT_stmt_list);
      f = off !== undefined && this.dwarf!.s.line ? lineFiles(this.dwarf!.s, off, cu.compDir, cu.name) : [];
      this.fileCache.set(cu, f);
    }
    return f;
  }

  /** The line table row governing addr (as gdb's find_pc_line), with the end of its range. */
  rowFor(addr: bigint): { row: LineRow; end: bigint; table: LineTable; cu: CompUnit } | undefined {
    const cu = this.unitFor(addr);
    if (!cu) return undefined;
    const t = this.lineTable(cu);
    if (!t) return undefined;
    const a = Number(addr - this.bias);
    const addrs = t.addrs, n = t.count;
    let best = -1;
    // the first sequence covering a, then its last row at or before a
    const seqs = t.sequences();
    for (let k = 0; k < seqs.start.length; k++) {
      const seqStart = seqs.start[k], i = seqs.end[k];
      if (i > seqStart && a >= addrs[seqStart] && a < addrs[i]) {
        if (seqs.sorted[k]) {
          let lo = seqStart, hi = i - 1;
          while (lo <= hi) { const mid = (lo + hi) >> 1; if (addrs[mid] <= a) { best = mid; lo = mid + 1; } else hi = mid - 1; }
        } else for (let j = seqStart; j < i; j++) if (addrs[j] <= a) best = j; else break;
        break;
      }
    }
    if (best < 0) return undefined;
    // among rows at the same address prefer the last is_stmt one
    const at = addrs[best];
    let pick = best;
    if (!t.isStmt(best)) {
      for (let i = best; i >= 0 && addrs[i] === at && !t.endSeq(i); i--) if (t.isStmt(i)) { pick = i; break; }
    }
    let end = best;
    for (let i = best + 1; i < n; i++) { if (addrs[i] > at) { end = i; break; } }
    return { row: t.row(pick), end: t.addr(end) + this.bias, table: t, cu };
  }

  sourceAt(addr: bigint): SourceLocation | undefined {
    const r = this.rowFor(addr);
    if (!r || r.row.line === 0) return undefined;
    return { file: r.table.files[r.row.file] ?? '??', line: r.row.line, column: r.row.col };
  }

  /** Units whose line table names a file matching `file` (full path or a path suffix). */
  unitsForFile(file: string): { cu: CompUnit; fileIdx: number[] }[] {
    const d = this.dwarf;
    if (!d || !this.mayNameFile(file)) return [];
    const out: { cu: CompUnit; fileIdx: number[] }[] = [];
    for (const cu of d.units) {
      const files = this.unitFiles(cu);
      const idx: number[] = [];
      files.forEach((f, i) => { if (fileMatches(f, file)) idx.push(i); });
      if (idx.length) out.push({ cu, fileIdx: idx });
    }
    return out;
  }

  /**
   * Whether a line table of this object can name a file called like `file`: the names a
   * line table holds are bytes of .debug_line, .debug_line_str or .debug_str (and, before
   * DWARF 5, the unit's own name, which may be inline in .debug_info), so a file whose
   * base name is in none of them is not here. One byte search instead of reading every
   * unit's header: the loader's debug file has 222 units, 24 ms to read, and a breakpoint
   * in the program asks it at every launch.
   */
  private mayNameFile(file: string): boolean {
    const base = posix.basename(file);
    let v = this.nameSeen.get(base);
    if (v === undefined) {
      const s = this.dwarf!.s;
      const b = Buffer.from(base);
      const holds = (x: Buffer | null | undefined) => !!x && x.indexOf(b) >= 0;
      const wholeInfo = () => {
        s.ensureInfo?.(Infinity);
        return s.info;
      };
      v = holds(s.line) || holds(s.lineStr) || holds(s.str) || (!onlyDwarf5Lines(s.line) && holds(wholeInfo()));
      this.nameSeen.set(base, v);
    }
    return v;
  }

  // ---- functions
  /** The innermost subprogram DIE (not inlined) containing addr. */
  functionAt(addr: bigint): Die | undefined {
    const cu = this.unitFor(addr);
    if (!cu) return undefined;
    const a = Number(addr - this.bias);
    const du = this.dieUnit(cu);
    // the unit's functions' ranges, read once without building the unit's DIE tree
    // when several subprograms cover the address (assembler aliases), gdb ends up with the last
    const find = (t: { off: number[]; lo: number[]; hi: number[] }) => {
      let found = -1;
      for (let i = 0; i < t.lo.length; i++) if (a >= t.lo[i] && a < t.hi[i]) found = t.off[i];
      return found;
    };
    let found = find(du.walkedFunctionRanges());
    // functions of classes local to a function (lambdas) are looked for only where no other is
    if (found < 0) found = find(du.walkedFunctionRanges(true));
    return found < 0 ? undefined : du.dieAtKnown(found);
  }

  /** Chain of DIEs containing addr: subprogram, then nested lexical blocks / inlined subroutines. */
  scopeChain(addr: bigint): Die[] {
    const fn = this.functionAt(addr);
    if (!fn) return [];
    const a = addr - this.bias;
    const chain = [fn];
    let cur: Die | undefined = fn;
    while (cur) {
      let next: Die | undefined;
      for (const ch of cur.children) {
        if (ch.tag === DW.TAG_lexical_block || ch.tag === DW.TAG_inlined_subroutine) {
          const r = ch.ranges();
          if (r.length ? inRanges(r, a) : false) { next = ch; break; }
        }
      }
      if (next) chain.push(next);
      cur = next;
    }
    return chain;
  }

  private index?: ModuleNames;
  /** the module's name lookups (through .gdb_index or .debug_names when present) */
  get names(): ModuleNames {
    if (!this.index) {
      const d = this.dwarf!;
      const e = this.dwarfElf;
      let accel: Accelerator | undefined;
      try {
        const gi = e.sectionData('.gdb_index');
        const dn = e.sectionData('.debug_names');
        accel = gi ? readGdbIndex(gi, d) : dn ? readDebugNames(dn, e.sectionData('.debug_str'), d) : undefined;
      } catch { accel = undefined; }
      const isFunctionSymbol = (name: string, addr: bigint) => this.elf.hasFunctionSymbol(name, addr) || !!this.debugElf?.hasFunctionSymbol(name, addr);
      this.index = new ModuleNames(d, accel, isFunctionSymbol);
    }
    return this.index;
  }
  private diesOf(kind: keyof NameIndex, name: string): Die[] {
    if (!this.dwarf) return [];
    const out: Die[] = [];
    // index offsets start DIEs: no need to build the unit's tree to read them
    for (const o of this.names.lookup(kind, name)) { const d = this.dwarf.dieAtKnown(o); if (d) out.push(d); }
    return out;
  }

  functionsNamed(name: string): Die[] {
    return this.diesOf('funcs', name);
  }
  /** Inlined instances (DW_TAG_inlined_subroutine) of a function. */
  inlinedNamed(name: string): Die[] {
    return this.diesOf('inlined', name);
  }
  /** Entry address (runtime) of an inlined instance: DW_AT_entry_pc, else its lowest address. */
  entryPc(d: Die): bigint | undefined {
    const e = d.attr(DW.AT_entry_pc);
    const r = d.ranges();
    if (e) {
      if (e.cls === 1 /* Addr */) return (e.v as bigint) + this.bias;
      const lo = d.attr(DW.AT_low_pc)?.v as bigint | undefined ?? r[0]?.[0];
      if (lo !== undefined) return lo + BigInt(e.v as number) + this.bias;
    }
    const lo = d.attr(DW.AT_low_pc)?.v as bigint | undefined ?? r[0]?.[0];
    return lo === undefined ? undefined : lo + this.bias;
  }
  enumeratorsNamed(name: string): Die[] {
    return this.diesOf('enumerators', name);
  }
  globalsNamed(name: string): Die[] {
    return this.diesOf('globals', name);
  }
  typesNamed(name: string): Die[] {
    return this.diesOf('types', name);
  }
}

export function inRanges(r: [bigint, bigint][], a: bigint): boolean {
  for (const [lo, hi] of r) if (a >= lo && a < hi) return true;
  return false;
}

/** Whether every line table in .debug_line is DWARF 5 or later (whose file names are all
 * in the line header); false when unsure. */
function onlyDwarf5Lines(line: Buffer | null | undefined): boolean {
  if (!line) return false;
  for (let o = 0; o < line.length;) {
    if (o + 6 > line.length) return false;
    let len = line.readUInt32LE(o), hdr = 4;
    if (len === 0xffffffff) {
      if (o + 14 > line.length) return false;
      len = Number(line.readBigUInt64LE(o + 4));
      hdr = 12;
    }
    if (len < 2 || line.readUInt16LE(o + hdr) < 5) return false;
    o += hdr + len;
  }
  return true;
}

export function fileMatches(full: string, want: string): boolean {
  if (full === want) return true;
  if (want.startsWith('/')) return false;
  return full.endsWith('/' + want);
}

/** C++ qualified name of a DIE (namespaces and classes), the plain name in C. */
export function qualifiedName(die: Die): string {
  // a definition's scope is its declaration's (out-of-line methods, types in type units)
  const decl = die.ref(DW.AT_specification);
  if (decl) return qualifiedName(decl);
  const origin = die.ref(DW.AT_abstract_origin);
  if (origin && !die.has(DW.AT_name)) return qualifiedName(origin);
  const name = die.str(DW.AT_name) ?? '';
  if (!die.cu.isCxx) return die.str(DW.AT_linkage_name) ?? name;
  const parts: string[] = [name];
  let p = die.parent;
  while (p && p.tag !== DW.TAG_compile_unit) {
    if (p.has(DW.AT_specification)) { parts.unshift(qualifiedName(p)); break; }
    if (p.tag === DW.TAG_namespace) parts.unshift(p.str(DW.AT_name) ?? '(anonymous namespace)');
    else if (p.tag === DW.TAG_structure_type || p.tag === DW.TAG_class_type || p.tag === DW.TAG_union_type) parts.unshift(p.str(DW.AT_name) ?? '{unnamed}');
    else if (p.tag === DW.TAG_subprogram) break;
    p = p.parent;
  }
  return parts.join('::');
}

export function fileExists(p: string): boolean { return existsSync(p); }

const SECTION_NAMES: Record<Exclude<keyof DwarfSections, 'ensureInfo'>, string> = {
  info: '.debug_info', abbrev: '.debug_abbrev', str: '.debug_str', lineStr: '.debug_line_str',
  strOffsets: '.debug_str_offsets', addr: '.debug_addr', rnglists: '.debug_rnglists', loclists: '.debug_loclists',
  ranges: '.debug_ranges', loc: '.debug_loc', line: '.debug_line', aranges: '.debug_aranges',
};

/** The DWARF sections, each read (and decompressed: debug files are often zlib-compressed)
 * on first use: a stack through libc needs its .debug_info, not its location lists. */
function lazySections(g: (name: string) => Buffer | null): DwarfSections {
  const s = {} as DwarfSections;
  for (const [key, name] of Object.entries(SECTION_NAMES) as [Exclude<keyof DwarfSections, 'ensureInfo'>, string][]) {
    Object.defineProperty(s, key, {
      configurable: true,
      enumerable: true,
      get: () => {
        const v = g(name);
        Object.defineProperty(s, key, { value: v, enumerable: true });
        return v;
      },
    });
  }
  return s;
}
