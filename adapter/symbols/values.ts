// Values (typed bytes at a location) and their printing in gdb's style.
import { DW } from './dwarf';
import { MemoryReader } from './target';
import { evalExpr, Loc } from './dwexpr';
import { Base, isCharType, Member, sizeOf, strip, StructType, Type, typeName, alignOf } from './types';

export class OptimizedOut extends Error { constructor() { super('<optimized out>'); } }

/** Reads registers and memory of the frame a value lives in. */
export interface ValueContext {
  mem: MemoryReader;
  reg(n: number): bigint;
  /** `<sym+off>` for an address, or undefined */
  symbolize?(addr: bigint, dataOnly: boolean): string | undefined;
  /** a named type (std::any finds its contained type through its manager's class) */
  lookupType?(name: string): Type | undefined;
}

export class Value {
  private cached?: Buffer;
  /** why the value could not be computed (shown as `<error: ...>`) */
  error?: string;
  /** byte ranges [start, end) whose contents are optimized out (from DW_OP_piece without a location) */
  unavailable?: [number, number][];
  /** a reference's referent when it is not in memory (an entry value: DW_AT_call_data_value) */
  referent?: Value;
  constructor(
    readonly type: Type,
    readonly ctx: ValueContext,
    readonly addr?: bigint,
    bytes?: Buffer,
    readonly bitPos = 0,
    readonly bitSize = 0,
    readonly optimized = false,
    readonly lval = addr !== undefined,
  ) { this.cached = bytes; }

  static fromLoc(type: Type, loc: Loc, ctx: ValueContext): Value {
    const size = sizeOf(type);
    switch (loc.kind) {
      case 'memory': return new Value(type, ctx, loc.addr);
      case 'register': {
        const b = Buffer.alloc(Math.max(size, 16));
        const r = ctx.reg(loc.reg);
        b.writeBigUInt64LE(BigInt.asUintN(64, r));
        b.writeBigUInt64LE(BigInt.asUintN(64, r >> 64n), 8);
        return new Value(type, ctx, undefined, b.subarray(0, size));
      }
      case 'value': {
        const b = Buffer.alloc(Math.max(size, 8));
        b.writeBigUInt64LE(BigInt.asUintN(64, loc.value));
        return new Value(type, ctx, undefined, b.subarray(0, size));
      }
      case 'implicit': {
        const b = Buffer.alloc(size); loc.bytes.copy(b, 0, 0, Math.min(size, loc.bytes.length));
        return new Value(type, ctx, undefined, b);
      }
      case 'pieces': {
        const b = Buffer.alloc(size);
        let bit = 0;
        const unavailable: [number, number][] = [];
        for (const p of loc.pieces) {
          const nbytes = Math.ceil(p.bits / 8);
          let src: Buffer;
          if (p.loc.kind === 'optimized') { unavailable.push([Math.floor(bit / 8), Math.ceil((bit + p.bits) / 8)]); bit += p.bits; continue; }
          if (p.loc.kind === 'memory') src = ctx.mem.read(p.loc.addr, nbytes);
          else if (p.loc.kind === 'register') { const r = ctx.reg(p.loc.reg); src = Buffer.alloc(16); src.writeBigUInt64LE(BigInt.asUintN(64, r)); src.writeBigUInt64LE(BigInt.asUintN(64, r >> 64n), 8); }
          else if (p.loc.kind === 'value') { src = Buffer.alloc(8); src.writeBigUInt64LE(BigInt.asUintN(64, p.loc.value)); }
          else if (p.loc.kind === 'implicit') src = p.loc.bytes;
          else src = Buffer.alloc(nbytes);
          if (bit % 8 === 0) src.copy(b, bit / 8, 0, Math.min(nbytes, size - bit / 8));
          bit += p.bits;
        }
        if (bit < size * 8) unavailable.push([Math.ceil(bit / 8), size]);
        const val = new Value(type, ctx, undefined, b);
        if (unavailable.length) {
          if (unavailable.some(([s0, e0]) => s0 <= 0 && e0 >= size)) return new Value(type, ctx, undefined, undefined, 0, 0, true);
          val.unavailable = unavailable;
        }
        return val;
      }
      case 'optimized': return new Value(type, ctx, undefined, undefined, 0, 0, true);
    }
  }

  get size(): number { return sizeOf(this.type); }

  /** whether some of the value's bytes are optimized out */
  get partlyUnavailable(): boolean { return !!this.unavailable?.length; }

  bytes(): Buffer {
    if (this.optimized) throw new OptimizedOut();
    if (this.unavailable) {
      const len = this.bitSize ? Math.ceil((this.bitPos + this.bitSize) / 8) : this.size;
      if (this.unavailable.some(([s0, e0]) => s0 < len && e0 > 0)) throw new OptimizedOut();
    }
    if (!this.cached) {
      if (this.addr === undefined) throw new Error('value has no location');
      this.cached = this.ctx.mem.read(this.addr, this.bitSize ? Math.ceil((this.bitPos + this.bitSize) / 8) : this.size);
    }
    return this.cached;
  }

  /** Integer value (sign-extended per type), bitfields extracted. */
  int(): bigint {
    const t = strip(this.type);
    const b = this.bytes();
    if (this.bitSize) {
      let v = 0n;
      for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
      v = (v >> BigInt(this.bitPos)) & ((1n << BigInt(this.bitSize)) - 1n);
      if (signedType(t)) v = BigInt.asIntN(this.bitSize, v);
      return v;
    }
    const n = Math.min(b.length, 8);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (signedType(t) && n > 0) v = BigInt.asIntN(n * 8, v);
    return v;
  }

  float(): number {
    const b = this.bytes();
    if (b.length === 4) return b.readFloatLE(0);
    if (b.length === 8) return b.readDoubleLE(0);
    if (b.length >= 10) return x87(b);
    return NaN;
  }

  member(m: Member, base = 0): Value {
    if (m.bitSize !== undefined) {
      const bo = m.bitOffset ?? 0;
      const byte = Math.floor(bo / 8) + base;
      return this.sub(m.type, byte, bo % 8, m.bitSize);
    }
    return this.sub(m.type, m.offset + base);
  }

  sub(type: Type, offset: number, bitPos = 0, bitSize = 0): Value {
    if (this.optimized) return new Value(type, this.ctx, undefined, undefined, 0, 0, true);
    if (this.addr !== undefined && !this.cached) return new Value(type, this.ctx, this.addr + BigInt(offset), undefined, bitPos, bitSize);
    const len = bitSize ? Math.ceil((bitPos + bitSize) / 8) : sizeOf(type);
    const saved = this.unavailable;
    this.unavailable = undefined;
    const b = this.bytes();
    this.unavailable = saved;
    const child = new Value(type, this.ctx, this.addr !== undefined ? this.addr + BigInt(offset) : undefined, b.subarray(offset, offset + len), bitPos, bitSize, false, this.lval);
    if (saved) {
      const r = saved.map(([s0, e0]) => [Math.max(0, s0 - offset), Math.min(len, e0 - offset)] as [number, number]).filter(([s0, e0]) => e0 > s0);
      if (r.length) child.unavailable = r;
    }
    return child;
  }

