// DWARF 4 and 5 .debug_info reader: units, abbreviations, DIEs (parsed per unit on first
// need), attribute forms, range lists and location lists.
import { Cursor, cstrAt } from './reader';

export const DW = {
  // tags
  TAG_array_type: 0x01, TAG_class_type: 0x02, TAG_enumeration_type: 0x04, TAG_formal_parameter: 0x05,
  TAG_label: 0x0a, TAG_lexical_block: 0x0b, TAG_member: 0x0d, TAG_pointer_type: 0x0f, TAG_reference_type: 0x10,
  TAG_compile_unit: 0x11, TAG_structure_type: 0x13, TAG_subroutine_type: 0x15, TAG_typedef: 0x16,
  TAG_union_type: 0x17, TAG_unspecified_parameters: 0x18, TAG_variant: 0x19, TAG_inheritance: 0x1c,
  TAG_inlined_subroutine: 0x1d, TAG_ptr_to_member_type: 0x1f, TAG_subrange_type: 0x21, TAG_base_type: 0x24,
  TAG_const_type: 0x26, TAG_enumerator: 0x28, TAG_subprogram: 0x2e, TAG_template_type_param: 0x2f,
  TAG_template_value_param: 0x30, TAG_variable: 0x34, TAG_volatile_type: 0x35, TAG_namespace: 0x39,
  TAG_imported_module: 0x3a, TAG_unspecified_type: 0x3b, TAG_imported_declaration: 0x08, TAG_restrict_type: 0x37,
  TAG_rvalue_reference_type: 0x42, TAG_atomic_type: 0x47, TAG_call_site: 0x48, TAG_call_site_parameter: 0x49,
  TAG_skeleton_unit: 0x4a, TAG_partial_unit: 0x3c, TAG_type_unit: 0x41,
  TAG_GNU_call_site: 0x4109, TAG_GNU_call_site_parameter: 0x410a,
  // attributes
  AT_sibling: 0x01, AT_location: 0x02, AT_name: 0x03, AT_byte_size: 0x0b, AT_stmt_list: 0x10, AT_low_pc: 0x11,
  AT_high_pc: 0x12, AT_language: 0x13, AT_comp_dir: 0x1b, AT_const_value: 0x1c, AT_inline: 0x20,
  AT_producer: 0x25, AT_prototyped: 0x27, AT_lower_bound: 0x22, AT_count: 0x37, AT_upper_bound: 0x2f,
  AT_abstract_origin: 0x31, AT_accessibility: 0x32, AT_artificial: 0x34, AT_data_member_location: 0x38,
  AT_decl_file: 0x3a, AT_decl_line: 0x3b, AT_declaration: 0x3c, AT_encoding: 0x3e, AT_external: 0x3f,
  AT_frame_base: 0x40, AT_specification: 0x47, AT_type: 0x49, AT_ranges: 0x55, AT_entry_pc: 0x52,
  AT_data_bit_offset: 0x6b, AT_bit_size: 0x0d, AT_bit_offset: 0x0c, AT_call_file: 0x58, AT_call_line: 0x59,
  AT_call_column: 0x57, AT_linkage_name: 0x6e, AT_MIPS_linkage_name: 0x2007, AT_str_offsets_base: 0x72,
  AT_addr_base: 0x73, AT_rnglists_base: 0x74, AT_loclists_base: 0x8c, AT_enum_class: 0x6d, AT_object_pointer: 0x64,
  AT_call_value: 0x7e, AT_call_return_pc: 0x7d, AT_call_origin: 0x7f, AT_GNU_call_site_value: 0x2111,
  AT_decl_column: 0x39, AT_signature: 0x69, AT_dwo_name: 0x76, AT_GNU_dwo_name: 0x2130,
  // base type encodings
  ATE_address: 1, ATE_boolean: 2, ATE_complex_float: 3, ATE_float: 4, ATE_signed: 5, ATE_signed_char: 6,
  ATE_unsigned: 7, ATE_unsigned_char: 8, ATE_UTF: 0x10,
} as const;

// forms
const F = {
  addr: 0x01, block2: 0x03, block4: 0x04, data2: 0x05, data4: 0x06, data8: 0x07, string: 0x08, block: 0x09,
  block1: 0x0a, data1: 0x0b, flag: 0x0c, sdata: 0x0d, strp: 0x0e, udata: 0x0f, ref_addr: 0x10, ref1: 0x11,
  ref2: 0x12, ref4: 0x13, ref8: 0x14, ref_udata: 0x15, indirect: 0x16, sec_offset: 0x17, exprloc: 0x18,
  flag_present: 0x19, strx: 0x1a, addrx: 0x1b, ref_sup4: 0x1c, strp_sup: 0x1d, data16: 0x1e, line_strp: 0x1f,
  ref_sig8: 0x20, implicit_const: 0x21, loclistx: 0x22, rnglistx: 0x23, ref_sup8: 0x24, strx1: 0x25,
  strx2: 0x26, strx3: 0x27, strx4: 0x28, addrx1: 0x29, addrx2: 0x2a, addrx3: 0x2b, addrx4: 0x2c,
  GNU_addr_index: 0x1f01, GNU_str_index: 0x1f02, GNU_ref_alt: 0x1f20, GNU_strp_alt: 0x1f21,
} as const;

export type AttrValue = number | bigint | string | Buffer | boolean;

/** Value classes so callers can tell a location list from an expression, an offset from a constant. */
export const enum VClass { Const, Addr, Block, String, Ref, Flag, SecOffset, LocListX, RngListX }

export interface Attr { at: number; form: number; cls: VClass; v: AttrValue }

export interface Abbrev {
  tag: number; children: boolean;
  specs: { at: number; form: number; implicit?: number }[];
}

