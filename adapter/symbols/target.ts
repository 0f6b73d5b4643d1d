// The one interface through which adapter/symbols sees a stopped process or a saved image.
// Everything is synchronous: the engine's reads are synchronous FFI calls, images are files.

/** Reads target memory; throws an Error naming the unreadable address. */
export interface MemoryReader {
  read(addr: bigint, size: number): Buffer;
}

/** DWARF x86-64 register numbers. */
export const Reg = {
  rax: 0, rdx: 1, rcx: 2, rbx: 3, rsi: 4, rdi: 5, rbp: 6, rsp: 7,
  r8: 8, r9: 9, r10: 10, r11: 11, r12: 12, r13: 13, r14: 14, r15: 15, rip: 16,
  eflags: 49, es: 50, cs: 51, ss: 52, ds: 53, fs: 54, gs: 55, fs_base: 58, gs_base: 59,
} as const;

export const REG_NAMES: string[] = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

/**
 * Registers of one thread by DWARF number: 0..16 general purpose + rip, 17..32 xmm0-15 (128-bit
 * values, optional), 49 eflags, 58 fs_base, 59 gs_base.
 */
export type Registers = Map<number, bigint>;

export interface ThreadState {
  tid: number;
  regs: Registers;
}

/** auxv tags the library uses. */
export const AT_PHDR = 3, AT_PHNUM = 5, AT_BASE = 7, AT_ENTRY = 9, AT_SYSINFO_EHDR = 33;

/** What a live process or an image gives the symbol library. */
export interface Target {
  memory: MemoryReader;
  /** path of the main executable on disk */
  exePath: string;
  /** auxiliary vector (AT_* -> value); used to find the exe's load bias */
  auxv?: Map<number, bigint>;
  /** alternative to auxv: the exe's load bias (0 for non-PIE) */
  exeBias?: bigint;
  /** optional file mappings (e.g. NT_FILE of a core), used to open libraries not found via link_map */
  mappedFiles?: MappedFile[];
}

export interface MappedFile {
  start: bigint;
  end: bigint;
  /** file offset in bytes */
  offset: bigint;
  path: string;
}

export class SymbolError extends Error {}
