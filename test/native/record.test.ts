// Record and replay: after a restore, re-execution sees the recorded inputs (stdin,
// randomness, time, pid) and does not repeat the program's output.
import assert from 'node:assert/strict';
import { createReadStream, writeSync, closeSync } from 'node:fs';
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
    for (let i = 2; i <= 3; i++) {
      s.continue();
      assert.equal((await stop(s)).kind, 'stopped');
      assert.deepEqual(globals(np), seen[i - 2], `inputs at mark(${i}) as recorded`);
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
