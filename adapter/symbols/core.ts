// ELF core files (from the kernel, gdb's gcore, or `cryo export-core`) as a symbols Target:
// memory from PT_LOAD segments (file-backed pages the core omits are read from the mapped
// files listed in NT_FILE), threads from NT_PRSTATUS, auxv from NT_AUXV.
import { closeSync, openSync, readSync } from 'node:fs';
import { Cursor } from './reader';
import { ElfFile, ET_CORE, PT_LOAD, PT_NOTE } from './elf';
import { MappedFile, MemoryReader, Registers, Target, ThreadState } from './target';

const NT_PRSTATUS = 1, NT_AUXV = 6, NT_FILE = 0x46494c45, NT_SIGINFO = 0x53494749, NT_PRPSINFO = 3;

// order of user_regs_struct -> DWARF numbers
const PRREG_TO_DWARF: (number | undefined)[] = [
  15, 14, 13, 12, 6, 3, 11, 10, 9, 8, 0, 2, 1, 4, 5, undefined /* orig_rax */, 16, 51 /* cs */, 49 /* eflags */,
  7, 52 /* ss */, 58 /* fs_base */, 59 /* gs_base */, 53, 50, 54, 55,
];

export interface CoreThread extends ThreadState {
  signal: number;
}

export class CoreFile implements MemoryReader {
  readonly elf: ElfFile;
  readonly threads: CoreThread[] = [];
  readonly auxv = new Map<number, bigint>();
  readonly files: MappedFile[] = [];
  signal = 0;
  siginfo?: { signo: number; code: number; addr: bigint };
  exeArgs = '';
  private loads: { vaddr: bigint; memsz: bigint; filesz: bigint; offset: number }[] = [];
  private fileFds = new Map<string, number | null>();

  constructor(readonly path: string) {
    this.elf = new ElfFile(path);
    if (this.elf.type !== ET_CORE) throw new Error(`${path}: not a core file`);
    for (const s of this.elf.segments) {
      if (s.type === PT_LOAD) this.loads.push({ vaddr: s.vaddr, memsz: BigInt(s.memsz), filesz: BigInt(s.filesz), offset: s.offset });
      else if (s.type === PT_NOTE) this.parseNotes(this.elf.bytes(s.offset, s.filesz));
    }
    this.loads.sort((a, b) => (a.vaddr < b.vaddr ? -1 : 1));
  }

  private parseNotes(buf: Buffer): void {
    const c = new Cursor(buf);
    while (c.pos + 12 <= buf.length) {
      const namesz = c.u32(), descsz = c.u32(), type = c.u32();
      c.pos += (namesz + 3) & ~3;
      const desc = buf.subarray(c.pos, c.pos + descsz);
      c.pos += (descsz + 3) & ~3;
      if (type === NT_PRSTATUS) {
        const sig = desc.readInt16LE(12);
        const tid = desc.readInt32LE(32);
        const regs: Registers = new Map();
        for (let i = 0; i < PRREG_TO_DWARF.length; i++) {
          const d = PRREG_TO_DWARF[i];
          if (d !== undefined) regs.set(d, desc.readBigUInt64LE(112 + i * 8));
        }
        this.threads.push({ tid, regs, signal: sig });
        if (this.threads.length === 1) this.signal = sig;
      } else if (type === 2 /* NT_FPREGSET */ && this.threads.length) {
        // user_fpregs_struct: xmm0-15 at offset 160, 16 bytes each -> DWARF 17-32
        const regs = this.threads[this.threads.length - 1].regs;
        for (let i = 0; i < 16 && 160 + i * 16 + 16 <= desc.length; i++) {
          const lo = desc.readBigUInt64LE(160 + i * 16), hi = desc.readBigUInt64LE(168 + i * 16);
          regs.set(17 + i, (hi << 64n) | lo);
        }
        regs.set(64, BigInt(desc.readUInt32LE(24))); // mxcsr
      } else if (type === NT_AUXV) {
        for (let o = 0; o + 16 <= desc.length; o += 16) {
          const k = Number(desc.readBigUInt64LE(o));
          if (k === 0) break;
          this.auxv.set(k, desc.readBigUInt64LE(o + 8));
        }
      } else if (type === NT_FILE) {
        const d = new Cursor(desc);
        const count = d.u64n(); const page = d.u64();
        const ents: [bigint, bigint, bigint][] = [];
        for (let i = 0; i < count; i++) ents.push([d.u64(), d.u64(), d.u64()]);
        for (const [start, end, pg] of ents) this.files.push({ start, end, offset: pg * page, path: d.cstr() });
      } else if (type === NT_SIGINFO) {
        this.siginfo = { signo: desc.readInt32LE(0), code: desc.readInt32LE(8), addr: desc.readBigUInt64LE(16) };
      } else if (type === NT_PRPSINFO) {
        this.exeArgs = desc.toString('latin1', 56, 136).replace(/\0.*$/s, '');
      }
    }
  }