export interface DwarfSections {
  info: Buffer | null; abbrev: Buffer | null; str: Buffer | null; lineStr: Buffer | null;
  strOffsets: Buffer | null; addr: Buffer | null; rnglists: Buffer | null; loclists: Buffer | null;
  ranges: Buffer | null; loc: Buffer | null; line: Buffer | null; aranges: Buffer | null;
  /** `info` is valid only as far as this was asked to go (a compressed section inflated on
   * demand); absent: it is whole */
  ensureInfo?: (end: number) => void;
}

const NO_DIES: Die[] = [];

export class Die {
  /** the tree links, set when the unit's tree is built (see CompUnit.allDies) */
  kids?: Die[];
  up?: Die;
  /** the links below this DIE are complete (its subtree was built) */
  subtreeBuilt = false;
  private decoded?: Attr[];
  /** attributes are decoded on first use (from `attrPos` with `abbrev`), or given */
  constructor(readonly cu: CompUnit, readonly offset: number, readonly tag: number, attrs: Attr[] | null, private abbrev?: Abbrev, private attrPos = 0) {
    if (attrs) this.decoded = attrs;
  }
  /** a DIE made alone (CompUnit.dieAtKnown) builds its unit's tree on first use of these */
  get children(): Die[] {
    if (!this.subtreeBuilt && !this.cu.treeBuilt) this.cu.buildSubtree(this);
    return this.kids ?? NO_DIES;
  }
  get parent(): Die | undefined {
    if (this.up === undefined && !this.cu.treeBuilt) this.cu.allDies();
    return this.up;
  }
  get attrs(): Attr[] {
    if (!this.decoded) this.decoded = this.cu.decodeAttrs(this.abbrev!, this.attrPos);
    return this.decoded;
  }
  attr(at: number): Attr | undefined {
    for (const a of this.attrs) if (a.at === at) return a;
    return undefined;
  }
  has(at: number): boolean { return this.attr(at) !== undefined; }
  num(at: number): number | undefined {
    const a = this.attr(at);
    if (!a) return undefined;
    if (typeof a.v === 'number') return a.v;
    if (typeof a.v === 'bigint') return Number(a.v);
    if (typeof a.v === 'boolean') return a.v ? 1 : 0;
    return undefined;
  }
  /** signed interpretation of a constant attribute given its form */
  snum(at: number): number | undefined {
    const a = this.attr(at);
    if (!a) return undefined;
    if (typeof a.v === 'number') {
      if (a.form === F.data1) return (a.v << 24) >> 24;
      if (a.form === F.data2) return (a.v << 16) >> 16;
      if (a.form === F.data4) return a.v | 0;
      return a.v;
    }
    if (typeof a.v === 'bigint') return Number(a.form === F.data8 ? BigInt.asIntN(64, a.v) : a.v);
    return undefined;
  }
  str(at: number): string | undefined {
    const a = this.attr(at);
    return a && typeof a.v === 'string' ? a.v : undefined;
  }
  flag(at: number): boolean { const a = this.attr(at); return !!a && !!a.v; }
  /** Referenced DIE (type, abstract_origin, specification ...). */
  ref(at: number): Die | undefined {
    const a = this.attr(at);
    if (!a || a.cls !== VClass.Ref) return undefined;
    return this.cu.dwarf.dieAt(a.v as number);
  }
  get name(): string | undefined {
    const n = this.str(DW.AT_name);
    if (n !== undefined) return n;
    const o = this.ref(DW.AT_abstract_origin) ?? this.ref(DW.AT_specification);
    return o?.name;
  }
  /** follows abstract_origin/specification for an attribute */
  lookup(at: number): Die | undefined {
    let d: Die | undefined = this;
    for (let i = 0; d && i < 8; i++) {
      if (d.has(at)) return d;
      d = d.ref(DW.AT_abstract_origin) ?? d.ref(DW.AT_specification);
    }
    return undefined;
  }
  get type(): Die | undefined {
    const d = this.lookup(DW.AT_type);
    return d?.ref(DW.AT_type);
  }
  /** [lo, hi) ranges of code, absolute link-time addresses */
  ranges(): [bigint, bigint][] {
    return this.cu.dieRanges(this);
  }
}

export class CompUnit {
  version = 0;
  unitType = 1;
  addrSize = 8;
  offSize = 4;
  abbrevOffset = 0;
  dieOffset = 0;
  end = 0;
  strOffsetsBase = 8;
  /** split DWARF: the .dwo unit of a skeleton, and the skeleton of a split unit */
  split?: CompUnit;
  skeleton?: CompUnit;
  splitChecked = false;
  /** offset added to this unit's DIE offsets when they are stored outside its Dwarf (name index) */
  linkBase = 0;
  /** type units: signature and the offset of the type DIE */
  typeSignature?: bigint;
  typeOffset?: number;
  addrBase = 8;
  rnglistsBase = 0;
  loclistsBase = 0;
  baseAddr = 0n;
  private dies?: Die[];
  private byOffset?: Map<number, Die>;
  /** DIEs made one by one before the tree was built (reused by it, so each offset has one Die) */
  private loose?: Map<number, Die>;
  private skipSizes?: number[];
  private root?: Die;
  private abbrevs?: Map<number, Abbrev>;

  constructor(readonly dwarf: Dwarf, readonly offset: number) {
    const c = new Cursor(dwarf.s.info!, offset);
    let len = c.u32();
    if (len === 0xffffffff) { len = c.u64n(); this.offSize = 8; }
    this.end = c.pos + len;
    this.version = c.u16();
    if (this.version >= 5) {
      this.unitType = c.u8();
      this.addrSize = c.u8();
      this.abbrevOffset = c.off(this.offSize);
      if (this.unitType === 2 || this.unitType === 6) { // type units
        this.typeSignature = c.u64();
        this.typeOffset = this.offset + c.off(this.offSize);
      }
      else if (this.unitType === 4 || this.unitType === 5) c.skip(8); // skeleton/split
    } else {
      this.abbrevOffset = c.off(this.offSize);
      this.addrSize = c.u8();
      if (dwarf.isTypesSection) { // DWARF 4 .debug_types unit
        this.unitType = 2;
        this.typeSignature = c.u64();
        this.typeOffset = this.offset + c.off(this.offSize);
      }
    }
    this.dieOffset = c.pos;
  }

