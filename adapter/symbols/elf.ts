// ELF64 little-endian reader: sections (with SHF_COMPRESSED), program headers, symbols,
// notes (build-id), dynamic section, and the search for separate debug files.
import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { constants as zc, inflateSync } from 'node:zlib';
import { Cursor, cstrAt } from './reader';

export interface Section {
  name: string; type: number; flags: bigint; addr: bigint; offset: number; size: number;
  link: number; info: number; entsize: number;
}
export interface Segment {
  type: number; flags: number; offset: number; vaddr: bigint; filesz: number; memsz: number;
}
export interface ElfSymbol {
  name: string; value: bigint; size: number; type: number; bind: number; shndx: number;
}

export const PT_LOAD = 1, PT_DYNAMIC = 2, PT_NOTE = 4, PT_PHDR = 6;
export const STT_OBJECT = 1, STT_FUNC = 2, STT_GNU_IFUNC = 10;
export const ET_EXEC = 2, ET_DYN = 3, ET_CORE = 4;

// A file's descriptor is closed when its ElfFile is collected (one opened only to read a
// build-id is not kept open for the session).
const closer = new FinalizationRegistry<number>((fd) => {
  try { closeSync(fd); } catch { /* closed */ }
});

export class ElfFile {
  /** the whole file, when it was given in memory (the vDSO, a core file) */
  private readonly whole?: Buffer;
  private readonly fd?: number;
  readonly size: number;
  readonly type: number;
  readonly entry: bigint;
  readonly sections: Section[] = [];
  readonly segments: Segment[] = [];
  private secCache = new Map<string, Buffer | null>();
  private symsCache?: ElfSymbol[];
  private byName?: Map<string, ElfSymbol[]>;

