// x86-64 disassembly with Capstone (its wasm build from npm), in AT&T syntax as gdb
// shows it by default, annotated with symbols and source lines from adapter/symbols.
import type { Capstone } from 'capstone-wasm';
import type { Program } from './symbols';

let cs: Capstone | undefined;
let loading: Promise<Capstone> | undefined;

async function capstone(): Promise<Capstone> {
  if (cs) return cs;
  // loaded on the first disassembly, not with the adapter: most sessions never ask
  // (required, not imported: the package's CommonJS build is the one shipped)
  loading ??= (async () => {
    const { Capstone, Const, loadCapstone } = require('capstone-wasm') as typeof import('capstone-wasm');
    await loadCapstone();
    const c = new Capstone(Const.CS_ARCH_X86, Const.CS_MODE_64);
    c.setOption(Const.CS_OPT_SYNTAX, Const.CS_OPT_SYNTAX_ATT);
    cs = c;
    return c;
  })();
  return loading;
}

export interface Instruction {
  address: bigint;
  bytes: Buffer;
  text: string;
  symbol?: string;
  file?: string;
  line?: number;
}

/** Decodes bytes read at `address`; stops at the first byte that is no instruction. */
export async function decode(bytes: Buffer, address: bigint, count: number): Promise<Instruction[]> {
  const c = await capstone();
  return c.disasm(bytes, { address, count }).map((i) => ({
    address: BigInt(i.address),
    bytes: Buffer.from(i.bytes),
    text: `${i.mnemonic}${i.opStr ? ' ' + i.opStr : ''}`,
  }));
}

/** Loads the decoder ahead of its first use (stepping decodes each line it steps). */
export function preloadDecoder(): void {
  capstone().catch(() => {
    /* reported when a decode needs it */
  });
}

// Instructions after which execution may not go on at the next one: jumps, calls,
// returns, loops, syscalls and traps (by mnemonic: capstone-wasm does not expose groups;
// its prefixes, as in `bnd jmp`, come first)
const TRANSFER = /^(?:j|call|ret|lret|iret|loop|syscall|sysenter|sysexit|sysret|int|ud|hlt|xbegin|xabort|xend)/;

/** An instruction of a stepped range that may not fall through; `inner`: a direct jump
 * to an instruction of the same range (a loop inside the line); `call`: a call, its length;
 * `flat`: a call that no instruction before it in the range moves the stack pointer for,
 * so the frame's rsp at the call is the one anywhere before it (the engine then runs to
 * its return without stopping at the call first). */
export interface Transfer {
  at: bigint;
  inner: boolean;
  call?: number;
  flat?: boolean;
}

const DIRECT = /^(?:j|loop)/;
// Instructions that move rsp: by mnemonic, or with rsp as their destination (AT&T: the
// last operand); anything that merely reads it, or addresses memory through it, does not.
const MOVES_SP = /^(?:push|pop|leave|enter|call|ret|xchg|xadd|cmpxchg)/;
const SP_DEST = /(?:^|,\s*)%(?:rsp|esp|sp|spl)$/;

/**
 * The instructions in [lo, hi) (bytes read at lo) that may transfer control, in order;
 * undefined unless the bytes decode into instructions that tile the range exactly (data
 * in code, or a range that does not start on an instruction).
 */
export async function controlTransfers(bytes: Buffer, lo: bigint, hi: bigint): Promise<Transfer[] | undefined> {
  if (BigInt(bytes.length) !== hi - lo) return undefined;
  const c = await capstone();
  const insns = c.disasm(bytes, { address: lo });
  let end = lo;
  const starts = new Set<bigint>();
  const found: { at: bigint; target?: bigint; call?: number; flat: boolean }[] = [];
  let spMoved = false;
  for (const i of insns) {
    const at = BigInt(i.address);
    if (at !== end) return undefined;
    starts.add(at);
    end = at + BigInt(i.size);
    const mnemonic = i.mnemonic.split(' ').pop() ?? '';
    const transfer = TRANSFER.test(mnemonic);
    if (transfer) {
      const direct = DIRECT.test(mnemonic) && /^0x[0-9a-f]+$/.test(i.opStr) ? BigInt(i.opStr) : undefined;
      found.push({ at, target: direct, call: /^call/.test(mnemonic) ? i.size : undefined, flat: !spMoved });
    }
    if (MOVES_SP.test(mnemonic) || SP_DEST.test(i.opStr.trim()) || (transfer && !/^call/.test(mnemonic))) spMoved = true;
  }
  if (end !== hi) return undefined;
  return found.map((f) => ({
    at: f.at,
    inner: f.target !== undefined && starts.has(f.target),
    ...(f.call ? { call: f.call, ...(f.flat ? { flat: true } : {}) } : {}),
  }));
}