  private getAbbrevs(): Map<number, Abbrev> {
    if (!this.abbrevs) this.abbrevs = this.dwarf.abbrevTable(this.abbrevOffset);
    return this.abbrevs;
  }

  /** The unit DIE only (cheap: does not parse the rest). */
  get unitDie(): Die {
    if (this.root) return this.root;
    const c = new Cursor(this.dwarf.s.info!, this.dieOffset, this.end);
    const code = c.uleb();
    const ab = this.getAbbrevs().get(code);
    if (!ab) throw new Error(`bad DWARF: unknown abbrev ${code} at 0x${this.dieOffset.toString(16)}`);
    const attrs = this.readAttrs(c, ab);
    const die = new Die(this, this.dieOffset, ab.tag, attrs);
    this.root = die;
    // bases used by other forms
    for (const a of attrs) {
      if (a.at === DW.AT_str_offsets_base) this.strOffsetsBase = a.v as number;
      else if (a.at === DW.AT_addr_base) this.addrBase = a.v as number;
      else if (a.at === DW.AT_rnglists_base) this.rnglistsBase = a.v as number;
      else if (a.at === DW.AT_loclists_base) this.loclistsBase = a.v as number;
    }
    this.resolveDeferred(attrs);
    if (this.unitType === 5) { // split unit: its .dwo sections have one contribution each
      if (!attrs.some((a) => a.at === DW.AT_rnglists_base)) this.rnglistsBase = 12;
      if (!attrs.some((a) => a.at === DW.AT_loclists_base)) this.loclistsBase = 12;
    }
    const lo = die.attr(DW.AT_low_pc);
    if (lo) this.baseAddr = lo.v as bigint;
    return die;
  }

  get name(): string { return this.unitDie.str(DW.AT_name) ?? ''; }
  get compDir(): string { return this.unitDie.str(DW.AT_comp_dir) ?? ''; }
  get producer(): string { return this.unitDie.str(DW.AT_producer) ?? ''; }
  get language(): number { return this.unitDie.num(DW.AT_language) ?? 0; }
  get isCxx(): boolean { const l = this.language; return l === 0x4 || l === 0x1a || l === 0x21 || l === 0x2b; }

  get treeBuilt(): boolean { return this.dies !== undefined; }

  /** Sizes of each abbreviation's attribute values when all are of fixed size (else -1), by code. */
  private fixedSizes(): number[] {
    if (this.skipSizes) return this.skipSizes;
    const out: number[] = [];
    for (const [code, ab] of this.getAbbrevs()) {
      let n = 0;
      for (const sp of ab.specs) {
        const sz = sp.form === F.indirect ? -1 : formSize(sp.form, this);
        if (sz < 0) { n = -1; break; }
        n += sz;
      }
      out[code] = n;
    }
    this.skipSizes = out;
    return out;
  }

  /** Moves c past the attribute values of a DIE with this abbrev (by its fixed size when it has one). */
  private skipValues(c: Cursor, ab: Abbrev, code: number, sizes: number[]): void {
    const fixed = sizes[code];
    if (fixed >= 0) { c.pos += fixed; return; }
    for (const sp of ab.specs) {
      let form = sp.form;
      if (form === F.indirect) form = c.uleb();
      skipForm(c, form, this);
    }
  }

  /** All DIEs of the unit, parsed on first call. */
  allDies(): Die[] {
    if (this.dies) return this.dies;
    const root = this.unitDie;
    const dies: Die[] = [root];
    const byOffset = new Map<number, Die>([[root.offset, root]]);
    const abbrevs = this.getAbbrevs();
    const sizes = this.fixedSizes();
    const loose = this.loose;
    const c = new Cursor(this.dwarf.s.info!, this.dieOffset, this.end);
    const rootCode = c.uleb();
    this.readAttrs(c, abbrevs.get(rootCode)!);
    const stack: Die[] = [root];
    root.kids = undefined;
    const end = this.end;
    while (c.pos < end && stack.length) {
      const off = c.pos;
      const code = c.uleb();
      if (code === 0) { stack.pop(); continue; }
      const ab = abbrevs.get(code);
      if (!ab) throw new Error(`bad DWARF: unknown abbrev ${code} at 0x${off.toString(16)}`);
      const attrPos = c.pos;
      this.skipValues(c, ab, code, sizes);
      let die = loose?.get(off);
      if (die) die.kids = undefined; // relinked below as in a subtree built before
      else die = new Die(this, off, ab.tag, null, ab, attrPos);
      const parent = stack[stack.length - 1];
      die.up = parent;
      if (parent.kids) parent.kids.push(die); else parent.kids = [die];
      dies.push(die);
      byOffset.set(off, die);
      if (ab.children) stack.push(die);
    }
    this.dies = dies;
    this.byOffset = byOffset;
    this.loose = undefined;
    return dies;
  }

  dieAt(offset: number): Die | undefined {
    if (!this.byOffset) this.allDies();
    return this.byOffset!.get(offset);
  }

