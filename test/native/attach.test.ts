// Attach and detach, pause, and the guarantee that no debuggee outlives its debugger.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Session } from '../../adapter/engine';
import { withTimeout } from '../helpers/elf';
import { sessionPool } from '../helpers/sessions';
import { buildFixture, repoRoot } from '../helpers/fixtures';
import { isAlive, waitGone } from '../helpers/procs';

const session = sessionPool();

function startBare(prog: string, args: string[]) {
  const child = spawn(prog, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise<{ code: number | null; out: string }>((res) => child.on('close', (code) => res({ code, out })));
  const ready = new Promise<void>((res) => child.stdout.once('data', () => res()));
  return { child, done, ready };
}

describe('attach', () => {
  test('attach to a running process with threads, look, detach: it finishes normally', async () => {
    const prog = buildFixture('sleeper.c', { flags: ['-O0', '-g', '-pthread'] });
    const p = startBare(prog, ['30', '20', '3']);
    await p.ready;
    const pid = p.child.pid!;
    const s = session();
    s.attach(pid);
    const tids = s.threads().sort((a, b) => a - b);
    const procTids = readdirSync(`/proc/${pid}/task`).map(Number).sort((a, b) => a - b);
    assert.deepEqual(tids, procTids);
    for (const t of tids) assert.ok(s.registers(t).rip > 0n);
    await new Promise((r) => setTimeout(r, 100)); // stays stopped meanwhile
    s.detach();
    assert.equal(s.pid, 0);
    const r = await withTimeout(p.done, 20000, 'the detached process to finish');
    assert.equal(r.code, 7);
    assert.match(r.out, /tick 29\nfinished\n$/);
  });

  test('attach, continue, pause, continue, detach', async () => {
    const prog = buildFixture('sleeper.c');
    const p = startBare(prog, ['20', '20']);
    await p.ready;
    const s = session();
    s.attach(p.child.pid!);
    s.continue();
    await new Promise((r) => setTimeout(r, 60));
    s.interrupt();
    const e = await withTimeout(s.waitStop(), 10000, 'pause');
    assert.equal(e.kind, 'stopped');
    assert.equal((e as { reason: string }).reason, 'interrupt');
    s.continue();
    s.interrupt();
    await withTimeout(s.waitStop(), 10000, 'second pause');
    s.detach();
    const r = await withTimeout(p.done, 20000, 'finish');
    assert.equal(r.code, 7);
  });

  test('attach refusals say why', () => {
    const s = session();
    assert.throws(() => s.attach(999999), /no such process/);
    assert.throws(() => s.attach(process.pid), /the debugger itself/);
  });
  test('a second tracer is told who holds the process', async () => {
    const prog = buildFixture('sleeper.c');
    const p = startBare(prog, ['20', '20']);
    await p.ready;
    const a = session();
    a.attach(p.child.pid!);
    const b = session();
    assert.throws(() => b.attach(p.child.pid!), /already traced by process \d+/);
    a.detach();
    assert.equal((await withTimeout(p.done, 20000, 'finish')).code, 7);
  });
});

describe('no debuggee outlives its debugger', () => {
  for (const how of ['SIGKILL', 'crash'] as const) {
    test(`an adapter process that dies by ${how} takes its debuggee and checkpoints with it`, async () => {
      const prog = buildFixture('counter.c');
      const script = join(repoRoot, 'test', 'native', 'orphan-driver.ts');
      const child = spawn(process.execPath, ['--import', 'tsx', script, prog, how], { stdio: ['ignore', 'pipe', 'inherit'], cwd: repoRoot });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const exited = new Promise<void>((res) => child.on('exit', () => res()));
      await withTimeout(
        new Promise<void>((res) => {
          const check = () => (/pids (\d+) (\d+)/.test(out) ? res() : setTimeout(check, 20));
          check();
        }),
        20000,
        'the driver to launch',
      );
      const [, debuggee, frozen] = /pids (\d+) (\d+)/.exec(out)!.map(Number);
      assert.ok(isAlive(debuggee) && isAlive(frozen));
      if (how === 'SIGKILL') child.kill('SIGKILL');
      await withTimeout(exited, 20000, 'the driver to die');
      assert.ok(await waitGone(debuggee), `debuggee ${debuggee} survived`);
      assert.ok(await waitGone(frozen), `checkpoint ${frozen} survived`);
    });
  }
});