  /** The pointed-to value of a pointer or reference. */
  deref(): Value {
    const t = strip(this.type);
    if (t.k !== 'ptr' && t.k !== 'ref') throw new Error('Attempt to take contents of a non-pointer value.');
    const to = t.to;
    if (strip(to).k === 'void') throw new Error('Attempt to take contents of a non-pointer value.');
    if (this.referent) return this.referent;
    return new Value(to, this.ctx, BigInt.asUintN(64, this.int()));
  }
}

function signedType(t: Type): boolean {
  if (t.k === 'base') return t.enc === DW.ATE_signed || t.enc === DW.ATE_signed_char;
  if (t.k === 'enum') return t.signed;
  return false;
}

function x87(b: Buffer): number {
  const mant = b.readBigUInt64LE(0);
  const se = b.readUInt16LE(8);
  const sign = se & 0x8000 ? -1 : 1;
  const exp = se & 0x7fff;
  if (exp === 0 && mant === 0n) return sign * 0;
  if (exp === 0x7fff) return (mant << 1n) === 0n ? sign * Infinity : NaN;
  return sign * Number(mant) * 2 ** (exp - 16383 - 63);
}

// ---------------------------------------------------------------- printing

export interface FormatOptions {
  /** print's top level: pointers get their type prefix `(int *) 0x...` */
  top?: boolean;
  /** gdb's print/x: integers, characters, booleans, enums and floats in hexadecimal */
  hex?: boolean;
}

let HEX = false;
/** nesting depth: references inside aggregates print only their address, as gdb does */
let DEPTH = 0;
/** virtual bases already printed in the current outermost object */
let VBASES: Set<Type> | undefined;

function nest(f: () => string): string {
  DEPTH++;
  try { return safe(f); } finally { DEPTH--; }
}

/** The sub-object of a base class (virtual bases found through the vtable's offsets). */
export function baseValue(v: Value, b: Base): Value {
  if (b.virtual && b.locExpr && v.addr !== undefined) {
    const l = evalExpr(b.locExpr, { reg: () => { throw new OptimizedOut(); }, mem: (a, n) => v.ctx.mem.read(a, n) }, [v.addr]);
    if (l.kind === 'memory') return new Value(b.type, v.ctx, l.addr);
  }
  return v.sub(b.type, b.offset);
}

function hexOf(v: bigint, size: number): string {
  return '0x' + BigInt.asUintN(Math.max(1, size) * 8, v).toString(16);
}

const REPEAT = 10;
const PRINT_MAX = 200;

export function formatValue(v: Value, opts: FormatOptions = {}): string {
  const saved = HEX, savedDepth = DEPTH, savedV = VBASES;
  HEX = !!opts.hex;
  DEPTH = 0;
  VBASES = undefined;
  try {
    return fmt(v, !!opts.top && !HEX);
  } catch (e) {
    if (e instanceof OptimizedOut) return '<optimized out>';
    const m = (e as Error).message;
    return `<error: ${m}>`;
  } finally {
    HEX = saved; DEPTH = savedDepth; VBASES = savedV;
  }
}

/** gdb treats typedefs named wchar_t, char16_t and char32_t as characters (C declares them so). */
export function wideKind(t: Type): 'L' | 'u' | 'U' | undefined {
  for (let x: Type = t; ; ) {
    if (x.k === 'typedef' || x.k === 'base') {
      if (x.name === 'wchar_t') return 'L';
      if (x.name === 'char16_t') return 'u';
      if (x.name === 'char32_t') return 'U';
    }
    if (x.k === 'typedef' || x.k === 'cv') x = x.to; else return undefined;
  }
}

function wideString(mem: MemoryReader, addr: bigint, size: number, max = PRINT_MAX): { chars: number[]; truncated: boolean } {
  const chars: number[] = [];
  for (let a = addr; chars.length < max; a += BigInt(size)) {
    const b = mem.read(a, size);
    const c = size === 2 ? b.readUInt16LE(0) : b.readUInt32LE(0);
    if (c === 0) return { chars, truncated: false };
    chars.push(c);
  }
  return { chars, truncated: true };
}

function fmtWide(chars: number[], prefix: string, truncated: boolean): string {
  // wide strings: printable ASCII as is, others as octal escapes (gdb's default charset handling)
  return prefix + fmtString(chars.map((c) => (c < 256 ? c : 63)), truncated);
}

function fmt(v: Value, top: boolean): string {
  if (v.error) return `<error: ${v.error}>`;
  if (v.optimized) return '<optimized out>';
  const full = v.type;
  const t = strip(full);
  const wk = !HEX && t.k === 'base' ? wideKind(full) : undefined;
  if (wk) { const i = v.int(); return `${i} ${wk}${charLit(Number(BigInt.asUintN(32, i)) & 0xff)}`; }
  switch (t.k) {
    case 'void': return 'void';
    case 'base': return fmtBase(v, t);
    case 'enum': return HEX ? hexOf(v.int(), t.size) : fmtEnum(v.int(), t);
    case 'ptr': return fmtPointer(v, full, top);
    case 'ref': {
      if (DEPTH > 0) return `@0x${BigInt.asUintN(64, v.int()).toString(16)}`;
      const target = v.deref();
      const ts = strip(target.type);
      if (ts.k === 'struct' && hasPrinter(ts)) return fmt(target, false);
      const addr = BigInt.asUintN(64, v.int());
      const inner = safe(() => fmt(target, false));
      return `${top ? `(${typeName(full)}) ` : ''}@0x${addr.toString(16)}: ${inner}`;
    }
    case 'array':
      if (t.count === undefined) { // flexible array member: gdb shows where it starts
        const a = v.addr ?? 0n;
        const sym = v.ctx.symbolize?.(a, true);
        return `0x${a.toString(16)}${sym ? ` <${sym}>` : ''}`;
      }
      return fmtArray(v, t.of, t.count);
    case 'struct': return fmtStruct(v, t);
    case 'func': {
      const a = v.addr ?? 0n;
      const s = v.ctx.symbolize?.(a, false);
      return `{${typeName(full)}} 0x${a.toString(16)}${s ? ` <${s}>` : ''}`;
    }
    case 'memptr': {
      if (t.fn && t.size === 16) {
        // gdb (Itanium ABI): {ptr, this adjustment}; a function's address shown with the type
        const b = v.bytes();
        const ptr = b.readBigUInt64LE(0), adj = b.readBigInt64LE(8);
        if (ptr === 0n && adj === 0n) return 'NULL';
        const s = v.ctx.symbolize?.(ptr, false);
        return `(${typeName(t)}) 0x${ptr.toString(16)}${s ? ` <${s}>` : ''}${adj ? `, this adjustment ${adj}` : ''}`;
      }
      const off = v.int();
      const cls = t.cls ? strip(t.cls) : undefined;
      if (!t.fn && cls?.k === 'struct') {
        if (BigInt.asIntN(64, off) === -1n) return 'NULL';
        const m = cls.members.find((x) => !x.isStatic && BigInt(x.offset) === off);
        if (m) return `&${cls.name}::${m.name}`;
      }
      return '0x' + BigInt.asUintN(64, off).toString(16);
    }
  }
  return '?';
}

