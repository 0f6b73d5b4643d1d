// DWARF expression evaluator (location descriptions and CFI expressions).
import { Cursor, u64, s64 } from './reader';

export type Loc =
  | { kind: 'memory'; addr: bigint }
  | { kind: 'register'; reg: number }
  | { kind: 'value'; value: bigint }
  | { kind: 'implicit'; bytes: Buffer }
  | { kind: 'pieces'; pieces: { loc: Loc; bits: number }[] }
  | { kind: 'optimized' };

export interface ExprContext {
  reg(n: number): bigint;
  mem(addr: bigint, size: number): Buffer;
  frameBase?(): bigint;
  cfa?(): bigint;
  addrx?(i: number): bigint;
  /** value a register had on entry to the current function (DW_OP_entry_value) */
  entryValue?(expr: Buffer): bigint;
  /** address of a TLS variable given its module-relative offset */
  tls?(offset: bigint): bigint;
  /** load bias to add to DW_OP_addr */
  bias?: bigint;
  /** the base type at a unit-relative DIE offset (DW_OP_convert, DW_OP_regval_type ...) */
  baseType?(unitOffset: number): BaseType | undefined;
}

/** A typed DWARF stack entry's type (DW_ATE_* encoding, bytes); untyped entries are generic. */
export interface BaseType { enc: number; size: number }

const ATE_float = 4, ATE_signed = 5, ATE_signed_char = 6;

function isFloat(t: BaseType | undefined): boolean { return !!t && t.enc === ATE_float; }

function toNumber(v: bigint, t: BaseType): number {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt.asUintN(64, v));
  if (t.size === 4) return b.readFloatLE(0);
  if (t.size === 8) return b.readDoubleLE(0);
  throw new ExprError(`unsupported ${t.size}-byte floating-point type on the DWARF stack`);
}

function fromNumber(x: number, t: BaseType): bigint {
  const b = Buffer.alloc(8);
  if (t.size === 4) b.writeFloatLE(x, 0);
  else if (t.size === 8) b.writeDoubleLE(x, 0);
  else throw new ExprError(`unsupported ${t.size}-byte floating-point type on the DWARF stack`);
  return b.readBigUInt64LE(0);
}

/** An integer entry's value (generic entries are signed 64-bit, as gdb's address type). */
function intOf(v: bigint, t: BaseType | undefined): bigint {
  if (!t) return BigInt.asIntN(64, v);
  const bits = t.size * 8;
  return t.enc === ATE_signed || t.enc === ATE_signed_char ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v);
}

/** DW_OP_convert: the numeric value in another type (gdb's value_cast). */
function convert(v: bigint, from: BaseType | undefined, to: BaseType | undefined): bigint {
  if (to && isFloat(to)) return fromNumber(from && isFloat(from) ? toNumber(v, from) : Number(intOf(v, from)), to);
  const n = from && isFloat(from) ? BigInt(Math.trunc(toNumber(v, from))) : intOf(v, from);
  return to ? BigInt.asUintN(to.size * 8, n) : u64(n);
}

export class ExprError extends Error {}