  /** Builds the DIEs below one DIE (made alone) and their links, not the rest of the unit. */
  buildSubtree(top: Die): void {
    const info = this.dwarf.s.info!;
    const abbrevs = this.getAbbrevs();
    const c = new Cursor(info, top.offset, this.end);
    const topCode = c.uleb();
    const topAb = abbrevs.get(topCode);
    if (!topAb || !topAb.children) { top.subtreeBuilt = true; return; }
    const sizes = this.fixedSizes();
    this.skipValues(c, topAb, topCode, sizes);
    const loose = (this.loose ??= new Map());
    const made: Die[] = [top];
    top.kids = undefined;
    const stack: Die[] = [top];
    while (c.pos < this.end && stack.length) {
      const off = c.pos;
      const code = c.uleb();
      if (code === 0) { stack.pop(); continue; }
      const ab = abbrevs.get(code);
      if (!ab) throw new Error(`bad DWARF: unknown abbrev ${code} at 0x${off.toString(16)}`);
      const attrPos = c.pos;
      this.skipValues(c, ab, code, sizes);
      let die = loose.get(off);
      if (die) die.kids = undefined;
      else { die = new Die(this, off, ab.tag, null, ab, attrPos); loose.set(off, die); }
      const parent = stack[stack.length - 1];
      die.up = parent;
      if (parent.kids) parent.kids.push(die); else parent.kids = [die];
      made.push(die);
      if (ab.children) stack.push(die);
    }
    for (const d of made) d.subtreeBuilt = true;
  }

  private fnTable?: { off: number[]; lo: number[]; hi: number[] };
  private fnTableDeep?: { off: number[]; lo: number[]; hi: number[] };
  /**
   * The code ranges of the subprograms found walking from the unit DIE through namespaces,
   * structs, classes and lexical blocks (not into functions), in DIE order (one entry per
   * range: the subprogram's DIE offset, [lo, hi) as numbers). Read in one pass over the DIE
   * stream that jumps over other subtrees by DW_AT_sibling: no Die objects, no attributes
   * decoded but the ranges. `deep` walks into functions too, for the functions of classes
   * defined inside them (a lambda's operator()).
   */
  walkedFunctionRanges(deep = false): { off: number[]; lo: number[]; hi: number[] } {
    if (!deep && this.fnTable) return this.fnTable;
    if (deep && this.fnTableDeep) return this.fnTableDeep;
    const out = { off: [] as number[], lo: [] as number[], hi: [] as number[] };
    const info = this.dwarf.s.info!;
    const abbrevs = this.getAbbrevs();
    const sizes = this.fixedSizes();
    const c = new Cursor(info, this.dieOffset, this.end);
    const end = this.end;
    void this.unitDie; // the unit's bases (addrx, rnglistx)
    // per open DIE with children: whether its children are walked
    const walked: boolean[] = [];
    let first = true;
    while (c.pos < end) {
      const off = c.pos;
      const code = c.uleb();
      if (code === 0) { walked.pop(); if (!walked.length) break; continue; }
      const ab = abbrevs.get(code);
      if (!ab) throw new Error(`bad DWARF: unknown abbrev ${code} at 0x${off.toString(16)}`);
      const inWalk = first || walked[walked.length - 1];
      const isFn = inWalk && ab.tag === DW.TAG_subprogram && !first;
      const childWalk = first || (inWalk && (WALKED_SCOPES.has(ab.tag) || (deep && ab.tag === DW.TAG_subprogram)));
      first = false;
      // the children of a DIE not walked are skipped by its DW_AT_sibling where it has one
      let sibling = -1;
      const fixed = sizes[code];
      if (fixed >= 0 && !isFn && (childWalk || !ab.children)) c.pos += fixed;
      else {
        let lo = -1, hi = -1, hiIsAddr = false, ranges: Attr | undefined;
        for (const sp of ab.specs) {
          let form = sp.form;
          if (form === F.indirect) form = c.uleb();
          const at = sp.at;
          if (at === DW.AT_sibling && (form === F.ref1 || form === F.ref2 || form === F.ref4 || form === F.ref8 || form === F.ref_udata)) {
            sibling = this.offset + (form === F.ref1 ? c.u8() : form === F.ref2 ? c.u16() : form === F.ref4 ? c.u32() : form === F.ref8 ? c.u64n() : c.uleb());
          } else if (isFn && (at === DW.AT_low_pc || at === DW.AT_high_pc || at === DW.AT_ranges)) {
            const a = this.readForm(c, at, form, sp.implicit);
            if (at === DW.AT_ranges) ranges = a;
            else {
              if (a.form === F.addrx) a.v = this.addrx(a.v as number);
              const v = typeof a.v === 'bigint' ? Number(a.v) : typeof a.v === 'number' ? a.v : 0;
              if (at === DW.AT_low_pc) lo = v; else { hi = v; hiIsAddr = a.cls === VClass.Addr; }
            }
          } else skipForm(c, form, this);
        }
        if (isFn) {
          // as dieRanges: low/high pc, else the range list
          if (lo !== -1 && hi !== -1) { out.off.push(off); out.lo.push(lo); out.hi.push(hiIsAddr ? hi : lo + hi); }
          else if (ranges) for (const [l, h] of this.rangeList(ranges)) { out.off.push(off); out.lo.push(Number(l)); out.hi.push(Number(h)); }
        }
      }
      if (!ab.children) continue;
      if (!childWalk && sibling > c.pos && sibling < end) { c.pos = sibling; continue; }
      walked.push(childWalk);
    }
    if (deep) this.fnTableDeep = out; else this.fnTable = out;
    return out;
  }

  /**
   * The DIE at an offset known to start one (from the name index), without building the unit's
   * tree: its attributes are read from there; its parent and children build the tree.
   */
  dieAtKnown(offset: number): Die | undefined {
    if (this.byOffset) return this.byOffset.get(offset);
    if (offset === this.dieOffset) return this.unitDie;
    let d = this.loose?.get(offset);
    if (d) return d;
    if (offset < this.dieOffset || offset >= this.end) return undefined;
    const c = new Cursor(this.dwarf.s.info!, offset, this.end);
    const ab = this.getAbbrevs().get(c.uleb());
    if (!ab) return this.dieAt(offset);
    d = new Die(this, offset, ab.tag, null, ab, c.pos);
    (this.loose ??= new Map()).set(offset, d);
    return d;
  }

