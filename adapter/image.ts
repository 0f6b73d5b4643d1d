// A saved image as adapter/symbols and the debug session see it: memory, registers,
// threads and the mapped files, all from the file through the engine's one reader.
import type { Image, ImageDescription, Registers as EngineRegisters } from './engine';
import { dwarfRegisters } from './live';
import type { MappedFile, Registers, Target } from './symbols';

export class ImageTarget implements Target {
  readonly exePath: string;
  readonly auxv = new Map<number, bigint>();
  readonly mappedFiles: MappedFile[];
  readonly info: ImageDescription;

  constructor(
    readonly image: Image,
    exePath?: string,
  ) {
    this.info = image.describe();
    this.exePath = exePath ?? this.info.process.exe;
    for (const [k, v] of this.info.process.auxv) this.auxv.set(k, BigInt(v));
    this.mappedFiles = this.info.mappings
      .filter((m) => m.path.startsWith('/'))
      .map((m) => ({ start: BigInt(m.start), end: BigInt(m.end), offset: BigInt(m.offset), path: m.path }));
  }

  readonly memory = {
    read: (addr: bigint, size: number): Buffer => {
      const b = this.image.readMemory(addr, size);
      if (b.length < size) throw new Error(`Cannot access memory at address 0x${(addr + BigInt(b.length)).toString(16)}`);
      return b;
    },
  };

  threads(): number[] {
    return this.info.threads.map((t) => t.tid);
  }

  registers(tid: number): EngineRegisters {
    return this.image.registers(tid);
  }

  dwarfRegisters(tid: number): Registers {
    return dwarfRegisters(this.image.registers(tid), this.image.xmm(tid));
  }
}