function safe(f: () => string): string {
  try { return f(); } catch (e) {
    if (e instanceof OptimizedOut) return '<optimized out>';
    return `<error: ${(e as Error).message}>`;
  }
}

function fmtBase(v: Value, t: Extract<Type, { k: 'base' }>): string {
  if (HEX) {
    if (t.enc === DW.ATE_float) { // gdb 13 shows the bits
      const b = v.bytes(); let x = 0n;
      for (let i = Math.min(b.length, 16) - 1; i >= 0; i--) x = (x << 8n) | BigInt(b[i]);
      return '0x' + x.toString(16);
    }
    return hexOf(v.int(), t.size);
  }
  switch (t.enc) {
    case DW.ATE_boolean: { const i = v.int(); return i === 0n ? 'false' : i === 1n ? 'true' : String(i); }
    case DW.ATE_float: return fmtFloat(v.float(), t.size);
    case DW.ATE_complex_float: {
      const half = t.size / 2;
      const b = v.bytes();
      const part = (o: number) => (half === 4 ? b.readFloatLE(o) : half === 8 ? b.readDoubleLE(o) : x87(b.subarray(o, o + 10)));
      return `${fmtFloat(part(0), half)} + ${fmtFloat(part(half), half)}i`;
    }
    case DW.ATE_signed_char: case DW.ATE_unsigned_char: {
      const i = v.int();
      return `${i} ${charLit(Number(BigInt.asUintN(8, i)))}`;
    }
    case DW.ATE_UTF: {
      const i = v.int();
      if (t.size === 1) return `${i} u8${charLit(Number(i))}`;
      const pre = t.name === 'char16_t' ? 'u' : t.name === 'char32_t' ? 'U' : 'L';
      return `${i} ${pre}${charLit(Number(i))}`;
    }
    case DW.ATE_signed: case DW.ATE_unsigned: default: {
      if (t.name === 'wchar_t') { const i = v.int(); return `${i} L${charLit(Number(i))}`; }
      if (t.size === 16) { const b = v.bytes(); let x = 0n; for (let i = 15; i >= 0; i--) x = (x << 8n) | BigInt(b[i]); if (t.enc === DW.ATE_signed) x = BigInt.asIntN(128, x); return String(x); }
      return String(v.int());
    }
  }
}

export function fmtFloat(x: number, size: number): string {
  if (Number.isNaN(x)) return size === 4 ? 'nan(0x400000)' : 'nan(0x8000000000000)';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const prec = size === 4 ? 9 : size === 8 ? 17 : 18;
  return gfmt(x, prec);
}