  /** Decodes the attributes of a DIE (strings and addresses resolved). */
  decodeAttrs(ab: Abbrev, pos: number): Attr[] {
    const attrs = this.readAttrs(new Cursor(this.dwarf.s.info!, pos, this.end), ab);
    this.resolveDeferred(attrs);
    return attrs;
  }

  private readAttrs(c: Cursor, ab: Abbrev): Attr[] {
    const out: Attr[] = [];
    for (const s of ab.specs) {
      let form = s.form;
      if (form === F.indirect) form = c.uleb();
      out.push(this.readForm(c, s.at, form, s.implicit));
    }
    return out;
  }

  readForm(c: Cursor, at: number, form: number, implicit?: number): Attr {
    const d = this.dwarf;
    switch (form) {
      case F.addr: return { at, form, cls: VClass.Addr, v: c.uN(this.addrSize) };
      case F.block1: return { at, form, cls: VClass.Block, v: c.bytes(c.u8()) };
      case F.block2: return { at, form, cls: VClass.Block, v: c.bytes(c.u16()) };
      case F.block4: return { at, form, cls: VClass.Block, v: c.bytes(c.u32()) };
      case F.block: case F.exprloc: return { at, form, cls: VClass.Block, v: c.bytes(c.uleb()) };
      case F.data1: return { at, form, cls: VClass.Const, v: c.u8() };
      case F.data2: return { at, form, cls: VClass.Const, v: c.u16() };
      case F.data4:
        // DWARF <= 3 used data4 as section offsets; gcc 12 does not for v4/v5
        return { at, form, cls: VClass.Const, v: c.u32() };
      case F.data8: return { at, form, cls: VClass.Const, v: c.u64() };
      case F.data16: return { at, form, cls: VClass.Block, v: c.bytes(16) };
      case F.sdata: return { at, form, cls: VClass.Const, v: c.sleb() };
      case F.udata: return { at, form, cls: VClass.Const, v: c.uleb() };
      case F.implicit_const: return { at, form, cls: VClass.Const, v: implicit ?? 0 };
      case F.string: return { at, form, cls: VClass.String, v: c.cstr() };
      case F.strp: return { at, form, cls: VClass.String, v: cstrAt(d.s.str!, c.off(this.offSize)) };
      case F.line_strp: return { at, form, cls: VClass.String, v: cstrAt(d.s.lineStr!, c.off(this.offSize)) };
      case F.strp_sup: case F.GNU_strp_alt: c.off(this.offSize); return { at, form, cls: VClass.String, v: '<alt>' };
      case F.strx: case F.GNU_str_index: return { at, form: F.strx, cls: VClass.String, v: c.uleb() };
      case F.strx1: return { at, form: F.strx, cls: VClass.String, v: c.u8() };
      case F.strx2: return { at, form: F.strx, cls: VClass.String, v: c.u16() };
      case F.strx3: return { at, form: F.strx, cls: VClass.String, v: Number(c.uN(3)) };
      case F.strx4: return { at, form: F.strx, cls: VClass.String, v: c.u32() };
      case F.addrx: case F.GNU_addr_index: return { at, form: F.addrx, cls: VClass.Addr, v: c.uleb() };
      case F.addrx1: return { at, form: F.addrx, cls: VClass.Addr, v: c.u8() };
      case F.addrx2: return { at, form: F.addrx, cls: VClass.Addr, v: c.u16() };
      case F.addrx3: return { at, form: F.addrx, cls: VClass.Addr, v: Number(c.uN(3)) };
      case F.addrx4: return { at, form: F.addrx, cls: VClass.Addr, v: c.u32() };
      case F.flag: return { at, form, cls: VClass.Flag, v: c.u8() !== 0 };
      case F.flag_present: return { at, form, cls: VClass.Flag, v: true };
      case F.ref1: return { at, form, cls: VClass.Ref, v: this.offset + c.u8() };
      case F.ref2: return { at, form, cls: VClass.Ref, v: this.offset + c.u16() };
      case F.ref4: return { at, form, cls: VClass.Ref, v: this.offset + c.u32() };
      case F.ref8: return { at, form, cls: VClass.Ref, v: this.offset + c.u64n() };
      case F.ref_udata: return { at, form, cls: VClass.Ref, v: this.offset + c.uleb() };
      case F.ref_addr: return { at, form, cls: VClass.Ref, v: this.version <= 2 ? Number(c.uN(this.addrSize)) : c.off(this.offSize) };
      case F.ref_sig8: {
        const sig = c.u64();
        const off = this.dwarf.typeUnitOffset(sig);
        return off === undefined ? { at, form, cls: VClass.Const, v: 0 } : { at, form, cls: VClass.Ref, v: off };
      }
      case F.ref_sup4: c.skip(4); return { at, form, cls: VClass.Const, v: 0 };
      case F.ref_sup8: c.skip(8); return { at, form, cls: VClass.Const, v: 0 };
      case F.GNU_ref_alt: c.off(this.offSize); return { at, form, cls: VClass.Const, v: 0 };
      case F.sec_offset: return { at, form, cls: VClass.SecOffset, v: c.off(this.offSize) };
      case F.loclistx: return { at, form, cls: VClass.LocListX, v: c.uleb() };
      case F.rnglistx: return { at, form, cls: VClass.RngListX, v: c.uleb() };
    }
    throw new Error(`bad DWARF: unsupported form 0x${form.toString(16)} in unit 0x${this.offset.toString(16)}`);
  }

