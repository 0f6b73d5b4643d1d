// Recording through the in-process syscall buffer: the program behaves as it does bare,
// the log is the one trapping every syscall would make, and replay goes through the
// buffered syscalls (and past the ring's overflow) as through trapped ones.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, mkdtempSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Image, Session } from '../../adapter/engine';
import { symbolAddress, withTimeout } from '../helpers/elf';
import { buildFixture } from '../helpers/fixtures';
import { sessionPool } from '../helpers/sessions';

const session = sessionPool();
const stop = (s: Session, what = 'a stop') => withTimeout(s.waitStop(), 30000, what);
const INPUT = 'alpha\nbeta\ngamma\n';
const WRITES = 40000; // the ring holds about 14,500 of them: it overflows twice

function collect(fd: number): { text: () => string } {
  let text = '';
  createReadStream('', { fd, autoClose: true }).on('data', (d) => (text += d)).on('error', () => {});
  return { text: () => text };
}
const settle = () => new Promise((r) => setTimeout(r, 150));

/** The fixture launched and recorded (CRYO_SYSBUF=0: without the buffer), stdin written
 * and closed, standing at mark(1). */
async function recorded(prog: string, buffer = true) {
  const s = session();
  const l = s.launch({ program: prog, args: [String(WRITES)], stdin: { mode: 'pipe' }, stdout: { mode: 'pipe' } });
  const out = collect(l.stdout!);
  if (!buffer) process.env.CRYO_SYSBUF = '0';
  try {
    s.recordStart();
  } finally {
    delete process.env.CRYO_SYSBUF;
  }
  const mark = symbolAddress(l.pid, prog, 'mark');
  s.insertBreakpoint(mark);
  writeSync(l.stdin!, INPUT);
  closeSync(l.stdin!);
  s.continue();
  assert.equal((await stop(s, 'mark(1)')).kind, 'stopped');
  const g = (pid: number, name: string, n: number) => s.readMemory(symbolAddress(pid, prog, name), n);
  const globals = (pid: number) => ({ errno: g(pid, 'last_errno', 4).readInt32LE(0), rand: g(pid, 'last_rand', 8).toString('hex'), block: createHash('sha256').update(g(pid, 'rand_block', (256 << 10) + 1000)).digest('hex'), mono: g(pid, 'last_mono', 16).toString('hex'), pid: g(pid, 'last_pid', 8).toString('hex') });
  return { s, l, out, mark, globals };
}