function gfmt(x: number, prec: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const e = Math.floor(Math.log10(Math.abs(x)));
  let s = x.toPrecision(prec);
  let exp = e;
  const m = /e([+-]\d+)$/.exec(s);
  if (m) exp = Number(m[1]);
  else { const k = Number(Number(s).toExponential().split('e')[1]); exp = k; }
  if (exp < -4 || exp >= prec) {
    s = x.toExponential(prec - 1);
    let [mant, ex] = s.split('e');
    if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
    const en = Number(ex);
    return `${mant}e${en < 0 ? '-' : '+'}${String(Math.abs(en)).padStart(2, '0')}`;
  }
  if (s.includes('e')) s = x.toFixed(Math.max(0, prec - 1 - exp));
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

function escChar(c: number, quote: string): string {
  switch (c) {
    case 7: return '\\a'; case 8: return '\\b'; case 9: return '\\t'; case 10: return '\\n';
    case 11: return '\\v'; case 12: return '\\f'; case 13: return '\\r'; case 27: return '\\033';
  }
  if (c === 92) return '\\\\';
  if (String.fromCharCode(c) === quote) return '\\' + quote;
  if (c >= 32 && c < 127) return String.fromCharCode(c);
  return '\\' + c.toString(8).padStart(3, '0');
}

export function charLit(c: number): string {
  return `'${escChar(c, "'")}'`;
}

/** gdb's string printing: runs longer than the repeat threshold become `'c' <repeats N times>`. */
export function fmtString(bytes: number[], truncated: boolean): string {
  const parts: string[] = [];
  let cur = '';
  let i = 0;
  while (i < bytes.length) {
    let j = i + 1;
    while (j < bytes.length && bytes[j] === bytes[i]) j++;
    const reps = j - i;
    if (reps > REPEAT) {
      if (cur) { parts.push(`"${cur}"`); cur = ''; }
      parts.push(`${charLit(bytes[i])} <repeats ${reps} times>`);
      i = j;
    } else {
      for (let k = i; k < j; k++) cur += escChar(bytes[k], '"');
      i = j;
    }
  }
  if (cur || !parts.length) parts.push(`"${cur}"`);
  return parts.join(', ') + (truncated ? '...' : '');
}

/** Reads a NUL-terminated string of at most `max` bytes; returns bytes and whether it was cut. */
export function readCString(mem: MemoryReader, addr: bigint, max = PRINT_MAX): { bytes: number[]; truncated: boolean } {
  const out: number[] = [];
  let a = addr;
  while (out.length < max) {
    const chunk = Math.min(64, max - out.length);
    let b: Buffer;
    try { b = mem.read(a, chunk); } catch {
      // read byte by byte near the end of a mapping
      b = Buffer.alloc(0);
      try { b = mem.read(a, 1); } catch { if (!out.length) throw new Error(`Cannot access memory at address 0x${a.toString(16)}`); return { bytes: out, truncated: false }; }
    }
    for (const x of b) { if (x === 0) return { bytes: out, truncated: false }; out.push(x); if (out.length >= max) break; }
    a += BigInt(b.length);
  }
  // check whether a NUL follows
  try { if (mem.read(a, 1)[0] === 0) return { bytes: out, truncated: false }; } catch { /* ignore */ }
  return { bytes: out, truncated: true };
}

function fmtPointer(v: Value, full: Type, top: boolean): string {
  const t = strip(full) as Extract<Type, { k: 'ptr' }>;
  const addr = BigInt.asUintN(64, v.int());
  const hexs = '0x' + addr.toString(16);
  const to = strip(t.to);
  if (HEX) return hexs;
  const prefix = top && !isCharType(t.to) ? `(${typeName(full)}) ` : '';
  if (to.k === 'func') {
    const s = v.ctx.symbolize?.(addr, false);
    return `${prefix}${hexs}${s ? ` <${s}>` : ''}`;
  }
  let out = prefix + hexs;
  const s = addr ? v.ctx.symbolize?.(addr, true) : undefined;
  if (s) out += ` <${s}>`;
  const wk = wideKind(t.to);
  if (wk && addr !== 0n) {
    try {
      const r = wideString(v.ctx.mem, addr, sizeOf(t.to));
      return `${prefix.replace(/^\(.*\) $/, '')}${out.slice(prefix.length)} ${fmtWide(r.chars, wk, r.truncated)}`;
    } catch {
      return out + ` <error: Cannot access memory at address ${hexs}>`;
    }
  }
  if (isCharType(t.to) && addr !== 0n) {
    try {
      const r = readCString(v.ctx.mem, addr);
      out += ' ' + fmtString(r.bytes, r.truncated);
    } catch {
      out += ` <error: Cannot access memory at address ${hexs}>`;
    }
  }
  return out;
}

function fmtEnum(val: bigint, t: Extract<Type, { k: 'enum' }>): string {
  for (const [n, x] of t.values) if (x === val) return n;
  // flag enum (gdb): enumerator values are disjoint bit sets
  let isFlag = t.values.length > 0;
  let seen = 0n;
  for (const [, x] of t.values) {
    if (x < 0n) { isFlag = false; break; }
    if (seen & x) { isFlag = false; break; }
    seen |= x;
  }
  if (isFlag && val > 0n) {
    const names: string[] = [];
    let rest = val;
    for (const [n, x] of t.values) if (x !== 0n && (rest & x) === x) { names.push(n); rest &= ~x; }
    if (rest) names.push(`unknown: 0x${rest.toString(16)}`);
    return `(${names.join(' | ')})`;
  }
  return String(val);
}

function fmtArray(v: Value, elemT: Type, count: number): string {
  const esz = sizeOf(elemT);
  if (isCharType(elemT) && !HEX && !v.partlyUnavailable) {
    const b = v.bytes();
    let all = [...b.subarray(0, Math.min(count, b.length))];
    // drop a single trailing NUL (gdb's print null-stop off behaviour)
    if (all.length && all[all.length - 1] === 0) all = all.slice(0, -1);
    // gdb takes whole runs of one character until `print elements` characters are
    // taken: a run that crosses the limit is counted to its end, the rest is `...`
    let i = 0;
    while (i < all.length && i < PRINT_MAX) {
      let j = i + 1;
      while (j < all.length && all[j] === all[i]) j++;
      i = j;
    }
    return fmtString(all.slice(0, i), i < all.length);
  }
  const items: string[] = [];
  let i = 0;
  let printed = 0;
  const elems: Value[] = [];
  for (let k = 0; k < count; k++) elems.push(v.sub(elemT, k * esz));
  const same = (a: Value, b: Value) => {
    try { return a.bytes().equals(b.bytes()); } catch { return false; }
  };
  while (i < count) {
    if (printed >= PRINT_MAX) { items.push('...'); break; }
    let j = i + 1;
    while (j < count && same(elems[i], elems[j])) j++;
    const reps = j - i;
    const s = nest(() => fmt(elems[i], false));
    if (reps > REPEAT) { items.push(`${s} <repeats ${reps} times>`); i = j; printed += REPEAT; }
    else { items.push(s); i++; printed++; }
  }
  let out = '{' + items.join(', ') + '}';
  out = out.replace(/, \.\.\.\}$/, '...}');
  return out;
}

/** Static member values come from their definitions elsewhere (set by the program). */
let staticValue: (m: Member, ctx: ValueContext) => Value | undefined = () => undefined;
export function setStaticMemberResolver(f: (m: Member, ctx: ValueContext) => Value | undefined): void { staticValue = f; }

function fmtStruct(v: Value, t: StructType): string {
  const pretty = prettyPrint(v, t);
  if (pretty !== undefined) return pretty;
  const parts: string[] = [];
  const outermost = !VBASES;
  if (outermost) VBASES = new Set();
  try {
    for (const b of t.bases) {
      const bt = strip(b.type);
      if (b.virtual) { if (VBASES!.has(bt)) continue; VBASES!.add(bt); }
      const name = typeName(bt);
      let bv: Value | undefined;
      try { bv = baseValue(v, b); } catch { bv = undefined; }
      parts.push(`<${name}> = ${bv ? nest(() => fmt(bv!, false)) : '<invalid address>'}`);
    }
    membersOf(v, t, parts);
    // gdb says so for a structure without fields (static members count as fields)
    if (!t.members.length) parts.push('<No data fields>');
  } finally {
    if (outermost) VBASES = undefined;
  }
  return '{' + parts.join(', ') + '}';
}

function membersOf(v: Value, t: StructType, parts: string[]): void {
  for (const m of t.members) {
    if (m.isStatic) {
      const sv = staticValue(m, v.ctx);
      if (sv) parts.push(`static ${m.name} = ${nest(() => fmt(sv, false))}`);
      else parts.push(`static ${m.name} = <optimized out>`);
      continue;
    }
    const mv = v.member(m);
    let s: string;
    if (m.name && m.name.startsWith('_vptr.')) {
      s = safe(() => {
        const a = BigInt.asUintN(64, mv.int());
        const sym = v.ctx.symbolize?.(a, true);
        return `0x${a.toString(16)}${sym ? ` <${sym}>` : ''}`;
      });
    } else s = nest(() => fmt(mv, false));
    parts.push(m.name ? `${m.name} = ${s}` : s);
  }
}

// ---------------------------------------------------------------- libstdc++ printers

/** A member by name, searching base classes (virtual ones through the vtable). */
export function memberPath(t: StructType, name: string): { m: Member; path: (Base | Member)[] } | undefined {
  for (const m of t.members) if (m.name === name) return { m, path: [] };
  for (const m of t.members) {
    if (m.name) continue;
    const mt = strip(m.type);
    if (mt.k === 'struct') { const r = memberPath(mt, name); if (r) return { m: r.m, path: [m, ...r.path] }; }
  }
  for (const b of t.bases) {
    const bt = strip(b.type);
    if (bt.k === 'struct') { const r = memberPath(bt, name); if (r) return { m: r.m, path: [b, ...r.path] }; }
  }
  return undefined;
}

