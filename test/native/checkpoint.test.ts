// In-memory checkpoints: what a restored process has, checked against the program's
// own output, its exit status and byte-for-byte memory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, test } from 'node:test';
import { Session } from '../../adapter/engine';
import { symbolAddress, withTimeout } from '../helpers/elf';
import { sessionPool } from '../helpers/sessions';
import { buildFixture } from '../helpers/fixtures';
import { isAlive } from '../helpers/procs';
import { gdbBatch } from '../helpers/gdb';

const session = sessionPool();
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cryo-cp-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The offset of the descriptor `pid` has open on `path` (the kernel's word). */
function filePos(pid: number, path: string): number {
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    if (readlinkSync(`/proc/${pid}/fd/${fd}`) === path) return Number(/pos:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]);
  }
  throw new Error(`${pid} has no descriptor on ${path}`);
}

const stop = (s: Session, what = 'a stop') => withTimeout(s.waitStop(), 20000, what);

/** Continues until the breakpoint has been hit `times` more times. */
async function hits(s: Session, times: number): Promise<void> {
  for (let i = 0; i < times; i++) {
    s.continue();
    const e = await stop(s);
    assert.equal(e.kind, 'stopped', `expected a breakpoint, got ${JSON.stringify(e, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  }
}

async function runToEnd(s: Session): Promise<number> {
  for (;;) {
    s.continue();
    const e = await stop(s, 'the end');
    if (e.kind === 'exited') return e.code;
    if (e.kind === 'signaled') return 128 + e.signo;
  }
}

describe('checkpoints', () => {
  test('restore at iteration k repeats the output from k identically, twice, with the file offset back', async () => {
    const prog = buildFixture('counter.c');
    const dir = tmp();
    const out = join(dir, 'out.txt');
    const N = 400;
    const k = 50;
    const bare = spawnSync(prog, [String(N), join(dir, 'bare.txt')]);
    const bareOut = readFileSync(join(dir, 'bare.txt'), 'utf8');

    const s = session();
    const { pid } = s.launch({ program: prog, args: [String(N), out] });
    const tick = symbolAddress(pid, prog, 'tick');
    s.insertBreakpoint(tick);
    await hits(s, k + 1); // stopped in tick(k)
    const atK = readFileSync(out, 'utf8');
    const cp = s.checkpoint();
    await hits(s, 100); // stopped in tick(k + 100)
    const atK100 = readFileSync(out, 'utf8');
    assert.ok(atK100.length > atK.length);

    for (let round = 0; round < 2; round++) {
      const newPid = s.restore(cp);
      if (round > 0) s.insertBreakpoint(tick);
      assert.notEqual(newPid, pid);
      assert.equal(s.pid, newPid);
      await hits(s, 100); // k + 100 again: the output up to here is exactly as it was then
      assert.equal(readFileSync(out, 'utf8').slice(0, atK100.length), atK100, `round ${round}: output from k repeats identically`);
      assert.equal(filePos(newPid, out), Buffer.byteLength(atK100), `round ${round}: the file offset is where it was at k + 100`);
      s.removeBreakpoint(tick);
      assert.equal(await runToEnd(s), bare.status);
      assert.equal(readFileSync(out, 'utf8'), bareOut, `round ${round}: the whole file equals a run without the debugger`);
    }
  });

  test('a restored process has the checkpoint`s memory byte for byte and its registers', async () => {
    const prog = buildFixture('memory.c');
    const s = session();
    const { pid } = s.launch({ program: prog, stdout: { mode: 'null' } });
    const here = symbolAddress(pid, prog, 'checkpoint_here');
    const big = symbolAddress(pid, prog, 'big');
    s.insertBreakpoint(here);
    await hits(s, 1);
    const regs = s.registers(pid);
    const xs = s.xstate(pid);
    const mem = s.readMemory(big, 1 << 20);
    const stack = s.readMemory(regs.rsp, 256);
    const cp = s.checkpoint();
    // scribble over the live process, xmm0 first (the checkpoint reads its xsave area
    // after returning, so this write must queue behind that read), then go back
    const xmm0 = 0x1122334455667788n;
    const scribbled = Buffer.from(xs);
    scribbled.writeBigUInt64LE(xmm0, 160); // xmm0 low half (legacy area offset 160)
    scribbled[512] |= 2; // XSTATE_BV: the SSE component is in use
    s.setXstate(pid, scribbled);
    s.writeMemory(big, Buffer.alloc(1 << 20, 0xee));
    s.setRegisters(pid, { rbx: 0xdeadn, r12: 0xbeefn });
    const later = s.checkpoint(); // a delta: it has the new xmm0
    const np = s.restore(cp);
    assert.deepEqual(s.registers(np), regs);
    assert.deepEqual(s.xstate(np), xs);
    assert.ok(s.readMemory(big, 1 << 20).equals(mem));
    assert.ok(s.readMemory(regs.rsp, 256).equals(stack));
    const lp = s.restore(later);
    assert.equal(s.xstate(lp).readBigUInt64LE(160), xmm0);
    assert.equal(s.registers(lp).rbx, 0xdeadn);
    assert.ok(s.readMemory(big, 1 << 20).equals(Buffer.alloc(1 << 20, 0xee)));
    s.restore(cp);
    // and it runs on to the program's own end
    s.removeBreakpoint(here);
    assert.equal(await runToEnd(s), 0);
  });

  test('a checkpoint`s copy holds the program`s own code under the breakpoints, as the binary has it', async () => {
    // the engine forks with its int3s in and lifts them in the copy afterwards: a copy
    // restored with no breakpoint left must read, and run, the code gdb reads in the file
    const prog = buildFixture('counter.c');
    const fileBytes = [...gdbBatch(prog, ['x/16xb tick']).matchAll(/0x([0-9a-f]{2})\b/g)].map((m) => parseInt(m[1], 16));
    assert.equal(fileBytes.length, 16, 'gdb printed the 16 bytes at tick');
    const s = session();
    const { pid } = s.launch({ program: prog, args: ['10'], stdout: { mode: 'null' } });
    const tick = symbolAddress(pid, prog, 'tick');
    const main = symbolAddress(pid, prog, 'main');
    s.insertBreakpoint(tick);
    s.insertBreakpoint(main);
    await hits(s, 3); // main, tick(0), tick(1)
    const cp = s.checkpoint();
    assert.equal(s.checkpoints()[0].kind, 'full');
    s.removeBreakpoint(tick);
    s.removeBreakpoint(main);
    s.restore(cp);
    assert.deepEqual([...s.readMemory(tick, 16)], fileBytes);
    assert.notEqual(s.readMemory(main, 1)[0], 0xcc);
    assert.equal(await runToEnd(s), 45);
  });

  test('checkpoints survive the program`s exit, list, and delete; the frozen copies go with them', async () => {
    const prog = buildFixture('counter.c');
    const s = session();
    const { pid } = s.launch({ program: prog, args: ['10'], stdout: { mode: 'null' } });
    s.insertBreakpoint(symbolAddress(pid, prog, 'tick'));
    await hits(s, 2);
    const a = s.checkpoint();
    await hits(s, 3);
    const b = s.checkpoint();
    const list = s.checkpoints();
    assert.deepEqual(list.map((c) => c.id), [a, b]);
    assert.equal(list[0].kind, 'full');
    assert.ok(isAlive(list[0].pid) && list[0].createMs > 0);
    const incremental = s.checkpointMode().incremental;
    assert.equal(list[1].kind, incremental ? 'delta' : 'full');
    if (incremental) assert.equal(list[1].parent, a);
    s.removeBreakpoint(symbolAddress(pid, prog, 'tick'));
    assert.equal(await runToEnd(s), 45);
    assert.equal(s.pid, 0);
    // after the end, the past is still there
    s.restore(b);
    assert.equal(await runToEnd(s), 45);
    // deleting the base keeps what depends on it; deleting both frees the frozen copy
    s.deleteCheckpoint(a);
    assert.deepEqual(s.checkpoints().map((c) => c.id), [b]);
    assert.ok(isAlive(list[0].pid) === incremental);
    assert.throws(() => s.restore(a), /no checkpoint/);
    s.restore(b);
    assert.equal(await runToEnd(s), 45);
    s.deleteCheckpoint(b);
    assert.deepEqual(s.checkpoints(), []);
    assert.ok(!isAlive(list[0].pid) && (list[1].pid === 0 || !isAlive(list[1].pid)));
  });

  test('successive checkpoints are deltas; each restores memory byte for byte, in any order, also after deleting from the middle', async () => {
    const prog = buildFixture('churn.c');
    // 8 MiB, 12 rounds, 40 pages a round, a new mapping every 5 rounds, 1 MiB dropped (zeros) every 3
    const args = ['8', '12', '40', '5', '3'];
    const bare = spawnSync(prog, args, { encoding: 'utf8' });
    const s = session();
    const outFile = join(tmp(), 'out.txt');
    const { pid } = s.launch({ program: prog, args, stdout: { mode: 'file', path: outFile } });
    const stopHere = symbolAddress(pid, prog, 'stop_here');
    s.insertBreakpoint(stopHere);
    const bufPtr = symbolAddress(pid, prog, 'buf');
    const heapOf = (p: number) => {
      const m = readFileSync(`/proc/${p}/maps`, 'utf8').split('\n').find((l) => l.endsWith('[heap]'))!;
      const [lo, hi] = m.split(' ')[0].split('-').map((x) => BigInt('0x' + x));
      return { lo, len: Number(hi - lo) };
    };
    const snaps: { id: number; regs: ReturnType<Session['registers']>; buf: Buffer; heap: Buffer; round: bigint }[] = [];
    for (let r = 0; r < 10; r++) {
      await hits(s, 1);
      const id = s.checkpoint();
      const cur = s.pid;
      const addr = s.readMemory(bufPtr, 8).readBigUInt64LE(0);
      const h = heapOf(cur);
      snaps.push({ id, regs: s.registers(cur), buf: s.readMemory(addr, 8 << 20), heap: s.readMemory(h.lo, h.len), round: s.registers(cur).rdi });
    }
    const kinds = s.checkpoints().map((c) => c.kind);
    const [major, minor] = release().split('.').map(Number);
    const mode = s.checkpointMode();
    // kernels from 6.7 have async write-protect and PAGEMAP_SCAN: tracking must be on there
    if (major > 6 || (major === 6 && minor >= 7)) assert.ok(mode.incremental, mode.why);
    if (mode.incremental) {
      assert.ok(kinds.filter((k) => k === 'delta').length >= 5, `kinds: ${kinds}`);
      assert.ok(kinds.filter((k) => k === 'full').length >= 2, `a new mapping makes the next one full: ${kinds}`);
    }
    const check = (snap: (typeof snaps)[number]) => {
      const p = s.restore(snap.id);
      assert.deepEqual(s.registers(p), snap.regs, `registers of checkpoint ${snap.id}`);
      const addr = s.readMemory(bufPtr, 8).readBigUInt64LE(0);
      assert.ok(s.readMemory(addr, 8 << 20).equals(snap.buf), `buffer of checkpoint ${snap.id}`);
      const h = heapOf(p);
      assert.ok(s.readMemory(h.lo, h.len).equals(snap.heap), `heap of checkpoint ${snap.id}`);
    };
    for (const i of [3, 9, 0, 6, 1, 8]) check(snaps[i]);
    // delete from the middle of a chain: the later ones still come back exactly
    s.deleteCheckpoint(snaps[2].id);
    s.deleteCheckpoint(snaps[3].id);
    for (const i of [4, 1, 9]) check(snaps[i]);
    // and the program, revived at round 4, ends as it does without the debugger
    check(snaps[4]);
    s.removeBreakpoint(stopHere);
    assert.equal(await runToEnd(s), bare.status);
    assert.equal(readFileSync(outFile, 'utf8'), bare.stdout);
  });

  test('a write right after a checkpoint returns does not reach it: the pages it copies after returning are taken first', async () => {
    const prog = buildFixture('churn.c');
    const s = session();
    const { pid } = s.launch({ program: prog, args: ['8', '6', '200'], stdout: { mode: 'null' } });
    s.insertBreakpoint(symbolAddress(pid, prog, 'stop_here'));
    const bufPtr = symbolAddress(pid, prog, 'buf');
    await hits(s, 1);
    s.checkpoint(); // the FULL one; what follows is a delta of the pages written since
    await hits(s, 1);
    const addr = s.readMemory(bufPtr, 8).readBigUInt64LE(0);
    const before = s.readMemory(addr, 8 << 20);
    const id = s.checkpoint();
    // at once, before the engine could have finished: every page of the buffer rewritten
    s.writeMemory(addr, Buffer.alloc(8 << 20, 0xa5));
    assert.equal(s.readMemory(addr, 1)[0], 0xa5);
    const kinds = s.checkpoints().map((c) => c.kind);
    if (s.checkpointMode().incremental) assert.deepEqual(kinds, ['full', 'delta']);
    s.restore(id);
    assert.ok(s.readMemory(addr, 8 << 20).equals(before), 'the checkpoint holds the memory of its stop, not the later write');
  });

  test('a process with several threads gets a clear refusal', async () => {
    const prog = buildFixture('sleeper.c', { flags: ['-O0', '-g', '-pthread'] });
    const s = session();
    s.launch({ program: prog, args: ['200', '10', '2'], stdout: { mode: 'null' } });
    s.continue();
    await new Promise((r) => setTimeout(r, 100));
    s.interrupt();
    const e = await stop(s);
    assert.equal(e.kind, 'stopped');
    assert.equal((e as { reason: string }).reason, 'interrupt');
    assert.throws(() => s.checkpoint(), /3 threads: in-memory checkpoints of several threads are not supported yet/);
  });
});
