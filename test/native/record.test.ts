// Record and replay: after a restore, re-execution sees the recorded inputs (stdin,
// randomness, time, pid) and does not repeat the program's output.
import assert from 'node:assert/strict';
import { createReadStream, writeSync, closeSync, readFileSync } from 'node:fs';
import { isAlive, waitGone } from '../helpers/procs';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Session } from '../../adapter/engine';
import { symbolAddress, withTimeout } from '../helpers/elf';
import { sessionPool } from '../helpers/sessions';
import { buildFixture } from '../helpers/fixtures';

const session = sessionPool();

const stop = (s: Session, what = 'a stop') => withTimeout(s.waitStop(), 20000, what);

function collect(fd: number): { text: () => string } {
  let text = '';
  createReadStream('', { fd, autoClose: true }).on('data', (d) => (text += d)).on('error', () => {});
  return { text: () => text };
}

describe('record and replay', () => {
  test('a recorded program shares the tracer`s CPU while it has one thread, and still sees its own CPU mask, as its child does; its second thread ends that', async () => {
    const prog = buildFixture('affinity.c');
    const bare = spawnSync(prog, [], { encoding: 'utf8' });
    assert.equal(bare.status, 0, bare.stderr);
    const allowed = (pid: number) => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
    const toExit = async (t: Session, pid: number, what: string) => {
      let end;
      do {
        t.continue(); // past the child's SIGCHLD
        end = await stop(t, what);
      } while (end.kind === 'stopped');
      assert.deepEqual(end, { kind: 'exited', pid, code: 0 });
    };
    const mine = allowed(process.pid);
    const s = session();
    const l = s.launch({ program: prog, stdout: { mode: 'pipe' } });
    const out = collect(l.stdout!);
    s.recordStart();
    s.insertBreakpoint(symbolAddress(l.pid, prog, 'mark'));
    const toMark = async (what: string) => {
      for (;;) {
        s.continue(); // the child's SIGCHLD stops the program: delivered on resume
        const e = await stop(s, what);
        if (e.kind === 'stopped' && e.reason === 'signal' && e.signo === 17) continue;
        assert.equal(e.kind === 'stopped' && e.reason, 'breakpoint', `${what}: ${JSON.stringify(e, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
        return;
      }
    };
    await toMark('mark(1)');
    // pinned, where there is more than one CPU to choose from
    const several = mine.includes('-') || mine.includes(',');
    if (several) assert.match(allowed(l.pid), /^\d+$/, `pinned: ${allowed(l.pid)} (the tracer's: ${mine})`);
    // a second session started meanwhile (its tracer made by this pinned thread) launches
    // and records as the first did: the program sees its own mask, not this thread's one CPU
    const s2 = session();
    const l2 = s2.launch({ program: prog, stdout: { mode: 'pipe' } });
    const out2 = collect(l2.stdout!);
    s2.recordStart();
    await toExit(s2, l2.pid, 'the second program`s exit');
    await s2.close();
    await toMark('mark(2)');
    assert.equal(allowed(l.pid), mine, 'two threads: the mask it had');
    s.removeBreakpoint(symbolAddress(l.pid, prog, 'mark'));
    await toExit(s, l.pid, 'exit');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(out.text(), bare.stdout, 'the CPU count it printed, pinned and not, is the bare run`s');
    assert.equal(out2.text(), bare.stdout, 'the second session`s program too');
    assert.equal(allowed(process.pid), mine, 'this thread has its own mask back');
  });

  test('a program that forks while recorded: its children (which inherit the filter) run as they do bare, and end with it', async () => {
    const prog = buildFixture('forker.c');
    const bare = spawnSync(prog, ['3'], { encoding: 'utf8' });
    assert.equal(bare.status, 0, bare.stderr);
    const s = session();
    const l = s.launch({ program: prog, args: ['3'], stdout: { mode: 'pipe' } });
    const out = collect(l.stdout!);
    s.recordStart();
    let end;
    for (;;) {
      s.continue(); // SIGCHLD stops the program (as any signal does): delivered on resume
      end = await stop(s, 'exit');
      if (end.kind !== 'stopped' || end.reason !== 'signal' || end.signo !== 17) break;
    }
    assert.deepEqual(end, { kind: 'exited', pid: l.pid, code: 0 });
    await new Promise((r) => setTimeout(r, 100));
    // the children's lines and statuses (exit 10, 11, 12) as in the bare run
    assert.equal(out.text(), bare.stdout);
  });

  test('a replay across forks makes no child: each fork gives the recorded pid, each wait the recorded status, and nothing prints twice', async () => {
    const prog = buildFixture('forker.c');
    const s = session();
    const l = s.launch({ program: prog, args: ['2'], stdout: { mode: 'pipe' } });
    const out = collect(l.stdout!);
    s.recordStart();
    const addrs = new Map(['before_forks', 'after_forks', 'kids'].map((n) => [n, symbolAddress(l.pid, prog, n)]));
    const at = (name: string) => addrs.get(name)!; // the same in every copy of the process
    s.insertBreakpoint(at('before_forks'));
    s.insertBreakpoint(at('after_forks'));
    const toBreakpoint = async (what: string) => {
      for (;;) {
        s.continue(); // SIGCHLD stops the program: delivered on resume
        const e = await stop(s, what);
        if (e.kind === 'stopped' && e.reason === 'signal' && e.signo === 17) continue;
        return e;
      }
    };
    assert.equal((await toBreakpoint('before_forks')).kind, 'stopped');
    const cp = s.checkpoint();
    const pos = s.recordPosition();
    const e1 = await toBreakpoint('after_forks');
    assert.equal(e1.kind === 'stopped' && e1.reason, 'breakpoint');
    const kids = s.readMemory(at('kids'), 64);
    assert.ok(kids.readInt32LE(0) > 0 && kids.readInt32LE(4) > 0, 'two children were waited for');
    await new Promise((r) => setTimeout(r, 100));
    const printed = out.text();
    assert.match(printed, /child 1 ended: exit 11/);
    const end = s.recordPosition();
    const children = (pid: number) => readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    s.restore(cp);
    s.replayFrom(pos);
    const e2 = await toBreakpoint('after_forks, replayed');
    assert.equal(e2.kind === 'stopped' && e2.reason, 'breakpoint', 'no divergence');
    assert.ok(s.readMemory(at('kids'), 64).equals(kids), 'the recorded pids and statuses');
    assert.equal(s.recordPosition(), end);
    assert.equal(children(s.pid), '', 'no child was made');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(out.text(), printed, 'nothing printed twice');
  });

  test('a signal the recorded run received from outside ends a replay that reaches it with a divergence that names it, not a silently different past', async () => {
    // raise() sends SIGUSR1 to the pid getpid() gave: in a replay, the recorded pid, which
    // is not the copy's, so the handler would not run again; the replay must say so
    const prog = buildFixture('signals.c');
    const s = session();
    const l = s.launch({ program: prog, args: ['3'], stdout: { mode: 'null' } });
    s.recordStart();
    const main = symbolAddress(l.pid, prog, 'main');
    s.insertBreakpoint(main);
    s.continue();
    assert.equal((await stop(s, 'main')).kind, 'stopped');
    s.removeBreakpoint(main);
    const cp = s.checkpoint();
    const pos = s.recordPosition();
    let signals = 0;
    for (;;) {
      s.continue(); // each SIGUSR1 stops the program; the resume delivers it
      const e = await stop(s, 'the end');
      if (e.kind === 'stopped' && e.reason === 'signal' && e.signo === 10) signals++;
      else {
        assert.deepEqual(e, { kind: 'exited', pid: l.pid, code: 0 });
        break;
      }
    }
    assert.equal(signals, 3);
    s.restore(cp);
    s.replayFrom(pos);
    s.continue();
    const d = await stop(s, 'the divergence');
    assert.equal(d.kind === 'stopped' && d.reason, 'diverged');
    assert.equal(BigInt.asIntN(64, (d as { addr: bigint }).addr), -10n, 'SIGUSR1 named');
    assert.equal(s.recordStats().mode, 'recording', 'live from there');
  });

  test('a child the recorded program leaves behind runs on while the session lasts, and ends with it', async () => {
    const prog = buildFixture('forker.c');
    const s = new Session();
    try {
      const l = s.launch({ program: prog, args: ['orphan'], stdout: { mode: 'pipe' } });
      const out = collect(l.stdout!);
      s.recordStart();
      s.continue();
      assert.deepEqual(await stop(s, 'exit'), { kind: 'exited', pid: l.pid, code: 0 });
      await new Promise((r) => setTimeout(r, 100));
      const child = Number(/orphan (\d+)/.exec(out.text())?.[1]);
      assert.ok(child > 0 && isAlive(child), `the child runs on: ${out.text()}`);
      // its sleep is a recorded syscall: it sits in it, not failing with ENOSYS
      assert.match(readFileSync(`/proc/${child}/stat`, 'utf8'), /\) S /);
      await s.close();
      assert.ok(await waitGone(child), 'the child ended with the session');
    } finally {
      await s.close().catch(() => {});
    }
  });

  test('a checkpoint taken while the program sleeps: the sleep is recorded, and a replay from the checkpoint sees the same clock', async () => {
    const prog = buildFixture('napper.c');
    const s = session();
    const l = s.launch({ program: prog, stdout: { mode: 'null' } });
    s.recordStart();
    const mark = symbolAddress(l.pid, prog, 'mark');
    const seenAt = symbolAddress(l.pid, prog, 'seen');
    s.insertBreakpoint(mark);
    // a first checkpoint at tick(0): the one at the pause is then a delta, built from a copy
    // of this one (which was not sleeping)
    const tick = symbolAddress(l.pid, prog, 'tick');
    s.insertBreakpoint(tick);
    s.continue();
    assert.equal((await stop(s, 'tick(0)')).kind, 'stopped');
    s.removeBreakpoint(tick);
    s.checkpoint();
    // paused inside a sleep: rax holds the kernel's -ERESTART_RESTARTBLOCK (tried until so)
    let inSleep = false;
    for (let tries = 0; tries < 10 && !inSleep; tries++) {
      s.continue();
      await new Promise((r) => setTimeout(r, 130));
      s.interrupt();
      const paused = await stop(s, 'the pause');
      assert.equal(paused.kind, 'stopped');
      inSleep = BigInt.asIntN(64, s.registers(l.pid).rax) === -516n;
    }
    assert.ok(inSleep, 'paused inside a sleep');
    const cp = s.checkpoint();
    assert.equal(s.checkpoints().find((c) => c.id === cp)?.kind, s.checkpointMode().incremental ? 'delta' : 'full');
    const pos = s.recordPosition();
    s.continue();
    assert.equal((await stop(s, 'mark')).kind, 'stopped');
    const seen = s.readMemory(seenAt, 48);
    const end = s.recordPosition();
    s.restore(cp);
    s.replayFrom(pos);
    s.continue();
    const again = await stop(s, 'mark, replayed');
    assert.equal(again.kind, 'stopped');
    assert.equal((again as { reason: string }).reason, 'breakpoint', `no divergence: ${(again as { reason: string }).reason}`);
    assert.ok(s.readMemory(seenAt, 48).equals(seen), 'the same clock readings');
    assert.equal(s.recordPosition(), end);
  });

  test('replay after a restore gives the program the same stdin, random bytes, time (syscall and vDSO), TSC and pid, and prints nothing twice', async () => {
    const prog = buildFixture('inputs.c');
    const s = session();
    const l = s.launch({ program: prog, stdin: { mode: 'pipe' }, stdout: { mode: 'pipe' } });
    const out = collect(l.stdout!);
    s.recordStart();
    const mark = symbolAddress(l.pid, prog, 'mark');
    s.insertBreakpoint(mark);
    writeSync(l.stdin!, 'alpha\nbeta\ngamma\n');
    const globals = (pid: number) => {
      const g = (name: string, n: number) => s.readMemory(symbolAddress(pid, prog, name), n).toString('hex');
      return { rand: g('last_rand', 8), time: g('last_time', 16), vtime: g('last_vtime', 16), tsc: g('last_tsc', 8), pid: g('last_pid', 8), line: g('last_line', 16) };
    };
    s.continue();
    assert.equal((await stop(s)).kind, 'stopped'); // mark(1)
    const cp = s.checkpoint();
    const pos = s.recordPosition();
    assert.ok(pos > 0n, 'syscalls were recorded');
    const seen = [];
    for (let i = 2; i <= 3; i++) {
      s.continue();
      assert.equal((await stop(s)).kind, 'stopped'); // mark(i)
      seen.push(globals(l.pid));
    }
    await new Promise((r) => setTimeout(r, 100));
    const printed = out.text();
    assert.equal(printed.split('\n').filter(Boolean).length, 3);
    // a line each: read, getrandom, the vDSO clock, write through the in-process buffer
    assert.ok(s.recordStats().buffered >= 9, `buffered: ${JSON.stringify(s.recordStats())}`);

    // back to mark(1), replaying forward: same inputs, no output
    const np = s.restore(cp);
    s.replayFrom(pos);
    assert.equal(s.recordStats().mode, 'replaying');
    // where the machine does not make rdtsc fault (PR_SET_TSC ignored by the hypervisor:
    // checked by a program of our own below), the TSC is live in a replay, as the engine says
    const tscTraps = spawnSync(buildFixture('tsc_traps.c')).signal === 'SIGSEGV';
    assert.equal(s.recordStats().tscRecorded, tscTraps, 'the engine knows whether rdtsc is recorded');
    const comparable = ({ tsc, ...rest }: ReturnType<typeof globals>) => (tscTraps ? { tsc, ...rest } : rest);
    for (let i = 2; i <= 3; i++) {
      s.continue();
      assert.equal((await stop(s)).kind, 'stopped');
      assert.deepEqual(comparable(globals(np)), comparable(seen[i - 2]), `inputs at mark(${i}) as recorded`);
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(out.text(), printed, 'the replay printed nothing again');
    assert.ok(s.recordStats().replayed > 0);
    assert.equal(s.recordStats().mode, 'recording', 'the end of the log: live again');

    // and live from there: stdin's end, the last line printed once
    closeSync(l.stdin!);
    s.removeBreakpoint(mark);
    s.continue();
    const end = await stop(s, 'exit');
    assert.deepEqual(end, { kind: 'exited', pid: np, code: 0 });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(out.text(), printed + 'done 3\n');
  });
});
