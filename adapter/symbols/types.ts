// Types built from DWARF DIEs, and their names as gdb writes them.
import { Die, DW } from './dwarf';
import { qualifiedName } from './module';

export interface Member {
  name?: string; type: Type; offset: number; bitSize?: number; bitOffset?: number; artificial: boolean; isStatic: boolean; die: Die;
}
export interface Base { type: Type; offset: number; virtual: boolean; /** location expression of a virtual base (object address pushed first) */ locExpr?: Buffer }

export type Type =
  | { k: 'void' }
  | { k: 'base'; name: string; size: number; enc: number }
  | { k: 'ptr'; to: Type; size: number }
  | { k: 'ref'; to: Type; rvalue: boolean; size: number }
  | StructType
  | { k: 'enum'; name?: string; size: number; values: [string, bigint][]; signed: boolean; cxx: boolean }
  | { k: 'array'; of: Type; count: number | undefined }
  | { k: 'typedef'; name: string; to: Type }
  | { k: 'cv'; q: 'const' | 'volatile' | 'restrict' | 'atomic'; to: Type }
  | { k: 'func'; ret: Type; params: Type[]; varargs: boolean; proto: boolean; cxx: boolean }
  | { k: 'memptr'; size: number; cls?: Type; fn: boolean; to?: Type };

export interface StructType {
  k: 'struct'; tag: 'struct' | 'class' | 'union'; name?: string; size: number; cxx: boolean; die: Die;
  /** filled on first access */
  readonly members: Member[]; readonly bases: Base[];
  /** template parameters (types) by name */
  readonly templateTypes: Type[];
}

const VOID: Type = { k: 'void' };
const cache = new WeakMap<Die, Type>();

/** Finds a full definition for a declaration (set by the program: searches all modules). */
export let resolveDeclaration: (die: Die) => Die | undefined = () => undefined;
export function setDeclarationResolver(f: (die: Die) => Die | undefined): void { resolveDeclaration = f; }

