// Accelerator tables that name which units define a symbol: .gdb_index (versions 7-9) and
// DWARF 5 .debug_names. With one, a lookup by name skims only the units listed for it.
import { CompUnit, Dwarf } from './dwarf';
import { Cursor, cstrAt } from './reader';

export interface Accelerator {
  readonly kind: 'gdb_index' | 'debug_names';
  /** units that may define `name` (qualified, unqualified, with or without template arguments) */
  unitsFor(name: string): CompUnit[];
}

/** Keys a table name is found by: itself, its last `::` component, both without template arguments. */
function keysOf(name: string): string[] {
  const out = new Set<string>([name]);
  const stripT = (s: string) => { const i = s.indexOf('<'); return i > 0 ? s.slice(0, i) : s; };
  const last = (s: string) => { let depth = 0; for (let i = s.length - 1; i > 0; i--) { const c = s[i]; if (c === '>') depth++; else if (c === '<') depth--; else if (c === ':' && s[i - 1] === ':' && depth === 0) return s.slice(i + 1); } return s; };
  const paren = name.indexOf('(');
  const base = paren > 0 ? name.slice(0, paren) : name;
  out.add(base); out.add(last(base)); out.add(stripT(base)); out.add(stripT(last(base)));
  return [...out];
}

class Table implements Accelerator {
  private map = new Map<string, Set<number>>();
  constructor(readonly kind: Accelerator['kind'], private units: (CompUnit | undefined)[]) {}
  add(name: string, unit: number): void {
    for (const k of keysOf(name)) {
      let s = this.map.get(k);
      if (!s) this.map.set(k, (s = new Set()));
      s.add(unit);
    }
  }
  unitsFor(name: string): CompUnit[] {
    const out: CompUnit[] = [];
    for (const k of keysOf(name)) for (const i of this.map.get(k) ?? []) { const u = this.units[i]; if (u && !out.includes(u)) out.push(u); }
    return out;
  }
}

export function readGdbIndex(buf: Buffer, dwarf: Dwarf): Accelerator | undefined {
  const version = buf.readUInt32LE(0);
  if (version < 7 || version > 9) return undefined;
  const cuList = buf.readUInt32LE(4), tuList = buf.readUInt32LE(8);
  const symTab = buf.readUInt32LE(16);
  const symEnd = version >= 9 ? buf.readUInt32LE(20) : buf.readUInt32LE(20);
  const pool = version >= 9 ? buf.readUInt32LE(24) : buf.readUInt32LE(20);
  const units: (CompUnit | undefined)[] = [];
  for (let o = cuList; o + 16 <= tuList; o += 16) units.push(dwarf.unitAt(Number(buf.readBigUInt64LE(o))));
  const t = new Table('gdb_index', units);
  for (let o = symTab; o + 8 <= symEnd; o += 8) {
    const nameOff = buf.readUInt32LE(o), vecOff = buf.readUInt32LE(o + 4);
    if (nameOff === 0 && vecOff === 0) continue;
    const name = cstrAt(buf, pool + nameOff);
    const n = buf.readUInt32LE(pool + vecOff);
    for (let i = 0; i < n; i++) {
      const v = buf.readUInt32LE(pool + vecOff + 4 + i * 4);
      t.add(name, v & 0xffffff);
    }
  }
  return t;
}

export function readDebugNames(buf: Buffer, str: Buffer | null, dwarf: Dwarf): Accelerator | undefined {
  if (!str) return undefined;
  const units: (CompUnit | undefined)[] = [];
  const t = new Table('debug_names', units);
  let off = 0;
  while (off + 4 < buf.length) {
    const c = new Cursor(buf, off);
    let len = c.u32(); let os = 4;
    if (len === 0xffffffff) { len = c.u64n(); os = 8; }
    const end = c.pos + len;
    const version = c.u16(); c.u16();
    if (version !== 5) return undefined;
    const cuCount = c.u32(), ltuCount = c.u32(), ftuCount = c.u32();
    const buckets = c.u32(), names = c.u32(), abbrevSize = c.u32(), augSize = c.u32();
    c.skip((augSize + 3) & ~3);
    const base = units.length;
    for (let i = 0; i < cuCount; i++) units.push(dwarf.unitAt(c.off(os)));
    c.skip(ltuCount * os + ftuCount * 8);
    if (buckets) c.skip(buckets * 4 + names * 4);
    const strOffs: number[] = []; for (let i = 0; i < names; i++) strOffs.push(c.off(os));
    const entOffs: number[] = []; for (let i = 0; i < names; i++) entOffs.push(c.off(os));
    const abbrevStart = c.pos;
    const pool = abbrevStart + abbrevSize;
    const abbrevs = new Map<number, [number, number][]>();
    const a = new Cursor(buf, abbrevStart, pool);
    for (;;) {
      const code = a.uleb(); if (!code) break;
      a.uleb(); // tag
      const specs: [number, number][] = [];
      for (;;) { const idx = a.uleb(), form = a.uleb(); if (!idx && !form) break; specs.push([idx, form]); }
      abbrevs.set(code, specs);
    }
    for (let i = 0; i < names; i++) {
      const name = cstrAt(str, strOffs[i]);
      const e = new Cursor(buf, pool + entOffs[i], end);
      for (let guard = 0; guard < 10000; guard++) {
        const code = e.uleb(); if (!code) break;
        const specs = abbrevs.get(code);
        if (!specs) break;
        let cu = cuCount === 1 ? 0 : -1;
        for (const [idx, form] of specs) {
          let v = 0;
          switch (form) {
            case 0x0b: case 0x11: case 0x0c: v = e.u8(); break;
            case 0x05: case 0x12: v = e.u16(); break;
            case 0x06: case 0x13: v = e.u32(); break;
            case 0x07: case 0x14: v = e.u64n(); break;
            case 0x0f: case 0x15: v = e.uleb(); break;
            case 0x0d: v = e.sleb(); break;
            case 0x19: v = 1; break;
            case 0x17: v = e.off(os); break;
            default: throw new Error(`.debug_names: unsupported form 0x${form.toString(16)}`);
          }
          if (idx === 1) cu = v;
        }
        if (cu >= 0) t.add(name, base + cu);
      }
    }
    off = end;
  }
  return t;
}