  private resolveDeferred(attrs: Attr[]): void {
    for (const a of attrs) {
      if (a.form === F.strx && typeof a.v === 'number') {
        const so = this.dwarf.s.strOffsets!;
        const off = this.offSize === 8 ? Number(so.readBigUInt64LE(this.strOffsetsBase + a.v * 8)) : so.readUInt32LE(this.strOffsetsBase + a.v * 4);
        a.v = cstrAt(this.dwarf.s.str!, off);
      } else if (a.form === F.addrx && typeof a.v === 'number') {
        a.v = this.addrx(a.v);
      }
    }
  }

  addrx(i: number): bigint {
    return this.dwarf.s.addr!.readBigUInt64LE(this.addrBase + i * this.addrSize);
  }

  /** Code ranges of a DIE (low/high pc or DW_AT_ranges). */
  dieRanges(die: Die): [bigint, bigint][] {
    const lo = die.attr(DW.AT_low_pc), hi = die.attr(DW.AT_high_pc);
    if (lo && hi) {
      const l = lo.v as bigint;
      const h = hi.cls === VClass.Addr ? (hi.v as bigint) : l + BigInt(hi.v as number | bigint);
      return [[l, h]];
    }
    const r = die.attr(DW.AT_ranges);
    if (r) return this.rangeList(r, die === this.root);
    return [];
  }

  rangeList(a: Attr, isUnit = false): [bigint, bigint][] {
    const out: [bigint, bigint][] = [];
    const d = this.dwarf;
    if (this.version >= 5) {
      let off: number;
      const buf = d.s.rnglists!;
      if (a.cls === VClass.RngListX) {
        const idx = a.v as number;
        off = this.rnglistsBase + (this.offSize === 8 ? Number(buf.readBigUInt64LE(this.rnglistsBase + idx * 8)) : buf.readUInt32LE(this.rnglistsBase + idx * 4));
      } else off = a.v as number;
      const c = new Cursor(buf, off);
      let base = isUnit ? 0n : this.baseAddr;
      for (;;) {
        const kind = c.u8();
        if (kind === 0) break;
        switch (kind) {
          case 1: base = this.addrx(c.uleb()); break; // base_addressx
          case 2: { const s = this.addrx(c.uleb()), e = this.addrx(c.uleb()); out.push([s, e]); break; }
          case 3: { const s = this.addrx(c.uleb()); out.push([s, s + BigInt(c.uleb())]); break; }
          case 4: { const s = BigInt(c.uleb()), e = BigInt(c.uleb()); out.push([base + s, base + e]); break; }
          case 5: base = c.u64(); break;
          case 6: { const s = c.u64(), e = c.u64(); out.push([s, e]); break; }
          case 7: { const s = c.u64(); out.push([s, s + BigInt(c.uleb())]); break; }
          default: throw new Error(`bad DWARF: range list entry kind ${kind}`);
        }
      }
    } else {
      const buf = d.s.ranges!;
      const c = new Cursor(buf, a.v as number);
      let base = isUnit ? 0n : this.baseAddr;
      for (;;) {
        const s = c.u64(), e = c.u64();
        if (s === 0n && e === 0n) break;
        if (s === 0xffffffffffffffffn) { base = e; continue; }
        out.push([base + s, base + e]);
      }
    }
    return out.filter(([s, e]) => e > s);
  }

  /**
   * The expression of a location list at a link-time pc, as gdb picks it: the first entry
   * covering pc, or an empty one at pc when pc is its function's entry (`fnEntry`), where GCC
   * puts the location a breakpoint on the function sees first (location views).
   */
  locAt(a: Attr, pc: bigint, fnEntry?: bigint): Buffer | undefined {
    for (const e of this.locList(a)) if ((pc >= e.lo && pc < e.hi) || (e.lo === e.hi && pc === e.lo && pc === fnEntry)) return e.expr;
    return undefined;
  }

  /** Location list entries: [lo, hi) -> expression; `null` on a DIE with an exprloc. */
  locList(a: Attr): { lo: bigint; hi: bigint; expr: Buffer }[] {
    const out: { lo: bigint; hi: bigint; expr: Buffer }[] = [];
    const d = this.dwarf;
    if (this.version >= 5) {
      const buf = d.s.loclists!;
      let off: number;
      if (a.cls === VClass.LocListX) {
        const idx = a.v as number;
        off = this.loclistsBase + (this.offSize === 8 ? Number(buf.readBigUInt64LE(this.loclistsBase + idx * 8)) : buf.readUInt32LE(this.loclistsBase + idx * 4));
      } else off = a.v as number;
      const c = new Cursor(buf, off);
      let base = this.baseAddr;
      const expr = (): Buffer => c.bytes(c.uleb());
      for (;;) {
        const kind = c.u8();
        if (kind === 0) break;
        switch (kind) {
          case 1: base = this.addrx(c.uleb()); break;
          case 2: { const s = this.addrx(c.uleb()), e = this.addrx(c.uleb()); out.push({ lo: s, hi: e, expr: expr() }); break; }
          case 3: { const s = this.addrx(c.uleb()); const l = BigInt(c.uleb()); out.push({ lo: s, hi: s + l, expr: expr() }); break; }
          case 4: { const s = BigInt(c.uleb()), e = BigInt(c.uleb()); out.push({ lo: base + s, hi: base + e, expr: expr() }); break; }
          case 5: out.push({ lo: 0n, hi: 0xffffffffffffffffn, expr: expr() }); break; // default location
          case 6: base = c.u64(); break;
          case 7: { const s = c.u64(), e = c.u64(); out.push({ lo: s, hi: e, expr: expr() }); break; }
          case 8: { const s = c.u64(); const l = BigInt(c.uleb()); out.push({ lo: s, hi: s + l, expr: expr() }); break; }
          default: throw new Error(`bad DWARF: location list entry kind ${kind}`);
        }
      }
    } else {
      const c = new Cursor(d.s.loc!, a.v as number);
      let base = this.baseAddr;
      for (;;) {
        const s = c.u64(), e = c.u64();
        if (s === 0n && e === 0n) break;
        if (s === 0xffffffffffffffffn) { base = e; continue; }
        const len = c.u16();
        out.push({ lo: base + s, hi: base + e, expr: c.bytes(len) });
      }
    }
    return out;
  }
}

