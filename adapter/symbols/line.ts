// DWARF 4/5 line number programs.
import { posix } from 'node:path';
import { Cursor, cstrAt } from './reader';
import type { DwarfSections } from './dwarf';

export interface LineRow {
  addr: bigint; file: number; line: number; col: number; isStmt: boolean; endSeq: boolean;
}

const IS_STMT = 1, END_SEQ = 2;

/**
 * The rows of a line program, column by column in typed arrays (a large unit has hundreds of
 * thousands of rows: one object and one BigInt per row cost more to make and collect than the
 * decoding itself). Addresses are link-time addresses as numbers, exact below 2^53; rows of a
 * sequence placed above that (tombstones) keep their exact address in `big`.
 */
export class LineTable {
  constructor(
    /** file names by index (absolute where the program gives a directory) */
    readonly files: string[],
    /** number of rows; rows are in program order and sequences end with endSeq rows */
    readonly count: number,
    readonly addrs: Float64Array,
    readonly fileIdx: Uint32Array,
    readonly lines: Int32Array,
    readonly cols: Uint32Array,
    private flags: Uint8Array,
    private big?: Map<number, bigint>,
  ) {}
  isStmt(i: number): boolean { return (this.flags[i] & IS_STMT) !== 0; }
  endSeq(i: number): boolean { return (this.flags[i] & END_SEQ) !== 0; }
  addr(i: number): bigint { return this.big?.get(i) ?? BigInt(this.addrs[i]); }
  private seqs?: { start: Uint32Array; end: Uint32Array; sorted: Uint8Array };
  setSequences(start: Uint32Array, end: Uint32Array, sorted: Uint8Array): void { this.seqs = { start, end, sorted }; }
  /** The sequences: first row, end_sequence row, whether addresses never decrease in between. */
  sequences(): { start: Uint32Array; end: Uint32Array; sorted: Uint8Array } {
    if (this.seqs) return this.seqs;
    const start: number[] = [], end: number[] = [], sorted: number[] = [];
    let s = 0, ok = 1;
    for (let i = 0; i < this.count; i++) {
      if (i > s && this.addrs[i] < this.addrs[i - 1]) ok = 0;
      if (!(this.flags[i] & END_SEQ)) continue;
      start.push(s); end.push(i); sorted.push(ok);
      s = i + 1; ok = 1;
    }
    return (this.seqs = { start: Uint32Array.from(start), end: Uint32Array.from(end), sorted: Uint8Array.from(sorted) });
  }
  row(i: number): LineRow {
    return { addr: this.addr(i), file: this.fileIdx[i], line: this.lines[i], col: this.cols[i], isStmt: this.isStmt(i), endSeq: this.endSeq(i) };
  }
}

/** Reads only the header: file names (cheap; used to find which units mention a file). */
export function lineFiles(s: DwarfSections, offset: number, compDir: string, cuName: string): string[] {
  return parseHeader(s, offset, compDir, cuName).files;
}

