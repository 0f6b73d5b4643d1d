// Encoding a new value for a variable in its own type, for setVariable: integers,
// characters, booleans, enums and pointers take the integer value of the expression;
// floating point types its real value; structures and arrays a value of the same size.
import type { Value } from './symbols';
import { sizeOf, strip } from './symbols/types';

const DW_ATE_float = 4;

export function encodeFor(target: Value, source: Value): Buffer {
  const t = strip(target.type);
  const size = sizeOf(target.type);
  const out = Buffer.alloc(size);
  if (t.k === 'base' && t.enc === DW_ATE_float) {
    const s = strip(source.type);
    const x = s.k === 'base' && s.enc === DW_ATE_float ? source.float() : Number(source.int());
    if (size === 4) out.writeFloatLE(x);
    else if (size === 8) out.writeDoubleLE(x);
    else throw new Error(`cannot set a ${size}-byte floating point value yet`);
    return out;
  }
  if (t.k === 'base' || t.k === 'enum' || t.k === 'ptr') {
    const s = strip(source.type);
    const v = s.k === 'base' && s.enc === DW_ATE_float ? BigInt(Math.trunc(source.float())) : source.int();
    let x = BigInt.asUintN(size * 8, v);
    for (let i = 0; i < size; i++, x >>= 8n) out[i] = Number(x & 0xffn);
    return out;
  }
  const bytes = source.bytes();
  if (bytes.length !== size) throw new Error(`the new value has ${bytes.length} bytes, the variable ${size}`);
  return Buffer.from(bytes);
}