export function typeOf(die: Die | undefined): Type {
  if (!die) return VOID;
  const c = cache.get(die);
  if (c) return c;
  // a declaration standing for a type in a type unit (-fdebug-types-section)
  const sig = die.attr(DW.AT_signature);
  if (sig && sig.cls === 4 /* Ref */) {
    const t = typeOf(die.ref(DW.AT_signature));
    cache.set(die, t);
    return t;
  }
  let t: Type;
  const size = die.num(DW.AT_byte_size) ?? 0;
  switch (die.tag) {
    case DW.TAG_base_type:
      t = { k: 'base', name: die.str(DW.AT_name) ?? '?', size, enc: die.num(DW.AT_encoding) ?? 0 };
      break;
    case DW.TAG_unspecified_type:
      t = { k: 'base', name: die.str(DW.AT_name) ?? 'void', size: 8, enc: DW.ATE_address };
      if (die.str(DW.AT_name) === 'decltype(nullptr)') t = { k: 'ptr', to: VOID, size: 8 };
      break;
    case DW.TAG_pointer_type: {
      const p: { k: 'ptr'; to: Type; size: number } = { k: 'ptr', to: VOID, size: size || 8 };
      cache.set(die, p);
      p.to = typeOf(die.ref(DW.AT_type));
      return p;
    }
    case DW.TAG_reference_type: case DW.TAG_rvalue_reference_type: {
      const p: { k: 'ref'; to: Type; rvalue: boolean; size: number } = { k: 'ref', to: VOID, rvalue: die.tag === DW.TAG_rvalue_reference_type, size: 8 };
      cache.set(die, p);
      p.to = typeOf(die.ref(DW.AT_type));
      return p;
    }
    case DW.TAG_const_type: case DW.TAG_volatile_type: case DW.TAG_restrict_type: case DW.TAG_atomic_type: {
      const q = die.tag === DW.TAG_const_type ? 'const' : die.tag === DW.TAG_volatile_type ? 'volatile' : die.tag === DW.TAG_restrict_type ? 'restrict' : 'atomic';
      const p: { k: 'cv'; q: typeof q; to: Type } = { k: 'cv', q, to: VOID };
      cache.set(die, p);
      p.to = typeOf(die.ref(DW.AT_type));
      return p;
    }
    case DW.TAG_typedef: {
      const p: { k: 'typedef'; name: string; to: Type } = { k: 'typedef', name: qualifiedName(die), to: VOID };
      cache.set(die, p);
      p.to = typeOf(die.ref(DW.AT_type));
      return p;
    }
    case DW.TAG_structure_type: case DW.TAG_class_type: case DW.TAG_union_type: {
      if (die.flag(DW.AT_declaration)) {
        const full = resolveDeclaration(die);
        if (full && full !== die) { t = typeOf(full); break; }
      }
      t = structType(die, size);
      break;
    }
    case DW.TAG_enumeration_type: {
      const values: [string, bigint][] = [];
      const under = die.ref(DW.AT_type);
      let signed = false;
      if (under) { const u = strip(typeOf(under)); signed = u.k === 'base' && (u.enc === DW.ATE_signed || u.enc === DW.ATE_signed_char); }
      for (const ch of die.children) {
        if (ch.tag !== DW.TAG_enumerator) continue;
        const a = ch.attr(DW.AT_const_value);
        let v = 0n;
        if (a) v = a.form === 0x0d ? BigInt(ch.snum(DW.AT_const_value)!) : typeof a.v === 'bigint' ? a.v : BigInt(Number(a.v));
        if (a && a.form !== 0x0d && a.form !== 0x0f && size) { // dataN: sign-extend when underlying is signed
          if (signed) v = BigInt.asIntN(size * 8, v);
        }
        if (v < 0n) signed = true;
        values.push([enumeratorName(die, ch.str(DW.AT_name) ?? ''), v]);
      }
      t = { k: 'enum', name: die.str(DW.AT_name) !== undefined ? qualifiedName(die) : undefined, size: size || 4, values, signed, cxx: die.cu.isCxx };
      break;
    }
    case DW.TAG_array_type: {
      const dims: (number | undefined)[] = [];
      for (const ch of die.children) {
        if (ch.tag !== DW.TAG_subrange_type) continue;
        const cnt = ch.num(DW.AT_count);
        const ub = ch.attr(DW.AT_upper_bound);
        if (cnt !== undefined && ch.attr(DW.AT_count)!.cls === 0) dims.push(cnt);
        else if (ub && (typeof ub.v === 'number' || typeof ub.v === 'bigint') && ub.cls === 0) {
          // dataN forms are unsigned here (the subrange's type is size_t); sdata is signed
          const u = ub.form === 0x0d ? ch.snum(DW.AT_upper_bound)! : ch.num(DW.AT_upper_bound)!;
          const l = ch.num(DW.AT_lower_bound) ?? 0;
          dims.push(u - l + 1);
        } else dims.push(undefined);
      }
      let el = typeOf(die.ref(DW.AT_type));
      if (!dims.length) dims.push(undefined);
      for (let i = dims.length - 1; i >= 0; i--) el = { k: 'array', of: el, count: dims[i] };
      t = el;
      break;
    }
    case DW.TAG_subroutine_type: case DW.TAG_subprogram: {
      const params: Type[] = [];
      let varargs = false;
      for (const ch of die.children) {
        if (ch.tag === DW.TAG_formal_parameter) params.push(typeOf(ch.ref(DW.AT_type)));
        else if (ch.tag === DW.TAG_unspecified_parameters) varargs = true;
      }
      t = { k: 'func', ret: typeOf(die.ref(DW.AT_type)), params, varargs, proto: die.flag(DW.AT_prototyped), cxx: die.cu.isCxx };
      break;
    }
    case DW.TAG_ptr_to_member_type: {
      const to = die.ref(DW.AT_type);
      const fn = !!to && (to.tag === DW.TAG_subroutine_type);
      const p: { k: 'memptr'; size: number; cls?: Type; fn: boolean; to?: Type } = { k: 'memptr', size: fn ? 16 : 8, fn };
      cache.set(die, p);
      p.cls = typeOf(die.ref(0x1d /* DW_AT_containing_type */));
      p.to = typeOf(to);
      return p;
    }
    default:
      t = VOID;
  }
  cache.set(die, t);
  return t;
}