describe('syscall buffer', () => {
  test('a recorded syscall-heavy run prints what the bare run prints and exits alike; its syscalls went through the buffer, into the log trapping would make', async () => {
    const prog = buildFixture('sysbuf.c');
    const bare = spawnSync(prog, [String(WRITES)], { input: INPUT, encoding: 'utf8' });
    assert.equal(bare.status, 7);
    assert.match(bare.stdout, /read on a closed descriptor: -1, Bad file descriptor\n/);

    const stats: ReturnType<Session['recordStats']>[] = [];
    const runs = [];
    for (const buffer of [true, false]) {
      const { s, l, out, globals } = await recorded(prog, buffer);
      const at: ReturnType<Session['recordStats']>[] = [s.recordStats()];
      for (let i = 2; i <= 4; i++) {
        s.continue();
        assert.equal((await stop(s, `mark(${i})`)).kind, 'stopped');
        at.push(s.recordStats());
      }
      assert.equal(globals(l.pid).errno, 9, 'EBADF in errno, as glibc sets it');
      s.continue();
      assert.deepEqual(await stop(s, 'exit'), { kind: 'exited', pid: l.pid, code: 7 });
      await settle();
      assert.equal(out.text(), bare.stdout, buffer ? 'recorded through the buffer' : 'recorded by trapping');
      stats.push(at[3]);
      runs.push(at);
    }
    const [b, t] = runs;
    // through the buffer: stdin's reads (mark 1-2); read, getrandom, the clock, getpid,
    // pread, the writes of printf (2-3); the writes (3-4), past two overflows of the ring
    assert.ok(b[1].buffered - b[0].buffered >= 2, `stdin: ${JSON.stringify(b)}`);
    assert.ok(b[2].buffered - b[1].buffered >= 6, `phase 2: ${JSON.stringify(b)}`);
    assert.ok(b[3].buffered - b[2].buffered >= WRITES - 3, `the writes: ${JSON.stringify(b)}`);
    // trapped: syscall(SYS_getpid) and the read larger than the ring; the writes that found it full
    assert.ok(b[2].trapped - b[1].trapped >= 2, `phase 2: ${JSON.stringify(b)}`);
    assert.ok(b[3].trapped - b[2].trapped >= 2, `the ring's overflows: ${JSON.stringify(b)}`);
    assert.equal(t[3].buffered, 0, 'CRYO_SYSBUF=0 turns the buffer off');
    // the same log either way: entries, positions, bytes
    for (let i = 0; i < 4; i++) {
      assert.equal(b[i].entries, t[i].entries, `entries at mark(${i + 1})`);
      assert.equal(b[i].bytes, t[i].bytes, `log bytes at mark(${i + 1})`);
    }
  });

  test('restore and replay across buffered reads, getrandom, the clock and the ring`s overflow: the same values, the output once', async () => {
    const prog = buildFixture('sysbuf.c');
    const bare = spawnSync(prog, [String(WRITES)], { input: INPUT, encoding: 'utf8' });
    const { s, l, out, globals } = await recorded(prog);
    const cp1 = s.checkpoint();
    const pos1 = s.recordPosition();
    s.continue();
    await stop(s, 'mark(2)');
    s.continue();
    await stop(s, 'mark(3)');
    const seen = globals(l.pid);
    const pos3 = s.recordPosition();
    s.continue();
    await stop(s, 'mark(4)');
    const pos4 = s.recordPosition();
    const before = s.recordStats();
    assert.ok(before.buffered > WRITES, 'the buffer was used');
    await settle();
    const printed = out.text();
    assert.equal(printed, bare.stdout.slice(0, printed.length));

    // back to mark(1): stdin (closed now) and the rest come from the log
    const np = s.restore(cp1);
    s.replayFrom(pos1);
    for (let i = 2; i <= 4; i++) {
      s.continue();
      const ev = await stop(s, `replayed mark(${i})`);
      assert.equal(ev.kind, 'stopped');
      assert.equal(ev.kind === 'stopped' && ev.reason, 'breakpoint', `mark(${i}) reached by replay: ${JSON.stringify(ev, (k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      if (i === 3) {
        assert.deepEqual(globals(np), seen, 'errno, random bytes, clock and pid as recorded');
        assert.equal(s.recordPosition(), pos3);
      }
    }
    assert.equal(s.recordPosition(), pos4);
    const after = s.recordStats();
    assert.ok(after.replayed - before.replayed >= WRITES, `replayed: ${JSON.stringify(after)}`);
    assert.equal(after.entries, before.entries, 'nothing recorded twice');
    await settle();
    assert.equal(out.text(), printed, 'the replay printed nothing again');
    s.continue();
    assert.deepEqual(await stop(s, 'exit'), { kind: 'exited', pid: np, code: 7 });
    await settle();
    assert.equal(out.text(), bare.stdout);
  });

  test('a pause while the program waits in a buffered read: the checkpoint taken there gets the line from the log when replayed', async () => {
    const prog = buildFixture('sysbuf.c');
    const s = session();
    const l = s.launch({ program: prog, args: ['10'], stdin: { mode: 'pipe' }, stdout: { mode: 'pipe' } });
    collect(l.stdout!);
    s.recordStart();
    s.insertBreakpoint(symbolAddress(l.pid, prog, 'mark'));
    s.continue();
    await stop(s, 'mark(1)');
    s.continue();
    await settle(); // it waits in read(0)
    s.interrupt();
    assert.equal((await stop(s, 'pause')).kind, 'stopped');
    // it waits in the buffer's wrapper (an anonymous executable page), not in libc's read
    const pc = s.registers(l.pid).rip;
    const where = readFileSync(`/proc/${l.pid}/maps`, 'utf8').split('\n').find((m) => {
      const [lo, hi] = m.split(' ')[0].split('-').map((x) => BigInt('0x' + x));
      return pc >= lo && pc < hi;
    });
    assert.match(where ?? '', /^\S+ r-xp 00000000 00:00 0\s*$/, `the pc 0x${pc.toString(16)} in ${where}`);
    const cp = s.checkpoint();
    const pos = s.recordPosition();
    const input = () => s.readMemory(symbolAddress(s.pid, prog, 'input'), 16).toString('latin1').replace(/\0.*$/s, '');
    writeSync(l.stdin!, 'typed\n');
    closeSync(l.stdin!);
    s.continue();
    await stop(s, 'mark(2)');
    assert.equal(input(), 'typed'); // strtok cut the newline
    assert.ok(s.recordStats().buffered > 0);
    s.restore(cp);
    s.replayFrom(pos);
    s.continue();
    const ev = await stop(s, 'replayed mark(2)');
    assert.equal(ev.kind === 'stopped' && ev.reason, 'breakpoint');
    assert.equal(input(), 'typed', 'the read replayed, not made again on the closed pipe');
    assert.ok(s.recordStats().replayed > 0);
  });

  test('an image saved while recording holds libc`s own code where the buffer patched it', async () => {
    const prog = buildFixture('sysbuf.c');
    const { s, l } = await recorded(prog);
    s.continue();
    await stop(s, 'mark(2)'); // libc is patched by now
    const maps = readFileSync(`/proc/${l.pid}/maps`, 'utf8').split('\n');
    const libcLine = maps.find((m) => /\/libc\.so\.6$/.test(m) && / 00000000 /.test(m))!;
    const libcPath = libcLine.split(/\s+/).pop()!;
    const base = BigInt('0x' + libcLine.split('-')[0]);
    const sym = spawnSync('readelf', ['-W', '--dyn-syms', libcPath], { encoding: 'utf8' }).stdout.split('\n').find((x) => / write@@/.test(x))!;
    const [value, size] = sym.trim().split(/\s+/).slice(1, 3);
    const off = Number.parseInt(value, 16);
    const file = readFileSync(libcPath).subarray(off, off + Number(size));
    const live = s.readMemory(base + BigInt(off), file.length);
    assert.notDeepEqual(live, file, 'write is patched in the running program');
    const dir = mkdtempSync(join(tmpdir(), 'cryo-sysbuf-'));
    try {
      s.saveImage(0, join(dir, 'p.cryo'));
      const img = new Image(join(dir, 'p.cryo'));
      try {
        assert.deepEqual(img.readMemory(base + BigInt(off), file.length), file, 'the image has libc`s bytes');
      } finally {
        img.close();
      }
      assert.deepEqual(s.readMemory(base + BigInt(off), file.length), live, 'patched again afterwards');
      s.continue();
      await stop(s, 'mark(3)');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