/** the scopes functionAt looks into for functions */
const WALKED_SCOPES = new Set<number>([DW.TAG_namespace, DW.TAG_structure_type, DW.TAG_class_type, DW.TAG_lexical_block]);

/** references into other sections (.debug_types, split .dwo units) are kept as offsets from
 * multiples of this base: slot 1 is .debug_types, slots 2.. the split units */
export const LINK_BASE = 2 ** 40;
const TYPES_BASE = LINK_BASE;

export class Dwarf {
  /** the units read so far, in order; `units` reads them all */
  private list: CompUnit[] = [];
  /** where the next unit's header is */
  private scanned = 0;
  /** the module this debug information belongs to (set by Module) */
  owner?: unknown;
  private abbrevCache = new Map<number, Map<number, Abbrev>>();
  private aranges?: { lo: bigint; hi: bigint; cuOff: number }[];
  /** the aranges table completed with the ranges of the units it does not list */
  private completed = false;

  /** DWARF 4 type units live in .debug_types: a second Dwarf over that section */
  types?: Dwarf;
  /** split units (.dwo) opened so far, by slot (offsets from LINK_BASE * (slot + 2)) */
  readonly splits: Dwarf[] = [];
  /** how to open the split unit of a skeleton (set by Module) */
  openSplit?: (skeleton: CompUnit) => Dwarf | undefined;

  constructor(readonly s: DwarfSections, readonly isTypesSection = false) {}

  /** Every unit (the whole section read). */
  get units(): CompUnit[] {
    this.scanTo(Infinity);
    return this.list;
  }

  /** Reads unit headers in order until the unit holding `offset` (and its bytes) is in. */
  private scanTo(offset: number): void {
    const info = this.s.info;
    if (!info) return;
    while (this.scanned <= offset && this.scanned + 11 < info.length) {
      this.s.ensureInfo?.(this.scanned + 24);
      const cu = new CompUnit(this, this.scanned);
      if (cu.end <= this.scanned) break;
      this.s.ensureInfo?.(cu.end);
      this.list.push(cu);
      this.scanned = cu.end;
    }
  }

  private typeSigs?: Map<bigint, number>;
  /** DIE offset of the type a DW_FORM_ref_sig8 signature names (DWARF 5 type units in .debug_info) */
  typeUnitOffset(sig: bigint): number | undefined {
    if (!this.typeSigs) {
      this.typeSigs = new Map();
      for (const u of this.units) if (u.typeSignature !== undefined && u.typeOffset !== undefined) this.typeSigs.set(u.typeSignature, u.typeOffset);
    }
    const own = this.typeSigs.get(sig);
    if (own !== undefined || !this.types) return own;
    const t = this.types.typeUnitOffset(sig);
    return t === undefined ? undefined : t + TYPES_BASE;
  }

  abbrevTable(offset: number): Map<number, Abbrev> {
    let t = this.abbrevCache.get(offset);
    if (t) return t;
    t = new Map();
    const c = new Cursor(this.s.abbrev!, offset);
    for (;;) {
      const code = c.uleb();
      if (code === 0) break;
      const tag = c.uleb();
      const children = c.u8() !== 0;
      const specs: Abbrev['specs'] = [];
      for (;;) {
        const at = c.uleb(), form = c.uleb();
        if (at === 0 && form === 0) break;
        if (form === F.implicit_const) specs.push({ at, form, implicit: c.sleb() });
        else specs.push({ at, form });
      }
      t.set(code, { tag, children, specs });
    }
    this.abbrevCache.set(offset, t);
    return t;
  }