/** Follows a member path from memberPath to the containing object. */
export function alongPath(v: Value, path: (Base | Member)[]): Value {
  let cur = v;
  for (const step of path) cur = 'virtual' in step ? baseValue(cur, step) : cur.member(step);
  return cur;
}

export function field(v: Value, name: string): Value {
  const t = strip(v.type);
  if (t.k !== 'struct') throw new Error(`Attempt to extract a component of a value that is not a structure.`);
  const f = memberPath(t, name);
  if (!f || f.m.isStatic) throw new Error(`There is no member named ${name}.`);
  return alongPath(v, f.path).member(f.m);
}

const PRINTERS = [/^std::__cxx11::basic_string<char[,<]/, /^std::basic_string<char[,<]/, /^std::vector<.*>$/, /^std::(multi)?map<.*>$/, /^std::(multi)?set<.*>$/,
  /^std::variant<.*>$/, /^std::any$/, /^std::(__cxx11::)?basic_string_view<(char|wchar_t|char16_t|char32_t)[,<]/, /^std::unique_ptr<.*>$/, /^__gnu_cxx::__normal_iterator<.*>$/,
  /^std::(shared|weak)_ptr<.*>$/, /^std::(__cxx11::)?list<.*>$/, /^std::unordered_(map|set)<.*>$/, /^std::optional<.*>$/, /^std::pair<.*>$/,
  /^std::deque<.*>$/, /^std::(stack|queue|priority_queue)<.*>$/, /^std::tuple<.*>$/, /^std::(__cxx11::)?basic_string<(wchar_t|char16_t|char32_t)[,<]/];

export function hasPrinter(t: StructType): boolean {
  return !!t.name && PRINTERS.some((r) => r.test(t.name!));
}

/** Whether libstdc++'s printer for the type has children (strings and iterators do not; std::pair has no printer). */
function printerHasChildren(t: Type): boolean {
  const s = strip(t);
  if (s.k !== 'struct' || !hasPrinter(s)) return false;
  return !/^std::(__cxx11::)?basic_string(_view)?<|^std::pair<|^__gnu_cxx::__normal_iterator</.test(s.name!);
}

/** Splits `a<b, c<d, e> >` into `a` and its top-level template arguments. */
function templateParts(name: string): { base: string; args: string[] } | undefined {
  const open = name.indexOf('<');
  if (open < 0 || !name.endsWith('>')) return undefined;
  const args: string[] = [];
  let depth = 0, start = open + 1;
  for (let i = open + 1; i < name.length - 1; i++) {
    const c = name[i];
    if (c === '<' || c === '(') depth++;
    else if (c === '>' || c === ')') depth--;
    else if (c === ',' && depth === 0) { args.push(name.slice(start, i).trim()); start = i + 1; }
  }
  args.push(name.slice(start, name.length - 1).trim());
  return { base: name.slice(0, open), args };
}

/**
 * A type's name after libstdc++'s type printers (gdb's `_recognize`): std::string for
 * basic_string<char>, and containers without their default allocator and comparator
 * (`std::vector<int>`). Types no printer recognizes keep their full name.
 */
export function recognizedName(name: string): string {
  const str = /^std::(?:__cxx11::)?basic_string<(char|wchar_t|char8_t|char16_t|char32_t), std::char_traits<\1>, std::allocator<\1> >$/.exec(name);
  if (str) return { char: 'std::string', wchar_t: 'std::wstring', char8_t: 'std::u8string', char16_t: 'std::u16string', char32_t: 'std::u32string' }[str[1]]!;
  const p = templateParts(name);
  if (!p) return name;
  const base = p.base.replace(/^std::__cxx11::/, 'std::');
  const a = p.args;
  const alloc = (x: string | undefined) => !!x && /^std::allocator<.*>$/.test(x);
  const less = (x: string | undefined) => !!x && /^std::less<.*>$/.test(x);
  if (/^std::(vector|list|deque|forward_list)$/.test(base) && a.length === 2 && alloc(a[1])) return `${base}<${recognizedName(a[0])}>`;
  if (/^std::(set|multiset)$/.test(base) && a.length === 3 && less(a[1]) && alloc(a[2])) return `${base}<${recognizedName(a[0])}>`;
  if (/^std::(map|multimap)$/.test(base) && a.length === 4 && less(a[2]) && alloc(a[3])) return `${base}<${recognizedName(a[0])}, ${recognizedName(a[1])}>`;
  return name;
}

/** The `[contained value]` of std::variant / std::any / std::optional as their printers show it. */
function fmtContained(label: string, inner: Value, arrayHint: boolean): string {
  if (printerHasChildren(inner.type)) return `${label} containing ${nest(() => fmt(inner, false))}`;
  const s = nest(() => fmt(inner, false));
  return `${label} = {${arrayHint ? s : `[contained value] = ${s}`}}`;
}

/** std::variant: the alternatives and the active one (undefined when valueless). */
function variantParts(v: Value, t: StructType): { label: string; index: number; inner?: Value } {
  const alts = t.templateTypes;
  const label = `std::variant<${alts.map((a) => recognizedName(typeName(a))).join(', ')}>`;
  const index = Number(BigInt.asUintN(64, field(v, '_M_index').int()));
  if (index >= alts.length) return { label, index };
  const storage = field(field(field(v, '_M_u'), '_M_first'), '_M_storage');
  if (storage.addr === undefined) throw new Error('Attempt to take address of value not located in memory.');
  return { label, index, inner: new Value(alts[index], v.ctx, storage.addr) };
}

