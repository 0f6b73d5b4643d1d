// A live debuggee as adapter/symbols sees it: memory through the engine, the
// auxiliary vector and mappings from /proc, registers by DWARF number.
import { readFileSync, readlinkSync } from 'node:fs';
import type { Registers as EngineRegisters, Session } from './engine';
import { Reg, type MappedFile, type Registers, type Target } from './symbols';

export class LiveTarget implements Target {
  readonly exePath: string;
  readonly auxv: Map<number, bigint>;
  constructor(
    private readonly engine: Session,
    readonly pid: number,
  ) {
    this.exePath = readlinkSync(`/proc/${pid}/exe`);
    this.auxv = readAuxv(pid);
  }

  readonly memory = {
    read: (addr: bigint, size: number): Buffer => {
      const b = this.engine.readMemory(addr, size);
      if (b.length < size) throw new Error(`Cannot access memory at address 0x${(addr + BigInt(b.length)).toString(16)}`);
      return b;
    },
  };

  get mappedFiles(): MappedFile[] {
    return readMappedFiles(this.engine.pid || this.pid);
  }
}

export function readAuxv(pid: number): Map<number, bigint> {
  const buf = readFileSync(`/proc/${pid}/auxv`);
  const m = new Map<number, bigint>();
  for (let o = 0; o + 16 <= buf.length; o += 16) {
    const k = Number(buf.readBigUInt64LE(o));
    if (k === 0) break;
    m.set(k, buf.readBigUInt64LE(o + 8));
  }
  return m;
}

export function readMappedFiles(pid: number): MappedFile[] {
  const out: MappedFile[] = [];
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ ([0-9a-f]+) \S+ \d+\s+(\/.*)$/.exec(line);
    if (m) out.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), offset: BigInt('0x' + m[3]), path: m[4] });
  }
  return out;
}

const ORDER: [keyof EngineRegisters, number][] = [
  ['rax', Reg.rax], ['rdx', Reg.rdx], ['rcx', Reg.rcx], ['rbx', Reg.rbx], ['rsi', Reg.rsi], ['rdi', Reg.rdi],
  ['rbp', Reg.rbp], ['rsp', Reg.rsp], ['r8', Reg.r8], ['r9', Reg.r9], ['r10', Reg.r10], ['r11', Reg.r11],
  ['r12', Reg.r12], ['r13', Reg.r13], ['r14', Reg.r14], ['r15', Reg.r15], ['rip', Reg.rip], ['eflags', Reg.eflags],
  ['cs', Reg.cs], ['ss', Reg.ss], ['ds', Reg.ds], ['es', Reg.es], ['fs', Reg.fs], ['gs', Reg.gs],
  ['fs_base', Reg.fs_base], ['gs_base', Reg.gs_base],
];

/** Engine registers and xmm0-15 (16 bytes each) by DWARF register number. */
export function dwarfRegisters(r: EngineRegisters, xmm?: Buffer): Registers {
  const m: Registers = new Map();
  for (const [name, num] of ORDER) m.set(num, r[name]);
  if (xmm && xmm.length >= 256) {
    for (let i = 0; i < 16; i++) {
      const lo = xmm.readBigUInt64LE(i * 16);
      const hi = xmm.readBigUInt64LE(8 + i * 16);
      m.set(17 + i, (hi << 64n) | lo);
    }
  }
  return m;
}