function parseHeader(s: DwarfSections, offset: number, compDir: string, cuName: string) {
  const buf = s.line!;
  const c = new Cursor(buf, offset);
  let len = c.u32(); let os = 4;
  if (len === 0xffffffff) { len = c.u64n(); os = 8; }
  const end = c.pos + len;
  const version = c.u16();
  if (version >= 5) { c.u8(); c.u8(); }
  const hlen = c.off(os);
  const progStart = c.pos + hlen;
  const minInst = c.u8();
  if (version >= 4) c.u8(); // max ops per instruction
  const defaultIsStmt = c.u8() !== 0;
  const lineBase = c.i8();
  const lineRange = c.u8();
  const opcodeBase = c.u8();
  const stdLens: number[] = [0];
  for (let i = 1; i < opcodeBase; i++) stdLens.push(c.u8());
  const dirs: string[] = [];
  const files: string[] = [];
  const join = (d: string, f: string) => (posix.isAbsolute(f) ? f : posix.join(d, f));
  if (version >= 5) {
    const readFormat = () => {
      const n = c.u8(); const fmt: [number, number][] = [];
      for (let i = 0; i < n; i++) fmt.push([c.uleb(), c.uleb()]);
      return fmt;
    };
    const readEntry = (fmt: [number, number][]) => {
      let path = '', dir = 0;
      for (const [ct, form] of fmt) {
        let v: string | number = 0;
        switch (form) {
          case 0x08: v = c.cstr(); break;
          case 0x1f: v = cstrAt(s.lineStr!, c.off(os)); break;
          case 0x0e: v = cstrAt(s.str!, c.off(os)); break;
          case 0x0b: v = c.u8(); break;
          case 0x05: v = c.u16(); break;
          case 0x0f: v = c.uleb(); break;
          case 0x1e: c.skip(16); break;
          case 0x09: c.skip(c.uleb()); break;
          case 0x06: v = c.u32(); break;
          case 0x07: c.skip(8); break;
          default: throw new Error(`bad DWARF: line header form 0x${form.toString(16)}`);
        }
        if (ct === 1) path = v as string;
        else if (ct === 2) dir = v as number;
      }
      return { path, dir };
    };
    const dfmt = readFormat();
    const nd = c.uleb();
    for (let i = 0; i < nd; i++) {
      const e = readEntry(dfmt);
      dirs.push(i === 0 ? e.path : join(dirs[0] ?? compDir, e.path));
    }
    const ffmt = readFormat();
    const nf = c.uleb();
    for (let i = 0; i < nf; i++) {
      const e = readEntry(ffmt);
      files.push(join(dirs[e.dir] ?? compDir, e.path));
    }
  } else {
    dirs.push(compDir);
    for (;;) { const d = c.cstr(); if (!d) break; dirs.push(join(compDir, d)); }
    files.push(join(compDir, cuName));
    for (;;) {
      const f = c.cstr(); if (!f) break;
      const di = c.uleb(); c.uleb(); c.uleb();
      files.push(join(dirs[di] ?? compDir, f));
    }
  }
  return { version, end, progStart, minInst, defaultIsStmt, lineBase, lineRange, opcodeBase, stdLens, files };
}

function grown<T extends Float64Array | Uint32Array | Int32Array | Uint8Array>(a: T): T {
  const b = new (a.constructor as { new (n: number): T })(a.length * 2);
  b.set(a);
  return b;
}

