// DWARF 4/5 line number programs.
import { posix } from 'node:path';
import { Cursor, cstrAt } from './reader';
import type { DwarfSections } from './dwarf';

export interface LineRow {
  addr: bigint; file: number; line: number; col: number; isStmt: boolean; endSeq: boolean;
}

export interface LineTable {
  /** file names by index (absolute where the program gives a directory) */
  files: string[];
  /** rows in program order; sequences end with endSeq rows */
  rows: LineRow[];
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

export function parseLineTable(s: DwarfSections, offset: number, compDir: string, cuName: string): LineTable {
  const h = parseHeader(s, offset, compDir, cuName);
  const c = new Cursor(s.line!, h.progStart, h.end);
  const rows: LineRow[] = [];
  let addr = 0n, file = 1, line = 1, col = 0, isStmt = h.defaultIsStmt;
  // gdb drops a row that repeats the previous row's file and line when that line has had a
  // non-zero discriminator (loop headers at -O0); we keep the same table so answers match
  let disc = 0, lineHasDisc = false, lastFile = -1, lastLine = -1;
  const reset = () => { addr = 0n; file = 1; line = 1; col = 0; isStmt = h.defaultIsStmt; disc = 0; lineHasDisc = false; lastFile = -1; lastLine = -1; };
  const emit = (endSeq: boolean) => {
    if (endSeq || file !== lastFile || line !== lastLine || !lineHasDisc) rows.push({ addr, file, line, col, isStmt, endSeq });
    lastFile = file; lastLine = line;
    disc = 0;
  };
  const advanceLine = (d: number) => { line += d; if (d !== 0) lineHasDisc = disc !== 0; };
  const minInst = BigInt(h.minInst);
  while (c.pos < h.end) {
    const op = c.u8();
    if (op >= h.opcodeBase) {
      const adj = op - h.opcodeBase;
      addr += BigInt(Math.floor(adj / h.lineRange)) * minInst;
      advanceLine(h.lineBase + (adj % h.lineRange));
      emit(false);
      continue;
    }
    switch (op) {
      case 0: {
        const len = c.uleb();
        const next = c.pos + len;
        const sub = c.u8();
        if (sub === 1) { emit(true); reset(); }
        else if (sub === 2) addr = c.u64();
        else if (sub === 4) { disc = c.uleb(); lineHasDisc ||= disc !== 0; }
        c.pos = next;
        break;
      }
      case 1: emit(false); break;
      case 2: addr += BigInt(c.uleb()) * minInst; break;
      case 3: advanceLine(c.sleb()); break;
      case 4: file = c.uleb(); break;
      case 5: col = c.uleb(); break;
      case 6: isStmt = !isStmt; break;
      case 7: break;
      case 8: addr += BigInt(Math.floor((255 - h.opcodeBase) / h.lineRange)) * minInst; break;
      case 9: addr += BigInt(c.u16()); break;
      case 10: case 11: break;
      case 12: c.uleb(); break;
      default: for (let i = 0; i < h.stdLens[op]; i++) c.uleb();
    }
  }
  // DWARF 4 file numbers start at 1; v5 at 0. Our files[] is indexed like the program's.
  return { files: h.files, rows };
}