/** std::any: the contained type named by its manager function (`std::any::_Manager_internal<T>::_S_manage`). */
function anyParts(v: Value): { contained?: Value; typeName?: string } {
  const mgr = BigInt.asUintN(64, field(v, '_M_manager').int());
  if (!mgr) return {};
  const fn = v.ctx.symbolize?.(mgr, false);
  if (!fn) throw new Error('Invalid function pointer in std::any');
  const m = /^(std::any::_Manager_(internal|external)<.*>)::_S_manage\(/.exec(fn);
  if (!m) throw new Error('Unknown manager function in std::any');
  const mt = v.ctx.lookupType?.(m[1]);
  const ms = mt ? strip(mt) : undefined;
  if (!ms || ms.k !== 'struct' || !ms.templateTypes.length) throw new Error(`No type named ${m[1]}.`);
  const ct = ms.templateTypes[0];
  const storage = field(v, '_M_storage');
  const addr = m[2] === 'internal' ? field(storage, '_M_buffer').addr : BigInt.asUintN(64, field(storage, '_M_ptr').int());
  if (addr === undefined) throw new Error('Attempt to take address of value not located in memory.');
  return { contained: new Value(ct, v.ctx, addr), typeName: recognizedName(typeName(ct)) };
}

/** Summary of a pretty-printed value as gdb's `bt` shows it with `print frame-arguments scalars`. */
export function summaryForFrameArgs(v: Value): string | undefined {
  let t = strip(v.type);
  let val = v;
  while (t.k === 'ref') { val = val.deref(); t = strip(val.type); }
  if (t.k !== 'struct' || !hasPrinter(t)) return undefined;
  const full = formatValue(val);
  const eq = full.indexOf(' = {');
  if (/^std::(vector|map|set)/.test(full)) return eq >= 0 ? full.slice(0, eq) + ' = {...}' : full;
  return full;
}

function prettyPrint(v: Value, t: StructType): string | undefined {
  const name = t.name;
  if (!name || !hasPrinter(t)) return undefined;
  try {
    if (name.startsWith('__gnu_cxx::__normal_iterator<')) {
      const cur = field(v, '_M_current');
      if (BigInt.asUintN(64, cur.int()) === 0n) return 'non-dereferenceable iterator for std::vector';
      return fmt(cur.deref(), false);
    }
    if (/^std::__cxx11::basic_string<char[,<]/.test(name) || /^std::basic_string<char[,<]/.test(name)) {
      const p = field(field(v, '_M_dataplus'), '_M_p');
      const len = Number(field(v, '_M_string_length').int());
      const addr = BigInt.asUintN(64, p.int());
      if (addr === 0n && len !== 0) return '<error reading variable: Cannot create a lazy string with address 0x0, and a non-zero length.>';
      const n = Math.min(len, PRINT_MAX);
      const b = n ? v.ctx.mem.read(addr, n) : Buffer.alloc(0);
      return fmtString([...b], len > PRINT_MAX);
    }
    const wm = /^std::(__cxx11::)?basic_string<(wchar_t|char16_t|char32_t)[,<]/.exec(name);
    if (wm) {
      const csize = wm[2] === 'char16_t' ? 2 : 4;
      const pre = wm[2] === 'wchar_t' ? 'L' : wm[2] === 'char16_t' ? 'u' : 'U';
      const addr = BigInt.asUintN(64, field(field(v, '_M_dataplus'), '_M_p').int());
      const len = Number(field(v, '_M_string_length').int());
      const n = Math.min(len, PRINT_MAX);
      const b = n ? v.ctx.mem.read(addr, n * csize) : Buffer.alloc(0);
      const chars: number[] = [];
      for (let i = 0; i < n; i++) chars.push(csize === 2 ? b.readUInt16LE(i * 2) : b.readUInt32LE(i * 4));
      return fmtWide(chars, pre, len > PRINT_MAX);
    }
    if (/^std::deque<.*>$/.test(name)) {
      const el = t.templateTypes[0];
      const esz = BigInt(sizeOf(el) || 1);
      const bufN = esz < 512n ? 512n / esz : 1n;
      const impl = field(v, '_M_impl');
      const st = field(impl, '_M_start'), fi = field(impl, '_M_finish');
      const g = (it: Value, f: string) => BigInt.asUintN(64, field(it, f).int());
      let cur = g(st, '_M_cur'), last = g(st, '_M_last'), node = g(st, '_M_node');
      const end = g(fi, '_M_cur');
      const rd = (a: bigint) => v.ctx.mem.read(a, 8).readBigUInt64LE(0);
      // the size as libstdc++'s printer computes it (signed: garbage shows as gdb shows it)
      const sN = (x: bigint) => BigInt.asIntN(64, x);
      const countB = bufN * ((sN(g(fi, '_M_node')) - sN(node)) / 8n - 1n) + (sN(end) - sN(g(fi, '_M_first'))) / esz + (sN(last) - sN(cur)) / esz;
      const items: string[] = [];
      for (let i = 0; i < PRINT_MAX && cur !== end; i++) {
        const a = cur; items.push(nest(() => fmt(new Value(el, v.ctx, a), false)));
        cur += esz;
        if (cur === last) { node += 8n; const first = rd(node); cur = first; last = first + bufN * esz; }
      }
      const head = `std::deque with ${countB} element${countB === 1n ? '' : 's'}`;
      return countB ? `${head} = {${items.join(', ')}${countB > BigInt(PRINT_MAX) ? '...' : ''}}` : head;
    }
    const adapter = /^std::(stack|queue|priority_queue)<.*>$/.exec(name);
    if (adapter) return `std::${adapter[1]} wrapping: ${nest(() => fmt(field(v, 'c'), false))}`;
    if (/^std::tuple<.*>$/.test(name)) {
      const items: string[] = [];
      let cur: Value | undefined = t.bases.length ? baseValue(v, t.bases[0]) : undefined;
      while (cur) {
        const ct = strip(cur.type);
        if (ct.k !== 'struct') break;
        const headB = ct.bases.find((b) => /^std::_Head_base</.test(strip(b.type).k === 'struct' ? (strip(b.type) as StructType).name ?? '' : ''));
        const nextB = ct.bases.find((b) => /^std::_Tuple_impl</.test(strip(b.type).k === 'struct' ? (strip(b.type) as StructType).name ?? '' : ''));
        if (headB) { const hv = baseValue(cur, headB); items.push(`[${items.length + 1}] = ${nest(() => fmt(field(hv, '_M_head_impl'), false))}`); }
        cur = nextB ? baseValue(cur, nextB) : undefined;
      }
      return items.length ? `std::tuple containing = {${items.join(', ')}}` : 'empty std::tuple';
    }
    if (/^std::vector<bool[,>]/.test(name)) {
      const impl = field(v, '_M_impl');
      const st = field(impl, '_M_start'), fi = field(impl, '_M_finish');
      const sp = BigInt.asUintN(64, field(st, '_M_p').int()), so = Number(field(st, '_M_offset').int());
      const fp = BigInt.asUintN(64, field(fi, '_M_p').int()), fo = Number(field(fi, '_M_offset').int());
      const eos = BigInt.asUintN(64, field(impl, '_M_end_of_storage').int());
      const len = Number((fp - sp) / 8n) * 64 + fo - so;
      const cap = Number((eos - sp) / 8n) * 64;
      const head = `std::vector<bool> of length ${len}, capacity ${cap}`;
      if (len <= 0) return head;
      const n = Math.min(len, PRINT_MAX);
      const words = v.ctx.mem.read(sp, Math.ceil((so + n) / 64) * 8);
      const items: string[] = [];
      for (let i = 0; i < n; i++) { const bit = so + i; items.push((words[bit >> 3] >> (bit & 7)) & 1 ? 'true' : 'false'); }
      return `${head} = {${items.join(', ')}${len > PRINT_MAX ? '...' : ''}}`;
    }
    if (/^std::(shared|weak)_ptr<.*>$/.test(name)) {
      const kind = name.startsWith('std::shared_ptr') ? 'std::shared_ptr' : 'std::weak_ptr';
      const el = t.templateTypes[0];
      const ptr = BigInt.asUintN(64, field(v, '_M_ptr').int());
      const pi = BigInt.asUintN(64, field(field(v, '_M_refcount'), '_M_pi').int());
      let state: string;
      if (!pi) state = 'empty';
      else {
        const b = v.ctx.mem.read(pi + 8n, 8);
        const use = b.readInt32LE(0), weak = b.readInt32LE(4) - 1;
        state = use === 0 ? `expired, weak count ${weak}` : `use count ${use}, weak count ${weak}`;
      }
      return `${kind}<${el ? typeName(el) : '?'}> (${state}) = {get() = 0x${ptr.toString(16)}}`;
    }
    if (/^std::(__cxx11::)?list<.*>$/.test(name)) {
      const label = name.replace(/<.*$/, '');
      const el = t.templateTypes[0];
      const head = field(field(v, '_M_impl'), '_M_node');
      const headAddr = head.addr!;
      const rd = (a: bigint) => v.ctx.mem.read(a, 8).readBigUInt64LE(0);
      let node = rd(headAddr);
      if (node === headAddr) return `empty ${label}`;
      const items: string[] = [];
      for (let i = 0; node !== headAddr && i < PRINT_MAX; i++) {
        const n = node;
        items.push(`[${i}] = ${nest(() => fmt(new Value(el, v.ctx, n + 16n), false))}`);
        node = rd(node);
      }
      return `${label} = {${items.join(', ')}${node !== headAddr ? '...' : ''}}`;
    }
    if (/^std::unordered_(map|set)<.*>$/.test(name)) {
      const isMap = name.startsWith('std::unordered_map');
      const label = isMap ? 'std::unordered_map' : 'std::unordered_set';
      const h = field(v, '_M_h');
      const count = BigInt.asUintN(64, field(h, '_M_element_count').int());
      const elements = `${count} element${count === 1n ? '' : 's'}`;
      if (!count) return `${label} with 0 elements`;
      const [kT, vT] = t.templateTypes;
      const rd = (a: bigint) => v.ctx.mem.read(a, 8).readBigUInt64LE(0);
      let node = rd(field(h, '_M_before_begin').addr!);
      const items: string[] = [];
      const vOff = isMap ? BigInt(Math.ceil(sizeOf(kT) / alignOf(vT ?? kT)) * alignOf(vT ?? kT)) : 0n;
      const valAlign = BigInt(Math.max(8, alignOf(kT)));
      for (let i = 0; node && i < PRINT_MAX; i++) {
        const valAddr = (node + 8n + valAlign - 1n) / valAlign * valAlign;
        const k = nest(() => fmt(new Value(kT, v.ctx, valAddr), false));
        items.push(isMap ? `[${k}] = ${nest(() => fmt(new Value(vT, v.ctx, valAddr + vOff), false))}` : `[${i}] = ${k}`);
        node = rd(node);
      }
      return `${label} with ${elements} = {${items.join(', ')}}`;
    }
    if (/^std::optional<.*>$/.test(name)) {
      const el = t.templateTypes[0];
      const payload = field(v, '_M_payload');
      const engaged = field(payload, '_M_engaged').int() !== 0n;
      const label = `std::optional<${el ? recognizedName(typeName(el)) : '?'}>`;
      if (!engaged) return `${label} [no contained value]`;
      return fmtContained(label, field(field(payload, '_M_payload'), '_M_value'), false);
    }
    if (/^std::variant<.*>$/.test(name)) {
      const { label, index, inner } = variantParts(v, t);
      if (!inner) return `${label} [no contained value]`;
      return fmtContained(`${label} [index ${index}]`, inner, true);
    }
    if (name === 'std::any') {
      const { contained, typeName: tn } = anyParts(v);
      if (!contained) return 'std::any [no contained value]';
      if (printerHasChildren(contained.type)) return `std::any containing ${nest(() => fmt(contained, false))}`;
      return fmtContained(`std::any containing ${tn}`, contained, false);
    }
    const sv = /^std::(?:__cxx11::)?basic_string_view<(char|wchar_t|char16_t|char32_t)[,<]/.exec(name);
    if (sv) {
      // a counted string: `print elements` characters at most, NULs included
      const addr = BigInt.asUintN(64, field(v, '_M_str').int());
      const len = Number(BigInt.asUintN(64, field(v, '_M_len').int()));
      const n = Math.min(len, PRINT_MAX);
      const csize = sv[1] === 'char' ? 1 : sv[1] === 'char16_t' ? 2 : 4;
      const b = n ? v.ctx.mem.read(addr, n * csize) : Buffer.alloc(0);
      if (csize === 1) return fmtString([...b], len > PRINT_MAX);
      const chars: number[] = [];
      for (let i = 0; i < n; i++) chars.push(csize === 2 ? b.readUInt16LE(i * 2) : b.readUInt32LE(i * 4));
      return fmtWide(chars, sv[1] === 'wchar_t' ? 'L' : sv[1] === 'char16_t' ? 'u' : 'U', len > PRINT_MAX);
    }
    if (/^std::pair<.*>$/.test(name)) {
      return `{first = ${nest(() => fmt(field(v, 'first'), false))}, second = ${nest(() => fmt(field(v, 'second'), false))}}`;
    }
    if (/^std::vector<.*>$/.test(name) && !/^std::vector<bool[,>]/.test(name)) {
      const impl = field(v, '_M_impl');
      const start = field(impl, '_M_start');
      const finish = BigInt.asUintN(64, field(impl, '_M_finish').int());
      const eos = BigInt.asUintN(64, field(impl, '_M_end_of_storage').int());
      const s = BigInt.asUintN(64, start.int());
      const pt = strip(start.type);
      const el = pt.k === 'ptr' ? pt.to : t.templateTypes[0];
      const esz = BigInt(sizeOf(el) || 1);
      const lenB = BigInt.asIntN(64, finish - s) / esz, capB = BigInt.asIntN(64, eos - s) / esz;
      const len = Number(lenB);
      const head = `std::vector of length ${lenB}, capacity ${capB}`;
      if (!len) return head;
      const arrT: Type = { k: 'array', of: el, count: Math.min(len, PRINT_MAX) };
      const items = fmtArray(new Value(arrT, v.ctx, s), el, Math.min(len, PRINT_MAX));
      return `${head} = ${len > PRINT_MAX ? items.replace(/\}$/, '...}') : items}`;
    }
    if (/^std::(multi)?(map|set)<.*>$/.test(name)) {
      const isMap = /^std::(multi)?map</.test(name);
      const tree = field(v, '_M_t');
      const impl = field(tree, '_M_impl');
      const header = field(impl, '_M_header');
      const countB = BigInt.asUintN(64, field(impl, '_M_node_count').int());
      const count = Number(countB);
      const label = name.replace(/<.*$/, '');
      const elements = (n: bigint) => `${n} element${n === 1n ? '' : 's'}`;
      if (!count) return `${label} with 0 elements`;
      const [kT, vT] = t.templateTypes;
      const rd = (a: bigint) => v.ctx.mem.read(a, 8).readBigUInt64LE(0);
      const headerAddr = header.addr!;
      const items: string[] = [];
      const vOff = BigInt(Math.ceil(sizeOf(kT) / alignOf(vT ?? kT)) * alignOf(vT ?? kT));
      // the order of reads follows libstdc++'s printer, so a broken tree fails where gdb's does
      try {
        let node = rd(headerAddr + 16n); // leftmost
        for (let i = 0; i < count && i < PRINT_MAX; i++) {
          const result = node;
          if (i + 1 < count) {
            const right = rd(node + 24n);
            if (right) { node = right; for (let l = rd(node + 16n); l; l = rd(node + 16n)) node = l; }
            else {
              let p = rd(node + 8n);
              while (node === rd(p + 24n)) { node = p; p = rd(p + 8n); }
              if (rd(node + 24n) !== p) node = p;
            }
          }
          const valAddr = result + 32n;
          const k = nest(() => fmt(new Value(kT, v.ctx, valAddr), false));
          if (isMap) items.push(`[${k}] = ${nest(() => fmt(new Value(vT, v.ctx, valAddr + vOff), false))}`);
          else items.push(`[${i}] = ${k}`);
        }
      } catch (e) {
        if (e instanceof OptimizedOut) throw e;
        const msg = `<error reading variable: ${(e as Error).message}>`;
        return items.length ? `${label} with ${elements(countB)} = {${items.join(', ')}${msg}}` : `${label} with ${elements(countB)}${msg}`;
      }
      return `${label} with ${elements(countB)} = {${items.join(', ')}${count > PRINT_MAX ? '...' : ''}}`;
    }
    if (/^std::unique_ptr<.*>$/.test(name)) {
      const p = BigInt.asUintN(64, v.bytes().readBigUInt64LE(0));
      const el = t.templateTypes[0];
      return `std::unique_ptr<${el ? typeName(el) : '?'}> = {get() = 0x${p.toString(16)}}`;
    }
  } catch (e) {
    if (e instanceof OptimizedOut) throw e;
    // a printer that cannot read its object: gdb reports the error in place of the value
    const msg = (e as Error).message;
    return DEPTH === 0 ? `<error reading variable: ${msg}>` : `<error: ${msg}>`;
  }
  return undefined;
}

// ---------------------------------------------------------------- children (for a variables view)

export interface Child { name: string; value: Value }

/**
 * The expandable parts of a value, as a debugger's variables view shows them: members and base
 * classes of structures, elements of arrays, the pointee of a pointer, the elements of
 * std::vector / std::map / std::set. `start`/`count` page through long arrays and containers.
 */
export function valueChildren(v: Value, start = 0, count = 100): Child[] {
  let t = strip(v.type);
  let val = v;
  if (t.k === 'ref') { val = v.deref(); t = strip(val.type); }
  const out: Child[] = [];
  switch (t.k) {
    case 'struct': {
      const name = t.name ?? '';
      if (/^std::vector<.*>$/.test(name) && !/^std::vector<bool[,>]/.test(name)) {
        const impl = field(val, '_M_impl');
        const s = BigInt.asUintN(64, field(impl, '_M_start').int());
        const f = BigInt.asUintN(64, field(impl, '_M_finish').int());
        const pt = strip(field(impl, '_M_start').type);
        const el = pt.k === 'ptr' ? pt.to : t.templateTypes[0];
        const esz = BigInt(sizeOf(el) || 1);
        const n = Number((f - s) / esz);
        for (let i = start; i < Math.min(n, start + count); i++) out.push({ name: `[${i}]`, value: new Value(el, v.ctx, s + BigInt(i) * esz) });
        return out;
      }
      // std::variant / std::any / std::optional: the contained value, or its own printer's children
      const contained = containedOf(val, t);
      if (contained !== undefined) {
        if (!contained) return out;
        if (printerHasChildren(contained.type)) return valueChildren(contained, start, count);
        return start === 0 ? [{ name: '[contained value]', value: contained }] : [];
      }
      for (const b of t.bases) out.push({ name: `<${typeName(strip(b.type))}>`, value: baseValue(val, b) });
      for (const m of t.members) {
        if (m.isStatic) { const sv = staticValue(m, v.ctx); if (sv) out.push({ name: `static ${m.name}`, value: sv }); continue; }
        out.push({ name: m.name ?? '<anonymous>', value: val.member(m) });
      }
      return out;
    }
    case 'array': {
      const esz = sizeOf(t.of);
      const n = t.count ?? 0;
      for (let i = start; i < Math.min(n, start + count); i++) out.push({ name: `[${i}]`, value: val.sub(t.of, i * esz) });
      return out;
    }
    case 'ptr': {
      const to = strip(t.to);
      if (to.k === 'void' || to.k === 'func') return out;
      if (BigInt.asUintN(64, val.int()) === 0n) return out;
      out.push({ name: '*', value: val.deref() });
      return out;
    }
    default:
      return out;
  }
}

/** The contained value of std::variant / any / optional (null: none), undefined for other types. */
function containedOf(v: Value, t: StructType): Value | null | undefined {
  const name = t.name ?? '';
  try {
    if (/^std::variant<.*>$/.test(name)) return variantParts(v, t).inner ?? null;
    if (name === 'std::any') return anyParts(v).contained ?? null;
    if (/^std::optional<.*>$/.test(name)) {
      const payload = field(v, '_M_payload');
      return field(payload, '_M_engaged').int() !== 0n ? field(field(payload, '_M_payload'), '_M_value') : null;
    }
  } catch { return undefined; }
  return undefined;
}

/** Whether a value has children to expand. */
export function hasChildren(v: Value): boolean {
  let t = strip(v.type);
  if (t.k === 'ref') t = strip(t.to);
  if (t.k === 'struct' || t.k === 'array') return true;
  if (t.k === 'ptr') { const to = strip(t.to); return to.k !== 'void' && to.k !== 'func'; }
  return false;
}