function structType(die: Die, size: number): StructType {
  const tag = die.tag === DW.TAG_union_type ? 'union' : die.tag === DW.TAG_class_type ? 'class' : 'struct';
  let members: Member[] | undefined, bases: Base[] | undefined, tmpl: Type[] | undefined;
  const fill = () => {
    members = []; bases = []; tmpl = [];
    for (const ch of die.children) {
      if (ch.tag === DW.TAG_member || (ch.tag === DW.TAG_variable && die.cu.isCxx)) {
        const isStatic = ch.tag === DW.TAG_variable || ch.flag(DW.AT_declaration) && !ch.has(DW.AT_data_member_location);
        const off = memberOffset(ch);
        const m: Member = { name: ch.str(DW.AT_name), type: typeOf(ch.ref(DW.AT_type)), offset: off, artificial: ch.flag(DW.AT_artificial), isStatic, die: ch };
        const bs = ch.num(DW.AT_bit_size);
        if (bs !== undefined) {
          m.bitSize = bs;
          const dbo = ch.num(DW.AT_data_bit_offset);
          if (dbo !== undefined) { m.bitOffset = dbo; m.offset = 0; }
          else {
            // DWARF 2/3 style: bit_offset from the MSB of a storage unit of byte_size
            const bsz = ch.num(DW.AT_byte_size) ?? sizeOf(m.type);
            const bo = ch.num(DW.AT_bit_offset) ?? 0;
            m.bitOffset = off * 8 + bsz * 8 - bo - bs;
            m.offset = 0;
          }
        }
        members.push(m);
      } else if (ch.tag === DW.TAG_inheritance) {
        const loc = ch.attr(DW.AT_data_member_location);
        const virt = (ch.num(0x4c) ?? 0) !== 0;
        bases.push({ type: typeOf(ch.ref(DW.AT_type)), offset: memberOffset(ch), virtual: virt, locExpr: virt && loc && Buffer.isBuffer(loc.v) && loc.v[0] !== 0x23 ? loc.v : undefined });
      } else if (ch.tag === DW.TAG_template_type_param) {
        tmpl.push(typeOf(ch.ref(DW.AT_type)));
      } else if (ch.tag === 0x4107 /* DW_TAG_GNU_template_parameter_pack */) {
        // variadic templates (std::variant<int, std::string>): the pack's types in order
        for (const p of ch.children) if (p.tag === DW.TAG_template_type_param) tmpl.push(typeOf(p.ref(DW.AT_type)));
      }
    }
  };
  const st: StructType = {
    k: 'struct', tag, name: die.str(DW.AT_name) !== undefined ? qualifiedName(die) : undefined, size, cxx: die.cu.isCxx, die,
    get members() { if (!members) fill(); return members!; },
    get bases() { if (!bases) fill(); return bases!; },
    get templateTypes() { if (!tmpl) fill(); return tmpl!; },
  };
  return st;
}

function memberOffset(d: Die): number {
  const a = d.attr(DW.AT_data_member_location);
  if (!a) return 0;
  if (typeof a.v === 'number') return a.v;
  if (typeof a.v === 'bigint') return Number(a.v);
  if (Buffer.isBuffer(a.v)) {
    // DW_OP_plus_uconst N
    const b = a.v;
    if (b[0] === 0x23) { let v = 0, s = 0, i = 1; for (; i < b.length; i++) { v += (b[i] & 0x7f) * 2 ** s; s += 7; if (!(b[i] & 0x80)) break; } return v; }
  }
  return 0;
}

/** typedefs and qualifiers removed */
export function strip(t: Type): Type {
  while (t.k === 'typedef' || t.k === 'cv') t = t.to;
  return t;
}
export function stripCv(t: Type): Type {
  while (t.k === 'cv') t = t.to;
  return t;
}

export function sizeOf(t: Type): number {
  switch (t.k) {
    case 'void': return 1;
    case 'base': case 'ptr': case 'enum': case 'struct': case 'memptr': case 'ref': return t.size;
    case 'array': return t.count === undefined ? 0 : t.count * sizeOf(t.of);
    case 'typedef': case 'cv': return sizeOf(t.to);
    case 'func': return 1;
  }
}

export function alignOf(t: Type): number {
  const s = strip(t);
  switch (s.k) {
    case 'base': return Math.min(s.size, 16) || 1;
    case 'ptr': case 'ref': case 'memptr': return 8;
    case 'enum': return s.size;
    case 'array': return alignOf(s.of);
    case 'struct': {
      let a = 1;
      for (const b of s.bases) a = Math.max(a, alignOf(b.type));
      for (const m of s.members) if (!m.isStatic) a = Math.max(a, alignOf(m.type));
      return a;
    }
    default: return 1;
  }
}