  unitAt(offset: number): CompUnit | undefined {
    this.scanTo(offset);
    let lo = 0, hi = this.list.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const u = this.list[mid];
      if (offset < u.offset) hi = mid - 1;
      else if (offset >= u.end) lo = mid + 1;
      else return u;
    }
    return undefined;
  }

  dieAt(offset: number): Die | undefined {
    return this.route(offset, (d, rel) => d.dieAt(rel), (u, off) => u.dieAt(off));
  }

  /** dieAt for an offset known to start a DIE (from the name index): does not build the unit's tree */
  dieAtKnown(offset: number): Die | undefined {
    return this.route(offset, (d, rel) => d.dieAtKnown(rel), (u, off) => u.dieAtKnown(off));
  }

  /** An offset past LINK_BASE names the type units (slot 1) or a split file (slot 2+). */
  private route(offset: number, other: (d: Dwarf, rel: number) => Die | undefined, own: (u: CompUnit, off: number) => Die | undefined): Die | undefined {
    if (offset >= LINK_BASE) {
      const slot = Math.floor(offset / LINK_BASE);
      const rel = offset - slot * LINK_BASE;
      const d = slot === 1 ? this.types : this.splits[slot - 2];
      return d ? other(d, rel) : undefined;
    }
    const u = this.unitAt(offset);
    return u ? own(u, offset) : undefined;
  }

  /** The split unit holding a skeleton unit's DIEs, opened on first need (undefined if not split). */
  splitOf(cu: CompUnit): CompUnit | undefined {
    if (cu.splitChecked) return cu.split;
    cu.splitChecked = true;
    const root = cu.unitDie;
    if (!root.has(DW.AT_dwo_name) && !root.has(DW.AT_GNU_dwo_name)) return undefined;
    const d = this.openSplit?.(cu);
    if (!d) return undefined;
    const su = d.units.find((u) => u.unitType === 5 || u.unitType === 1);
    if (!su) return undefined;
    su.skeleton = cu;
    su.addrBase = cu.addrBase;
    su.linkBase = LINK_BASE * (this.splits.length + 2);
    this.splits.push(d);
    void su.unitDie; // parse bases; addr_base and the base address come from the skeleton
    su.addrBase = cu.addrBase;
    su.baseAddr = cu.baseAddr;
    cu.split = su;
    return su;
  }

  /**
   * Address ranges -> unit offset, from .debug_aranges; completed by the DIE ranges of the
   * units it does not list only when an address is not found there (that reads every
   * unit, which a stack through a library's aranges-listed code does not need).
   */
  private rangeTable(complete: boolean): { lo: bigint; hi: bigint; cuOff: number }[] {
    if (this.aranges && (this.completed || !complete)) return this.aranges;
    const out: { lo: bigint; hi: bigint; cuOff: number }[] = this.aranges ?? [];
    if (!this.aranges) this.readAranges(out);
    if (complete) {
      this.completed = true;
      const covered = new Set<number>();
      for (const r of out) {
        const cu = this.unitAt(r.cuOff);
        if (cu) covered.add(cu.offset);
      }
      for (const cu of this.units) {
        if (covered.has(cu.offset)) continue;
        try {
          for (const [lo, hi] of cu.dieRanges(cu.unitDie)) out.push({ lo, hi, cuOff: cu.offset });
        } catch { /* ignore broken units */ }
      }
    }
    out.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
    this.aranges = out;
    return out;
  }

  private readAranges(out: { lo: bigint; hi: bigint; cuOff: number }[]): void {
    const ar = this.s.aranges;
    if (ar) {
      let off = 0;
      while (off < ar.length) {
        const c = new Cursor(ar, off);
        let len = c.u32(); let os = 4;
        if (len === 0xffffffff) { len = c.u64n(); os = 8; }
        const end = c.pos + len;
        c.u16();
        const cuOff = c.off(os);
        const asz = c.u8(); c.u8();
        const hdr = c.pos - off;
        c.pos = off + Math.ceil(hdr / (2 * asz)) * 2 * asz;
        while (c.pos + 2 * asz <= end) {
          const s = c.uN(asz), l = c.uN(asz);
          if (s === 0n && l === 0n) break;
          out.push({ lo: s, hi: s + l, cuOff });
        }
        if (end <= off) break;
        off = end;
      }
    }
  }

  /** The unit whose code covers a link-time address. */
  unitForAddr(addr: bigint): CompUnit | undefined {
    const find = (t: { lo: bigint; hi: bigint; cuOff: number }[]) => {
      let lo = 0, hi = t.length - 1, best = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (t[mid].lo <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1;
      }
      for (let i = best; i >= 0 && i > best - 32; i--) {
        if (addr >= t[i].lo && addr < t[i].hi) {
          const cu = this.unitAt(t[i].cuOff);
          if (cu) return cu;
        }
      }
      return undefined;
    };
    return find(this.rangeTable(false)) ?? (this.completed ? undefined : find(this.rangeTable(true)));
  }
}

/** Size of a value of a fixed-size form in a unit, -1 for sizes read from the value. */
export function formSize(form: number, cu: CompUnit): number {
  switch (form) {
    case 0x01: return cu.addrSize;
    case 0x0b: case 0x11: case 0x0c: case 0x25: case 0x29: return 1;
    case 0x05: case 0x12: case 0x26: case 0x2a: return 2;
    case 0x27: case 0x2b: return 3;
    case 0x06: case 0x13: case 0x28: case 0x2c: case 0x1c: return 4;
    case 0x07: case 0x14: case 0x20: case 0x24: return 8;
    case 0x1e: return 16;
    case 0x0e: case 0x1f: case 0x17: case 0x1d: case 0x1f21: case 0x1f20: return cu.offSize;
    case 0x10: return cu.version <= 2 ? cu.addrSize : cu.offSize;
    case 0x19: case 0x21: return 0;
  }
  return -1;
}

/** Skips one attribute value. */
export function skipForm(c: Cursor, form: number, cu: CompUnit, implicit?: number): void {
  void implicit;
  const os = cu.offSize;
  switch (form) {
    case 0x01: c.pos += cu.addrSize; return;
    case 0x0a: { const n = c.u8(); c.pos += n; return; }
    case 0x03: { const n = c.u16(); c.pos += n; return; }
    case 0x04: { const n = c.u32(); c.pos += n; return; }
    case 0x09: case 0x18: { const n = c.uleb(); c.pos += n; return; }
    case 0x0b: case 0x11: case 0x0c: case 0x25: case 0x29: c.pos += 1; return;
    case 0x05: case 0x12: case 0x26: case 0x2a: c.pos += 2; return;
    case 0x27: case 0x2b: c.pos += 3; return;
    case 0x06: case 0x13: case 0x28: case 0x2c: case 0x1c: c.pos += 4; return;
    case 0x07: case 0x14: case 0x20: case 0x24: c.pos += 8; return;
    case 0x1e: c.pos += 16; return;
    case 0x08: { let z = c.buf.indexOf(0, c.pos); if (z < 0 || z > c.end) z = c.end; c.pos = z + 1; return; }
    case 0x0e: case 0x1f: case 0x17: case 0x1d: case 0x1f21: case 0x1f20: c.pos += os; return;
    case 0x10: c.pos += cu.version <= 2 ? cu.addrSize : os; return;
    case 0x0d: case 0x0f: case 0x15: case 0x1a: case 0x1b: case 0x22: case 0x23: case 0x1f01: case 0x1f02: c.skipUleb(); return;
    case 0x19: case 0x21: return;
  }
  throw new Error(`unsupported form 0x${form.toString(16)}`);
}