export function evalExpr(expr: Buffer, ctx: ExprContext, initial: bigint[] = []): Loc {
  const st: bigint[] = [...initial];
  // types of typed entries (DWARF 5 typed stack), parallel to st; undefined: generic
  const ty: (BaseType | undefined)[] = initial.map(() => undefined);
  const c = new Cursor(expr);
  const pieces: { loc: Loc; bits: number }[] = [];
  let cur: Loc | null = null; // register / implicit location set by the last op
  const pop = (): bigint => {
    const v = st.pop();
    ty.pop();
    if (v === undefined) throw new ExprError('DWARF expression stack underflow');
    return v;
  };
  const push = (v: bigint) => { st.push(u64(v)); ty.push(undefined); };
  const pushTyped = (v: bigint, t: BaseType | undefined) => { st.push(t ? BigInt.asUintN(t.size * 8, v) : u64(v)); ty.push(t); };
  const typeAt = (off: number): BaseType | undefined => {
    if (off === 0) return undefined;
    const t = ctx.baseType?.(off);
    if (!t) throw new ExprError(`DWARF expression: no base type at unit offset 0x${off.toString(16)}`);
    return t;
  };
  const bits = (b: Buffer, n: number): bigint => { let v = 0n; for (let i = Math.min(n, 8) - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); return v; };
  const bias = ctx.bias ?? 0n;
  function typedOp(op: number): boolean {
    const unary = op === 0x1f || op === 0x19;
    const binary = [0x1b, 0x1c, 0x1e, 0x22, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e].includes(op);
    if (!unary && !binary) return false;
    const tb = ty[ty.length - 1], b = pop();
    if (unary) {
      if (tb && isFloat(tb)) { const x = toNumber(b, tb); pushTyped(fromNumber(op === 0x1f ? -x : Math.abs(x), tb), tb); }
      else { const x = intOf(b, tb); pushTyped(op === 0x1f ? -x : x < 0n ? -x : x, tb); }
      return true;
    }
    const ta = ty[ty.length - 1], a = pop();
    const t = ta ?? tb;
    if (op >= 0x29) { // comparisons give a generic boolean
      const [x, y] = t && isFloat(t) ? [toNumber(a, t), toNumber(b, t)] : [intOf(a, t), intOf(b, t)];
      const r = op === 0x29 ? x === y : op === 0x2a ? x >= y : op === 0x2b ? x > y : op === 0x2c ? x <= y : op === 0x2d ? x < y : x !== y;
      push(r ? 1n : 0n);
      return true;
    }
    if (t && isFloat(t)) {
      const x = toNumber(a, t), y = toNumber(b, t);
      pushTyped(fromNumber(op === 0x22 ? x + y : op === 0x1c ? x - y : op === 0x1e ? x * y : x / y, t), t);
      return true;
    }
    const x = intOf(a, t), y = intOf(b, t);
    if (op === 0x1b && y === 0n) throw new ExprError('division by zero in DWARF expression');
    pushTyped(op === 0x22 ? x + y : op === 0x1c ? x - y : op === 0x1e ? x * y : x / y, t);
    return true;
  }
  while (c.pos < c.end) {
    const op = c.u8();
    // arithmetic on typed entries follows their type (floating-point, narrow integers)
    if (st.length && (ty[ty.length - 1] || (st.length > 1 && ty[ty.length - 2])) && typedOp(op)) continue;
    if (op >= 0x30 && op <= 0x4f) { push(BigInt(op - 0x30)); continue; } // lit0..31
    if (op >= 0x50 && op <= 0x6f) { cur = { kind: 'register', reg: op - 0x50 }; continue; } // reg0..31
    if (op >= 0x70 && op <= 0x8f) { push(ctx.reg(op - 0x70) + c.slebBig()); continue; } // breg0..31
    switch (op) {
      case 0x03: push(c.u64() + bias); break; // addr
      case 0x06: { const a = pop(); push(ctx.mem(a, 8).readBigUInt64LE(0)); break; } // deref
      case 0x08: push(BigInt(c.u8())); break;
      case 0x09: push(BigInt(c.i8())); break;
      case 0x0a: push(BigInt(c.u16())); break;
      case 0x0b: push(BigInt(c.i16())); break;
      case 0x0c: push(BigInt(c.u32())); break;
      case 0x0d: push(BigInt(c.i32())); break;
      case 0x0e: push(c.u64()); break;
      case 0x0f: push(c.i64()); break;
      case 0x10: push(c.ulebBig()); break;
      case 0x11: push(c.slebBig()); break;
      case 0x12: pushTyped(st[st.length - 1], ty[ty.length - 1]); break; // dup
      case 0x13: pop(); break; // drop
      case 0x14: pushTyped(st[st.length - 2], ty[ty.length - 2]); break; // over
      case 0x15: { const i = c.u8(); pushTyped(st[st.length - 1 - i], ty[ty.length - 1 - i]); break; } // pick
      case 0x16: { const ta = ty[ty.length - 1], a = pop(), tb = ty[ty.length - 1], b = pop(); pushTyped(a, ta); pushTyped(b, tb); break; } // swap
      case 0x17: { const ta = ty[ty.length - 1], a = pop(), tb = ty[ty.length - 1], b = pop(), td = ty[ty.length - 1], d = pop(); pushTyped(a, ta); pushTyped(d, td); pushTyped(b, tb); break; } // rot
      case 0x19: { const a = s64(pop()); push(a < 0n ? -a : a); break; } // abs
      case 0x1a: { const b = pop(), a = pop(); push(a & b); break; }
      case 0x1b: { const b = s64(pop()), a = s64(pop()); if (b === 0n) throw new ExprError('division by zero in DWARF expression'); push(a / b); break; }
      case 0x1c: { const b = pop(), a = pop(); push(a - b); break; }
      case 0x1d: { const b = pop(), a = pop(); if (b === 0n) throw new ExprError('division by zero in DWARF expression'); push(a % b); break; }
      case 0x1e: { const b = pop(), a = pop(); push(a * b); break; }
      case 0x1f: push(-pop()); break;
      case 0x20: push(~pop()); break;
      case 0x21: { const b = pop(), a = pop(); push(a | b); break; }
      case 0x22: { const b = pop(), a = pop(); push(a + b); break; }
      case 0x23: push(pop() + c.ulebBig()); break; // plus_uconst
      case 0x24: { const b = pop(), a = pop(); push(a << b); break; }
      case 0x25: { const b = pop(), a = pop(); push(a >> b); break; }
      case 0x26: { const b = pop(), a = s64(pop()); push(a >> b); break; }
      case 0x27: { const b = pop(), a = pop(); push(a ^ b); break; }
      case 0x28: { const off = c.i16(); if (pop() !== 0n) c.pos += off; break; } // bra
      case 0x29: { const b = s64(pop()), a = s64(pop()); push(a === b ? 1n : 0n); break; }
      case 0x2a: { const b = s64(pop()), a = s64(pop()); push(a >= b ? 1n : 0n); break; }
      case 0x2b: { const b = s64(pop()), a = s64(pop()); push(a > b ? 1n : 0n); break; }
      case 0x2c: { const b = s64(pop()), a = s64(pop()); push(a <= b ? 1n : 0n); break; }
      case 0x2d: { const b = s64(pop()), a = s64(pop()); push(a < b ? 1n : 0n); break; }
      case 0x2e: { const b = s64(pop()), a = s64(pop()); push(a !== b ? 1n : 0n); break; }
      case 0x2f: { const off = c.i16(); c.pos += off; break; } // skip
      case 0x90: cur = { kind: 'register', reg: c.uleb() }; break; // regx
      case 0x91: { // fbreg
        if (!ctx.frameBase) throw new ExprError('DW_OP_fbreg without a frame base');
        push(ctx.frameBase() + c.slebBig()); break;
      }
      case 0x92: { const r = c.uleb(); push(ctx.reg(r) + c.slebBig()); break; } // bregx
      case 0x93: case 0x9d: { // piece, bit_piece
        const bits = op === 0x93 ? c.uleb() * 8 : c.uleb();
        if (op === 0x9d) c.uleb();
        let loc: Loc;
        if (cur) loc = cur;
        else if (st.length) loc = { kind: 'memory', addr: pop() };
        else loc = { kind: 'optimized' };
        pieces.push({ loc, bits });
        cur = null;
        break;
      }
      case 0x94: { const n = c.u8(); const a = pop(); const b = ctx.mem(a, n); let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); push(v); break; }
      case 0x96: break; // nop
      case 0x9c: if (!ctx.cfa) throw new ExprError('DW_OP_call_frame_cfa without CFA'); push(ctx.cfa()); break;
      case 0x9e: { const n = c.uleb(); cur = { kind: 'implicit', bytes: Buffer.from(c.bytes(n)) }; break; } // implicit_value
      case 0x9f: cur = { kind: 'value', value: pop() }; break; // stack_value
      case 0xa0: case 0xf2: { c.skip(4); c.sleb(); throw new ExprError('synthetic pointer (DW_OP_implicit_pointer) not supported'); }
      case 0xa3: case 0xf3: { // entry_value
        const n = c.uleb(); const sub = c.bytes(n);
        if (!ctx.entryValue) throw new ExprError('entry value unavailable');
        // DW_OP_entry_value(DW_OP_regval_type R T): the entry value has type T
        let t: BaseType | undefined;
        if (sub[0] === 0xa5 || sub[0] === 0xf5) { const sc = new Cursor(sub, 1); sc.uleb(); t = typeAt(sc.uleb()); }
        pushTyped(ctx.entryValue(sub), t);
        break;
      }
      case 0xa1: case 0xfb: { // addrx / GNU_addr_index
        const i = c.uleb(); if (!ctx.addrx) throw new ExprError('DW_OP_addrx without unit'); push(ctx.addrx(i) + bias); break;
      }
      case 0xa2: case 0xfc: { const i = c.uleb(); if (!ctx.addrx) throw new ExprError('DW_OP_constx without unit'); push(ctx.addrx(i)); break; }
      case 0xe0: case 0x9b: { // GNU_push_tls_address / form_tls_address
        const off = pop(); if (!ctx.tls) throw new ExprError('thread-local storage unavailable'); push(ctx.tls(off)); break;
      }
      case 0xa8: case 0xf7: { const to = typeAt(c.uleb()); const from = ty[ty.length - 1]; pushTyped(convert(pop(), from, to), to); break; } // convert
      case 0xa9: case 0xf9: { const to = typeAt(c.uleb()); pushTyped(pop(), to); break; } // reinterpret
      case 0xa4: case 0xf4: { const t = typeAt(c.uleb()); const n = c.u8(); pushTyped(bits(c.bytes(n), n), t); break; } // const_type
      case 0xa5: case 0xf5: { const r = c.uleb(); const t = typeAt(c.uleb()); pushTyped(ctx.reg(r), t); break; } // regval_type
      case 0xa6: case 0xf6: { const n = c.u8(); const t = typeAt(c.uleb()); const a = pop(); pushTyped(bits(ctx.mem(a, n), n), t); break; } // deref_type
      default:
        throw new ExprError(`unsupported DWARF operation 0x${op.toString(16)}`);
    }
  }
  if (pieces.length) return { kind: 'pieces', pieces };
  if (cur) return cur;
  if (!st.length) return { kind: 'optimized' };
  return { kind: 'memory', addr: st[st.length - 1] };
}
