// A cursor over a Buffer: fixed-size little-endian integers, LEB128, C strings.

export class Cursor {
  constructor(public buf: Buffer, public pos = 0, public end = buf.length) {}
  get eof(): boolean { return this.pos >= this.end; }
  u8(): number { return this.buf[this.pos++]; }
  i8(): number { return this.buf.readInt8(this.pos++); }
  u16(): number { const v = this.buf.readUInt16LE(this.pos); this.pos += 2; return v; }
  i16(): number { const v = this.buf.readInt16LE(this.pos); this.pos += 2; return v; }
  u32(): number { const v = this.buf.readUInt32LE(this.pos); this.pos += 4; return v; }
  i32(): number { const v = this.buf.readInt32LE(this.pos); this.pos += 4; return v; }
  u64(): bigint { const v = this.buf.readBigUInt64LE(this.pos); this.pos += 8; return v; }
  i64(): bigint { const v = this.buf.readBigInt64LE(this.pos); this.pos += 8; return v; }
  /** u64 as a JS number (offsets, sizes) */
  u64n(): number { return Number(this.u64()); }
  uN(n: number): bigint {
    switch (n) {
      case 1: return BigInt(this.u8());
      case 2: return BigInt(this.u16());
      case 4: return BigInt(this.u32());
      case 8: return this.u64();
    }
    let v = 0n;
    for (let i = 0; i < n; i++) v |= BigInt(this.u8()) << BigInt(8 * i);
    return v;
  }
  /** offset of 4 or 8 bytes (DWARF 32/64) */
  off(size: number): number { return size === 8 ? this.u64n() : this.u32(); }
  uleb(): number {
    let result = 0, shift = 0, b: number;
    do {
      b = this.buf[this.pos++];
      if (shift < 49) result += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return result;
  }
  ulebBig(): bigint {
    let result = 0n, shift = 0n, b: number;
    do {
      b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    return result;
  }
  /** signed LEB128 as a number: no BigInt for values that fit in 32 bits (nearly all) */
  sleb(): number {
    const buf = this.buf;
    let pos = this.pos, result = 0, shift = 0, b: number;
    do {
      b = buf[pos++];
      if (shift === 28 && (b & 0x80)) return Number(this.slebBig()); // 5+ bytes: exact path
      result |= (b & 0x7f) << shift;
      shift += 7;
    } while (b & 0x80);
    this.pos = pos;
    if (shift < 32) return (b & 0x40) ? result | (-1 << shift) : result;
    // five bytes: 35 bits read, bits 28..34 came from the last byte
    return Number(BigInt.asIntN(35, BigInt(result >>> 0) | (BigInt(b & 0x70) << 28n)));
  }
  slebBig(): bigint {
    let result = 0n, shift = 0n, b: number;
    do {
      b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      shift += 7n;
    } while (b & 0x80);
    if (b & 0x40) result -= 1n << shift;
    return result;
  }
  skipUleb(): void { while (this.buf[this.pos++] & 0x80); }
  cstr(): string {
    const start = this.pos;
    let i = this.buf.indexOf(0, start);
    if (i < 0 || i > this.end) i = this.end;
    this.pos = i + 1;
    return this.buf.toString('utf8', start, i);
  }
  bytes(n: number): Buffer { const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  skip(n: number): void { this.pos += n; }
}

export function cstrAt(buf: Buffer, off: number): string {
  let i = buf.indexOf(0, off);
  if (i < 0) i = buf.length;
  return buf.toString('utf8', off, i);
}

export const MASK64 = (1n << 64n) - 1n;
export function u64(v: bigint): bigint { return v & MASK64; }
export function s64(v: bigint): bigint { return BigInt.asIntN(64, v); }
export function hex(v: bigint | number): string { return '0x' + v.toString(16); }