export function isScalar(t: Type): boolean {
  const s = strip(t);
  return s.k === 'base' || s.k === 'ptr' || s.k === 'enum';
}

export function isSigned(t: Type): boolean {
  const s = strip(t);
  if (s.k === 'base') return s.enc === DW.ATE_signed || s.enc === DW.ATE_signed_char || (s.enc === DW.ATE_float);
  if (s.k === 'enum') return s.signed;
  return false;
}

export function isCharType(t: Type): boolean {
  const s = strip(t);
  return s.k === 'base' && s.size === 1 && (s.enc === DW.ATE_signed_char || s.enc === DW.ATE_unsigned_char || s.enc === DW.ATE_UTF);
}

/** The type's name as gdb prints it (e.g. "struct point *", "int (*)(int)", "char [16]"). */
export function typeName(t: Type, inner = ''): string {
  const sp = (s: string) => (inner ? s + ' ' + inner : s);
  switch (t.k) {
    case 'void': return sp('void');
    case 'base': return sp(t.name);
    case 'typedef': return sp(t.name);
    case 'struct': return sp(t.cxx ? (t.name ?? `${t.tag} {...}`) : `${t.tag} ${t.name ?? '{...}'}`);
    case 'enum': return sp(t.cxx ? (t.name ?? 'enum {...}') : `enum ${t.name ?? '{...}'}`);
    case 'memptr': {
      if (!t.cls || !t.to) return sp('<member pointer>');
      // gdb: `int Point::*`, `void (C::*)(C * const)` (the method's `this` among the parameters)
      const cls = typeName(t.cls);
      const fn = strip(t.to);
      if (fn.k !== 'func') return typeName(t.to, `${cls}::*${inner}`);
      // gdb makes a method's `this` parameter const
      const params = fn.params.map((p, i) => (i === 0 && p.k === 'ptr' ? typeName({ k: 'cv', q: 'const', to: p } as Type) : typeName(p)));
      if (fn.varargs) params.push('...');
      return typeName(fn.ret, `(${cls}::*${inner})(${params.join(', ')})`);
    }
    case 'cv': {
      const to = t.to;
      if (to.k === 'ptr' || to.k === 'ref') return typeName(to, '* '.slice(0, 0) + `${t.q}${inner ? ' ' + inner : ''}`).replace(/\*(const|volatile|restrict)/, '* $1');
      if (to.k === 'array' || to.k === 'func') return typeName(to, inner);
      const base = typeName(to, '');
      return sp(`${t.q} ${base}`);
    }
    case 'ptr': case 'ref': {
      const op = t.k === 'ptr' ? '*' : t.rvalue ? '&&' : '&';
      const to = t.to;
      if (to.k === 'func' || to.k === 'array') return typeName(to, `(${op}${inner})`);
      if (to.k === 'cv' && (strip(to).k === 'func')) return typeName(to, `(${op}${inner})`);
      return typeName(to, op + inner);
    }
    case 'array': {
      const dim = `[${t.count ?? ''}]`;
      return typeName(t.of, inner + dim);
    }
    case 'func': {
      let params = t.params.map((p) => typeName(p)).join(', ');
      if (t.varargs) params += params ? ', ...' : '...';
      if (!params && t.proto && !t.cxx) params = 'void';
      return typeName(t.ret, `${inner}(${params})`);
    }
  }
}

/** gdb's name of a C++ enumerator: scoped enums by the enum's name, others by the enclosing scope. */
function enumeratorName(en: Die, name: string): string {
  if (!en.cu.isCxx) return name;
  if (en.flag(DW.AT_enum_class)) return `${qualifiedName(en)}::${name}`;
  const q = en.str(DW.AT_name) !== undefined ? qualifiedName(en) : '';
  const i = q.lastIndexOf('::');
  if (i > 0) return `${q.slice(0, i)}::${name}`;
  // anonymous enum: its parent's scope
  let p = en.parent; const parts: string[] = [];
  while (p && p.tag !== DW.TAG_compile_unit) {
    if (p.tag === DW.TAG_namespace) parts.unshift(p.str(DW.AT_name) ?? '(anonymous namespace)');
    else if (p.tag === DW.TAG_structure_type || p.tag === DW.TAG_class_type || p.tag === DW.TAG_union_type) parts.unshift(p.str(DW.AT_name) ?? '{unnamed}');
    else break;
    p = p.parent;
  }
  return parts.length ? `${parts.join('::')}::${name}` : name;
}