  /**
   * A file is read by the parts asked for (headers, then a section at a time), not whole:
   * most of a library (its code, and a debug file's compressed sections once inflated) is
   * never needed in the debugger's memory.
   */
  constructor(readonly path: string, data?: Buffer) {
    if (data) {
      this.whole = data;
      this.size = data.length;
    } else {
      this.fd = openSync(path, 'r');
      closer.register(this, this.fd);
      this.size = fstatSync(this.fd).size;
    }
    const d = this.bytes(0, Math.min(this.size, 64));
    if (d.length < 64 || d.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${path}: not an ELF file`);
    if (d[4] !== 2 || d[5] !== 1) throw new Error(`${path}: not a 64-bit little-endian ELF file`);
    this.type = d.readUInt16LE(16);
    this.entry = d.readBigUInt64LE(24);
    const phoff = Number(d.readBigUInt64LE(32));
    const shoff = Number(d.readBigUInt64LE(40));
    const phentsize = d.readUInt16LE(54), phnum = d.readUInt16LE(56);
    const shentsize = d.readUInt16LE(58);
    let shnum = d.readUInt16LE(60);
    let shstrndx = d.readUInt16LE(62);
    const ph = this.bytes(phoff, phnum * phentsize);
    for (let i = 0; i < phnum; i++) {
      const c = new Cursor(ph, i * phentsize);
      const type = c.u32(), flags = c.u32(), offset = c.u64n(), vaddr = c.u64();
      c.u64(); const filesz = c.u64n(), memsz = c.u64n();
      this.segments.push({ type, flags, offset, vaddr, filesz, memsz });
    }
    if (shoff && shoff < this.size) {
      const first = this.bytes(shoff, 64);
      if (shnum === 0) shnum = Number(first.readBigUInt64LE(32));
      if (shstrndx === 0xffff) shstrndx = first.readUInt32LE(40);
      const sh = this.bytes(shoff, shnum * shentsize);
      const raw: (Section & { nameOff: number })[] = [];
      for (let i = 0; i < shnum; i++) {
        const c = new Cursor(sh, i * shentsize);
        const nameOff = c.u32(), type = c.u32(), flags = c.u64(), addr = c.u64(), offset = c.u64n(), size = c.u64n();
        const link = c.u32(), info = c.u32(); c.u64(); const entsize = c.u64n();
        raw.push({ name: '', nameOff, type, flags, addr, offset, size, link, info, entsize });
      }
      const rs = raw;
      const strsec = rs[shstrndx];
      const names = strsec ? this.bytes(strsec.offset, strsec.size) : undefined;
      for (const r of rs) {
        const name = names ? cstrAt(names, r.nameOff) : '';
        this.sections.push({ name, type: r.type, flags: r.flags, addr: r.addr, offset: r.offset, size: r.size, link: r.link, info: r.info, entsize: r.entsize });
      }
    }
  }

  get isPie(): boolean { return this.type === ET_DYN; }

  /** The file's bytes [off, off + len) (fewer at its end). */
  bytes(off: number, len: number): Buffer {
    if (this.whole) return this.whole.subarray(off, off + len);
    len = Math.max(0, Math.min(len, this.size - off));
    const b = Buffer.allocUnsafeSlow(len);
    let got = 0;
    while (got < len) {
      const n = readSync(this.fd!, b, got, len - got, off + got);
      if (n <= 0) break;
      got += n;
    }
    return got === len ? b : b.subarray(0, got);
  }

  /** A section's raw bytes (as in the file). */
  private raw(s: Section): Buffer {
    return this.bytes(s.offset, s.size);
  }

  /** The raw bytes of the symbol and string tables (by section index), read once. */
  private tables = new Map<number, Buffer | null>();
  private sectionAt(i: number): Buffer | null {
    let b = this.tables.get(i);
    if (b === undefined) {
      const s = this.sections[i];
      b = s && s.type !== 8 ? this.raw(s) : null;
      this.tables.set(i, b);
    }
    return b;
  }

  section(name: string): Section | undefined { return this.sections.find((s) => s.name === name); }

  /** Contents of a section (decompressed), or null when absent or NOBITS. */
  sectionData(name: string): Buffer | null {
    if (this.secCache.has(name)) return this.secCache.get(name)!;
    const part = this.partials.get(name);
    if (part) {
      part.ensure(Infinity);
      this.secCache.set(name, part.data);
      return part.data;
    }
    const s = this.section(name);
    let out: Buffer | null = null;
    if (s && s.type !== 8 /* NOBITS */) {
      out = this.raw(s);
      if (s.flags & 0x800n) { // SHF_COMPRESSED
        const { stream, size } = compressed(this.path, name, out);
        // into one buffer of the size the header gives (one byte more, so zlib sees the
        // end without asking for another chunk): no growing chunks, copied and joined
        out = inflateSync(stream, { chunkSize: Math.max(64, Math.min(size + 1, 0x3fffffff)) });
      }
    }
    this.secCache.set(name, out);
    return out;
  }

  private partials = new Map<string, Inflating>();

  /**
   * A section whose bytes are valid as far as `ensure` was asked: a compressed one is
   * inflated only that far (a stack through libc reads the first units of its 5.8 MB
   * .debug_info: its start code is compiled first), the others are read whole.
   */
  sectionPartial(name: string): PartialSection | null {
    const part = this.partials.get(name);
    if (part) return part;
    const s = this.section(name);
    if (this.secCache.has(name) || !s || s.type === 8 || !(s.flags & 0x800n)) {
      const data = this.sectionData(name);
      return data ? { data, ensure: () => undefined } : null;
    }
    const { stream, size } = compressed(this.path, name, this.raw(s));
    const p = new Inflating(`${this.path}: section ${name}`, stream, size);
    this.partials.set(name, p);
    return p;
  }

  /** Lowest p_vaddr of the PT_LOAD segments (page-aligned). */
  get firstLoadVaddr(): bigint {
    let v: bigint | undefined;
    for (const s of this.segments) if (s.type === PT_LOAD && (v === undefined || s.vaddr < v)) v = s.vaddr;
    return v ?? 0n;
  }

  /** Reads bytes at a link-time virtual address from the file (PT_LOAD file contents). */
  readVaddr(vaddr: bigint, size: number): Buffer | null {
    for (const s of this.segments) {
      if (s.type !== PT_LOAD) continue;
      if (vaddr >= s.vaddr && vaddr + BigInt(size) <= s.vaddr + BigInt(s.filesz)) {
        return this.bytes(s.offset + Number(vaddr - s.vaddr), size);
      }
    }
    return null;
  }

  buildId(): string | undefined {
    const scan = (buf: Buffer): string | undefined => {
      const c = new Cursor(buf);
      while (c.pos + 12 <= buf.length) {
        const namesz = c.u32(), descsz = c.u32(), type = c.u32();
        const name = buf.toString('latin1', c.pos, c.pos + namesz - 1);
        c.pos += (namesz + 3) & ~3;
        const desc = buf.subarray(c.pos, c.pos + descsz);
        c.pos += (descsz + 3) & ~3;
        if (name === 'GNU' && type === 3) return desc.toString('hex');
      }
      return undefined;
    };
    for (const s of this.sections) if (s.type === 7) { const r = scan(this.bytes(s.offset, s.size)); if (r) return r; }
    for (const p of this.segments) if (p.type === PT_NOTE) { const r = scan(this.bytes(p.offset, p.filesz)); if (r) return r; }
    return undefined;
  }

  debugLink(): string | undefined {
    const d = this.sectionData('.gnu_debuglink');
    return d ? cstrAt(d, 0) : undefined;
  }

  /** All symbols of .symtab and .dynsym (functions and objects with a name). */
  symbols(): ElfSymbol[] {
    if (this.symsCache) return this.symsCache;
    const out: ElfSymbol[] = [];
    const seen = new Set<string>();
    for (const sn of ['.symtab', '.dynsym']) {
      const s = this.section(sn);
      if (!s || s.type === 8) continue;
      const tab = this.sectionAt(this.sections.indexOf(s));
      const strs = this.sectionAt(s.link);
      if (!tab || !strs) continue;
      for (let off = 0; off + 24 <= tab.length; off += 24) {
        const nameOff = tab.readUInt32LE(off);
        const info = tab[off + 4];
        const shndx = tab.readUInt16LE(off + 6);
        const value = tab.readBigUInt64LE(off + 8);
        const size = Number(tab.readBigUInt64LE(off + 16));
        if (!nameOff || shndx === 0) continue;
        let name = cstrAt(strs, nameOff);
        const at = name.indexOf('@'); if (at > 0) name = name.slice(0, at);
        const key = name + '@' + value;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ name, value, size, type: info & 0xf, bind: info >> 4, shndx });
      }
    }
    out.push(...this.pltSymbols());
    out.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
    this.symsCache = out;
    return out;
  }

  /**
   * `name@plt` for PLT stubs (as gdb shows them): each stub's `jmp *GOT(%rip)` is matched with
   * the relocation of that GOT slot.
   */
  pltSymbols(): ElfSymbol[] {
    const out: ElfSymbol[] = [];
    const dynsym = this.section('.dynsym');
    if (!dynsym || dynsym.type === 8) return out;
    const syms = this.sectionAt(this.sections.indexOf(dynsym));
    const dynstr = this.sectionAt(dynsym.link);
    if (!syms || !dynstr) return out;
    const slot = new Map<bigint, string>();
    for (const rn of ['.rela.plt', '.rela.dyn']) {
      const r = this.section(rn);
      if (!r || r.type !== 4) continue;
      const rel = this.raw(r);
      for (let o = 0; o + 24 <= rel.length; o += 24) {
        const off = rel.readBigUInt64LE(o);
        const info = rel.readBigUInt64LE(o + 8);
        const type = Number(info & 0xffffffffn), symIdx = Number(info >> 32n);
        if ((type !== 7 && type !== 6) || !symIdx || symIdx * 24 + 4 > syms.length) continue; // JUMP_SLOT, GLOB_DAT
        const nameOff = syms.readUInt32LE(symIdx * 24);
        let name = cstrAt(dynstr, nameOff);
        const at = name.indexOf('@'); if (at > 0) name = name.slice(0, at);
        if (name) slot.set(off, name);
      }
    }
    if (!slot.size) return out;
    for (const sec of this.sections) {
      if (sec.name !== '.plt' && sec.name !== '.plt.sec' && sec.name !== '.plt.got') continue;
      const step = sec.name === '.plt.got' && sec.entsize === 8 ? 8 : 16;
      const shndx = this.sections.indexOf(sec);
      const plt = this.raw(sec);
      for (let e = 0; e + step <= plt.length; e += step) {
        const code = plt.subarray(e, e + step);
        const j = code.indexOf(Buffer.from([0xff, 0x25]));
        if (j < 0 || j + 6 > code.length) continue;
        const disp = BigInt(code.readInt32LE(j + 2));
        const got = sec.addr + BigInt(e + j + 6) + disp;
        const name = slot.get(got);
        if (name) out.push({ name: `${name}@plt`, value: sec.addr + BigInt(e), size: step, type: STT_FUNC, bind: 1, shndx });
      }
    }
    return out;
  }

  symbolsByName(name: string): ElfSymbol[] {
    if (!this.byName) {
      this.byName = new Map();
      for (const s of this.symbols()) {
        const l = this.byName.get(s.name);
        if (l) l.push(s); else this.byName.set(s.name, [s]);
      }
    }
    return this.byName.get(name) ?? [];
  }

  /**
   * Whether .symtab or .dynsym has a function `name` at link-time `vaddr`, read without
   * building the symbol list: the name's places in the string table, then one pass over the
   * fixed-size entries.
   */
  hasFunctionSymbol(name: string, vaddr: bigint): boolean {
    const text = Buffer.from(name + '\0', 'latin1');
    for (const sn of ['.symtab', '.dynsym']) {
      const s = this.section(sn);
      if (!s || s.type === 8) continue;
      const table = this.sectionAt(s.link);
      const tab = this.sectionAt(this.sections.indexOf(s));
      if (!table || !tab) continue;
      const offs = new Set<number>();
      for (let o = table.indexOf(text); o >= 0; o = table.indexOf(text, o + 1)) offs.add(o);
      if (!offs.size) continue;
      for (let off = 0; off + 24 <= tab.length; off += 24) {
        if (!offs.has(tab.readUInt32LE(off))) continue;
        const type = tab[off + 4] & 0xf;
        if ((type === STT_FUNC || type === STT_GNU_IFUNC) && tab.readBigUInt64LE(off + 8) === vaddr) return true;
      }
    }
    return false;
  }

  /** The function/object symbol containing a link-time address. */
  symbolAt(vaddr: bigint): ElfSymbol | undefined {
    return pickSymbol(this.symbolsAt(vaddr));
  }

  /**
   * Candidate symbols for an address, as gdb chooses minimal symbols: in the address's section,
   * the nearest sized symbol covering it, else the nearest zero-sized symbol after that one.
   */
  symbolsAt(vaddr: bigint): ElfSymbol[] {
    const syms = this.symbols();
    let lo = 0, hi = syms.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (syms[mid].value <= vaddr) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    const inSection = (s: ElfSymbol) => {
      const sec = this.sections[s.shndx];
      return !!sec && (sec.flags & 2n) !== 0n && vaddr >= sec.addr && vaddr < sec.addr + BigInt(sec.size);
    };
    let zero: ElfSymbol[] = [];
    for (let i = best; i >= 0 && i > best - 512; i--) {
      const s = syms[i];
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT && s.type !== STT_GNU_IFUNC && s.type !== 0) continue;
      if (!inSection(s)) continue;
      if (s.size === 0) {
        if (!zero.length || zero[0].value === s.value) zero.push(s);
        continue;
      }
      const at = syms.filter((x, j) => j <= best && j > i - 64 && x.value === s.value && x.size > 0 && inSection(x));
      if (vaddr < s.value + BigInt(s.size)) return at;
      return zero;
    }
    return zero;
  }

  /** Dynamic entries (tag -> value, first of each) and the link-time address of each entry. */
  dynamic(): { tag: bigint; val: bigint; vaddr: bigint }[] {
    const out: { tag: bigint; val: bigint; vaddr: bigint }[] = [];
    const p = this.segments.find((s) => s.type === PT_DYNAMIC);
    if (!p) return out;
    const dyn = this.bytes(p.offset, p.filesz);
    for (let off = 0; off + 16 <= dyn.length; off += 16) {
      const tag = dyn.readBigInt64LE(off);
      const val = dyn.readBigUInt64LE(off + 8);
      out.push({ tag, val, vaddr: p.vaddr + BigInt(off) });
      if (tag === 0n) break;
    }
    return out;
  }
}

/** A compressed section's zlib stream and the size it inflates to. */
function compressed(path: string, name: string, raw: Buffer): { stream: Buffer; size: number } {
  const chType = raw.readUInt32LE(0);
  if (chType !== 1) throw new Error(`${path}: section ${name} uses unsupported compression ${chType}`);
  return { stream: raw.subarray(24), size: Number(raw.readBigUInt64LE(8)) };
}

/** A section's bytes, valid up to where `ensure` was last asked to go. */
export interface PartialSection {
  readonly data: Buffer;
  ensure(end: number): void;
}

/** A zlib stream inflated into a buffer of its full size only as far as asked: the pages
 * past that are never written, so they take no memory. Node's synchronous inflate cannot
 * be resumed, so going further inflates a longer prefix of the stream again, from its
 * start, at least twice as long each time: at most about twice the work of inflating it
 * all, and much less when the readers stay near its start. */
class Inflating implements PartialSection {
  readonly data: Buffer;
  private done = 0;
  /** compressed bytes the last prefix took */
  private used = 0;

  constructor(private readonly what: string, private readonly stream: Buffer, size: number) {
    this.data = Buffer.allocUnsafeSlow(size);
  }

  ensure(end: number): void {
    const want = Math.min(end, this.data.length);
    while (this.done < want) {
      if (this.used >= this.stream.length) throw new Error(`${this.what}: inflates to ${this.done} bytes, its header says ${this.data.length}`);
      // enough input for `want` at the ratio seen so far (with a margin), at least double
      const ratio = this.done > 0 ? this.done / this.used : 3;
      const k = Math.min(this.stream.length, Math.max(this.used * 2, 65536, Math.ceil((want / ratio) * 1.2)));
      const whole = k >= this.stream.length;
      const out = inflateSync(this.stream.subarray(0, k), {
        finishFlush: whole ? zc.Z_FINISH : zc.Z_SYNC_FLUSH,
        chunkSize: Math.max(64, Math.min(this.data.length + 1, Math.ceil(k * ratio * 1.1), 0x3fffffff)),
      });
      if (out.length > this.data.length) throw new Error(`${this.what}: inflates to more than its header says`);
      out.copy(this.data, this.done, this.done);
      this.done = out.length;
      this.used = k;
    }
  }
}

/** Finds the separate debug file of an ELF file: build-id under /usr/lib/debug, then debuglink. */
export function findDebugFile(elf: ElfFile, debugDirs = ['/usr/lib/debug']): string | undefined {
  const id = elf.buildId();
  if (id && id.length > 2) {
    for (const d of debugDirs) {
      const p = join(d, '.build-id', id.slice(0, 2), id.slice(2) + '.debug');
      if (existsSync(p)) return p;
    }
  }
  const link = elf.debugLink();
  if (link) {
    const dir = dirname(elf.path);
    for (const p of [join(dir, link), join(dir, '.debug', link), ...debugDirs.map((d) => join(d, dir, link))]) {
      if (p !== elf.path && existsSync(p)) return p;
    }
  }
  return undefined;
}

/** gdb's choice among symbols at one address: sized ones first, then the greatest name. */
export function pickSymbol(c: ElfSymbol[]): ElfSymbol | undefined {
  if (!c.length) return undefined;
  const top = c.reduce((m, s) => (s.value > m ? s.value : m), c[0].value);
  let best: ElfSymbol | undefined;
  for (const s of c) {
    if (s.value !== top) continue;
    if (!best) { best = s; continue; }
    if ((s.size > 0) !== (best.size > 0)) { if (s.size > 0) best = s; continue; }
    // a global (or weak) name over a file-local one at the same address, as gdb names data
    // (ld.so's _r_debug, not the local _r_debug_extended)
    if ((s.bind !== 0) !== (best.bind !== 0)) { if (s.bind !== 0) best = s; continue; }
    if (Buffer.compare(Buffer.from(s.name), Buffer.from(best.name)) > 0) best = s;
  }
  return best;
}
