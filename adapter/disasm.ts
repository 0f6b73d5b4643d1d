// x86-64 disassembly with Capstone (its wasm build from npm), in AT&T syntax as gdb
// shows it by default, annotated with symbols and source lines from adapter/symbols.
import { Capstone, Const, loadCapstone } from 'capstone-wasm';
import type { Program } from './symbols';

let cs: Capstone | undefined;
let loading: Promise<Capstone> | undefined;

async function capstone(): Promise<Capstone> {
  if (cs) return cs;
  loading ??= loadCapstone().then(() => {
    const c = new Capstone(Const.CS_ARCH_X86, Const.CS_MODE_64);
    c.setOption(Const.CS_OPT_SYNTAX, Const.CS_OPT_SYNTAX_ATT);
    cs = c;
    return c;
  });
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

/**
 * `count` instructions around `address`, starting `offset` instructions from it
 * (negative: before it). x86 cannot be decoded backwards, so decoding starts at the
 * enclosing function's entry when it is known, else a little before and resyncs.
 */
export async function disassembleAround(
  read: (addr: bigint, len: number) => Buffer,
  program: Program | undefined,
  address: bigint,
  offset: number,
  count: number,
): Promise<Instruction[]> {
  const before = Math.max(0, -offset);
  let start = address - BigInt(before * 15 + 64);
  const sym = program?.moduleFor(address)?.elfSymbolAt(address);
  const fn = sym?.addr;
  if (fn !== undefined && fn <= address && address - fn < BigInt(64 * 1024)) start = fn < start ? start : fn;
  if (start < 0n) start = 0n;
  const span = Number(address - start) + (count + Math.max(offset, 0)) * 15 + 16;
  const bytes = read(start, span);
  let insns = await decode(bytes, start, 0);
  // resync: keep the decoding whose boundaries hit `address` exactly
  let idx = insns.findIndex((i) => i.address === address);
  for (let skew = 1n; idx < 0 && skew < 16n && start + skew <= address; skew++) {
    insns = await decode(bytes.subarray(Number(skew)), start + skew, 0);
    idx = insns.findIndex((i) => i.address === address);
  }
  if (idx < 0) {
    insns = await decode(read(address, count * 15 + 16), address, 0);
    idx = 0;
  }
  const from = idx + offset;
  const out: Instruction[] = [];
  for (let k = from; k < from + count; k++) {
    const i = insns[k];
    if (!i) continue;
    if (program) {
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