  /** The executable's path from NT_FILE (the mapping containing AT_PHDR or AT_ENTRY). */
  exePath(): string | undefined {
    const at = this.auxv.get(9) ?? this.auxv.get(3);
    if (at !== undefined) for (const f of this.files) if (at >= f.start && at < f.end) return f.path;
    return this.files[0]?.path;
  }

  read(addr: bigint, size: number): Buffer {
    const out = Buffer.alloc(size);
    let done = 0;
    while (done < size) {
      const a = addr + BigInt(done);
      const n = this.readSome(a, out, done, size - done);
      if (n <= 0) throw new Error(`Cannot access memory at address 0x${a.toString(16)}`);
      done += n;
    }
    return out;
  }

  private readSome(a: bigint, out: Buffer, at: number, want: number): number {
    const l = this.findLoad(a);
    if (l) {
      const inSeg = l.vaddr + l.memsz - a;
      const n = Number(inSeg < BigInt(want) ? inSeg : BigInt(want));
      if (a < l.vaddr + l.filesz) {
        const avail = Number(l.vaddr + l.filesz - a);
        const k = Math.min(n, avail);
        const off = l.offset + Number(a - l.vaddr);
        this.elf.bytes(off, k).copy(out, at);
        return k;
      }
      // not in the core: from the mapped file, else zero
      const f = this.fromFile(a, out, at, n);
      if (f > 0) return f;
      if (l.filesz === 0n && !this.files.some((m) => a >= m.start && a < m.end)) { out.fill(0, at, at + n); return n; }
      return f;
    }
    return this.fromFile(a, out, at, want);
  }

  private findLoad(a: bigint) {
    const L = this.loads;
    let lo = 0, hi = L.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (a < L[mid].vaddr) hi = mid - 1;
      else if (a >= L[mid].vaddr + L[mid].memsz) lo = mid + 1;
      else return L[mid];
    }
    return undefined;
  }

  private fromFile(a: bigint, out: Buffer, at: number, want: number): number {
    for (const m of this.files) {
      if (a < m.start || a >= m.end) continue;
      let fd = this.fileFds.get(m.path);
      if (fd === undefined) {
        try { fd = openSync(m.path, 'r'); } catch { fd = null; }
        this.fileFds.set(m.path, fd);
      }
      if (fd === null) return 0;
      const n = Math.min(want, Number(m.end - a));
      return readSync(fd, out, at, n, Number(m.offset + (a - m.start)));
    }
    return 0;
  }

  close(): void {
    for (const fd of this.fileFds.values()) if (fd !== null) closeSync(fd);
    this.fileFds.clear();
  }

  /** A symbols Target for this core. `exePath` overrides the path recorded in the core. */
  target(exePath?: string): Target {
    const exe = exePath ?? this.exePath();
    if (!exe) throw new Error(`${this.path}: cannot tell the executable; pass its path`);
    return { memory: this, exePath: exe, auxv: this.auxv, mappedFiles: this.files };
  }
}

/** A Target for an executable that is not running: memory is the file's loadable contents at link-time addresses. */
export function executableTarget(exePath: string): Target {
  const elf = new ElfFile(exePath);
  const memory: MemoryReader = {
    read(addr: bigint, size: number): Buffer {
      const b = elf.readVaddr(addr, size);
      if (!b) throw new Error(`Cannot access memory at address 0x${addr.toString(16)}`);
      return Buffer.from(b);
    },
  };
  return { memory, exePath, exeBias: 0n };
}