/**
 * `count` slots around `address`, starting `offset` instructions from it (negative:
 * before it), as DAP wants them: slot -offset is the instruction at `address`; slots
 * with no instruction (before readable memory, or past it) are undefined. x86 cannot
 * be decoded backwards, so decoding starts at the entry of the symbol that holds the
 * start of the window, else a little before it, keeping the decoding whose
 * boundaries meet `address`.
 */
export async function disassembleAround(
  read: (addr: bigint, len: number) => Buffer,
  program: Program | undefined,
  address: bigint,
  offset: number,
  count: number,
): Promise<(Instruction | undefined)[]> {
  const before = Math.max(0, -offset);
  const after = Math.max(0, count + offset);
  const symStart = (a: bigint): bigint | undefined => {
    const sym = program?.moduleFor(a)?.elfSymbolAt(a);
    return sym && sym.addr <= a && a - sym.addr < 1n << 16n ? sym.addr : undefined;
  };
  // forward from the entry of the function holding address (or a little before it)
  let start = symStart(address) ?? (address > 64n ? address - 64n : 0n);
  const span = Number(address - start) + after * 15 + 16;
  const bytes = read(start, span);
  let insns = bytes.length ? await decode(bytes, start, 0) : [];
  let idx = insns.findIndex((i) => i.address === address);
  for (let skew = 1n; idx < 0 && skew < 16n && start + skew <= address && Number(skew) < bytes.length; skew++) {
    insns = await decode(bytes.subarray(Number(skew)), start + skew, 0);
    idx = insns.findIndex((i) => i.address === address);
  }
  if (idx < 0) {
    const here = read(address, after * 15 + 16);
    insns = here.length ? await decode(here, address, 0) : [];
    idx = 0;
    start = address;
  }
  // backwards, one preceding symbol at a time, until the window is full or no code is left
  let cursor = insns[0]?.address ?? address;
  while (idx < before) {
    const prev = symStart(cursor - 1n);
    if (prev === undefined || prev >= cursor) break;
    const chunkBytes = read(prev, Number(cursor - prev));
    const chunk = (chunkBytes.length ? await decode(chunkBytes, prev, 0) : []).filter((i) => i.address + BigInt(i.bytes.length) <= cursor);
    if (!chunk.length) break;
    insns = [...chunk, ...insns];
    idx += chunk.length;
    cursor = prev;
  }
  // no symbol before: decode the raw bytes, choosing the start whose decoding ends
  // exactly at the first known instruction (as `x/i` would show that memory)
  if (idx < before && cursor > 0n) {
    const want = BigInt((before - idx) * 8 + 32);
    const from = cursor > want ? cursor - want : 0n;
    const raw = read(from, Number(cursor - from));
    for (let skew = 0; skew < 16 && skew < raw.length; skew++) {
      const chunk = (await decode(raw.subarray(skew), from + BigInt(skew), 0)).filter((i) => i.address + BigInt(i.bytes.length) <= cursor);
      const last = chunk[chunk.length - 1];
      if (last && last.address + BigInt(last.bytes.length) === cursor) {
        insns = [...chunk, ...insns];
        idx += chunk.length;
        break;
      }
    }
  }
  const out: (Instruction | undefined)[] = [];
  for (let slot = 0; slot < count; slot++) {
    const i = insns[idx + offset + slot];
    if (i && program) {
      const d = program.describe(i.address);
      const es = program.moduleFor(i.address)?.elfSymbolAt(i.address);
      if (es) i.symbol = es.offset ? `${es.name}+${es.offset}` : es.name;
      else if (d.function) i.symbol = d.function;
      if (d.source) {
        i.file = d.source.file;
        i.line = d.source.line;
      }
    }
    out.push(i);
  }
  return out;
}