export function parseLineTable(s: DwarfSections, offset: number, compDir: string, cuName: string): LineTable {
  const h = parseHeader(s, offset, compDir, cuName);
  const buf = s.line!;
  const c = new Cursor(buf, h.progStart, h.end);
  // The loop runs before the JIT has optimized it (a fresh process asks once): it keeps its
  // state in locals (no closures, no calls for the common opcodes) so the interpreter does
  // little per opcode. Rows go to typed arrays, doubled when full; every row takes at least
  // one opcode byte, so a quarter of the program's size is a fair first guess.
  let cap = Math.max(64, (h.end - h.progStart) >> 2);
  let addrs = new Float64Array(cap), files = new Uint32Array(cap), lines = new Int32Array(cap), cols = new Uint32Array(cap), flags = new Uint8Array(cap);
  let n = 0;
  let big: Map<number, bigint> | undefined;
  // sequences: first row, end row, whether addresses never decrease in between
  const seqStart: number[] = [], seqEnd: number[] = [], seqSorted: number[] = [];
  let curStart = 0, sorted = 1;
  // addresses as numbers; a sequence set above 2^53 is followed exactly in bigAddr
  let addr = 0, bigAddr: bigint | null = null;
  let file = 1, line = 1, col = 0, isStmt = h.defaultIsStmt;
  // gdb drops a row that repeats the previous row's file and line when that line has had a
  // non-zero discriminator (loop headers at -O0); we keep the same table so answers match
  let disc = 0, lineHasDisc = false, lastFile = -1, lastLine = -1;
  const minInst = h.minInst, lineRange = h.lineRange, lineBase = h.lineBase, opcodeBase = h.opcodeBase, stdLens = h.stdLens;
  const end = h.end;
  let pos = h.progStart;
  while (pos < end) {
    const op = buf[pos++];
    let emit = 0; // 1 row, 3 end of sequence
    let adv = 0;
    if (op >= opcodeBase) {
      const adj = op - opcodeBase;
      adv = ((adj / lineRange) | 0) * minInst;
      const d = lineBase + (adj % lineRange);
      line += d; if (d !== 0) lineHasDisc = disc !== 0;
      emit = 1;
    } else if (op === 1) emit = 1;
    else if (op === 5 && buf[pos] < 0x80) col = buf[pos++];
    else if (op === 3 && buf[pos] < 0x80) {
      const d = (buf[pos++] << 25) >> 25;
      line += d; if (d !== 0) lineHasDisc = disc !== 0;
    } else {
      c.pos = pos;
      switch (op) {
        case 0: {
          const len = c.uleb();
          const next = c.pos + len;
          const sub = c.u8();
          if (sub === 1) emit = 3;
          else if (sub === 2) {
            const lo = buf.readUInt32LE(c.pos), hi = buf.readUInt32LE(c.pos + 4);
            if (hi < 0x200000) { addr = hi * 0x100000000 + lo; bigAddr = null; } else bigAddr = buf.readBigUInt64LE(c.pos);
          } else if (sub === 4) { disc = c.uleb(); lineHasDisc ||= disc !== 0; }
          c.pos = next;
          break;
        }
        case 2: adv = c.uleb() * minInst; break;
        case 3: { const d = c.sleb(); line += d; if (d !== 0) lineHasDisc = disc !== 0; break; }
        case 4: file = c.uleb(); break;
        case 5: col = c.uleb(); break;
        case 6: isStmt = !isStmt; break;
        case 7: break;
        case 8: adv = Math.floor((255 - opcodeBase) / lineRange) * minInst; break;
        case 9: adv = c.u16(); break;
        case 10: case 11: break;
        case 12: c.uleb(); break;
        default: for (let i = 0; i < stdLens[op]; i++) c.uleb();
      }
      pos = c.pos;
    }
    if (adv) { if (bigAddr !== null) bigAddr += BigInt(adv); else addr += adv; }
    if (emit === 0) continue;
    if (emit === 3 || file !== lastFile || line !== lastLine || !lineHasDisc) {
      if (n === cap) {
        cap *= 2;
        addrs = grown(addrs); files = grown(files); lines = grown(lines); cols = grown(cols); flags = grown(flags);
      }
      if (bigAddr !== null) { (big ??= new Map()).set(n, bigAddr); addrs[n] = Number(bigAddr); } else addrs[n] = addr;
      if (n > curStart && addrs[n] < addrs[n - 1]) sorted = 0;
      files[n] = file; lines[n] = line; cols[n] = col;
      flags[n] = (isStmt ? IS_STMT : 0) | (emit === 3 ? END_SEQ : 0);
      n++;
    }
    if (emit === 3) {
      seqStart.push(curStart); seqEnd.push(n - 1); seqSorted.push(sorted);
      curStart = n; sorted = 1;
      addr = 0; bigAddr = null; file = 1; line = 1; col = 0; isStmt = h.defaultIsStmt; disc = 0; lineHasDisc = false; lastFile = -1; lastLine = -1;
    } else { lastFile = file; lastLine = line; disc = 0; }
  }
  // DWARF 4 file numbers start at 1; v5 at 0. Our files[] is indexed like the program's.
  const t = new LineTable(h.files, n, addrs.slice(0, n), files.slice(0, n), lines.slice(0, n), cols.slice(0, n), flags.slice(0, n), big);
  t.setSequences(Uint32Array.from(seqStart), Uint32Array.from(seqEnd), Uint8Array.from(seqSorted));
  return t;
}
