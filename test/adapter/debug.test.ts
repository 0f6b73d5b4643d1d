// The adapter over DAP on real programs, checked against gdb at the same stops and
// against the programs' own output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, afterEach, describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { assertNoFixtureProcesses } from '../helpers/procs';
import { collectOutput, launchTo, startClient } from './dap';
import { join } from 'node:path';

const clients: DebugClient[] = [];
async function client(): Promise<DebugClient> {
  const dc = await startClient();
  clients.push(dc);
  return dc;
}
afterEach(async () => {
  for (const dc of clients.splice(0)) {
    try {
      await dc.disconnectRequest({ terminateDebuggee: true });
    } catch {
      /* already ended */
    }
    await dc.stop();
  }
  await new Promise((r) => setTimeout(r, 100));
  assertNoFixtureProcesses('after test');
});
after(() => assertNoFixtureProcesses('after suite'));

const counterSrc = join(fixturesDir, 'counter.c');
const GDB = ['set startup-with-shell off'];

async function topFrame(dc: DebugClient, tid: number) {
  const st = await dc.stackTraceRequest({ threadId: tid });
  return st.body.stackFrames;
}

async function scopeVars(dc: DebugClient, frameId: number, scope: string): Promise<DebugProtocol.Variable[]> {
  const scopes = await dc.scopesRequest({ frameId });
  const s = scopes.body.scopes.find((x) => x.name === scope)!;
  return (await dc.variablesRequest({ variablesReference: s.variablesReference })).body.variables;
}

/** `info locals` / `info args` text as name -> value. */
function gdbVars(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of text.split('\n')) {
    const x = /^(\w+) = (.*)$/.exec(line.trim());
    if (x) m.set(x[1], x[2]);
  }
  return m;
}

describe('launch, breakpoints, stack and variables', () => {
  test('a line breakpoint in a loop hits as often as the program counts, and the output arrives', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const out = collectOutput(dc);
    const first = await launchTo(dc, { program: prog, args: ['7'] }, counterSrc, [{ line: 10 }]);
    assert.equal(first.body.reason, 'breakpoint');
    let hits = 1;
    for (;;) {
      const next = Promise.race([dc.waitForEvent('stopped').then(() => 'stopped'), dc.waitForEvent('terminated').then(() => 'terminated')]);
      await dc.continueRequest({ threadId: first.body.threadId! });
      if ((await next) === 'terminated') break;
      hits++;
    }
    const bare = spawnSync(prog, ['7'], { encoding: 'utf8' });
    assert.equal(hits, Number(/done (\d+)/.exec(bare.stdout)![1]));
    assert.equal(out.text('stdout'), bare.stdout);
  });

  test('stack and variables at a breakpoint equal gdb`s at the same stop', async () => {
    const prog = buildFixture('counter.c');
    const g = gdbBatch(prog, [...GDB, 'break counter.c:11', 'run', 'continue', 'echo ==BT==\\n', 'bt', 'echo ==ARGS==\\n', 'info args', 'echo ==MAIN==\\n', 'frame 1', 'info locals', 'echo ==END==\\n'], ['5']);
    const section = (a: string, b: string) => g.slice(g.indexOf(`==${a}==`), g.indexOf(`==${b}==`));
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['5'] }, counterSrc, [{ line: 11 }]);
    await dc.continueRequest({ threadId: stop.body.threadId! });
    await dc.waitForEvent('stopped');
    const frames = await topFrame(dc, stop.body.threadId!);
    const gdbFrames = [...section('BT', 'ARGS').matchAll(/^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\w+) \(.*\) at (\S+):(\d+)/gm)].map((m) => ({ name: m[2], line: Number(m[4]) }));
    assert.equal(gdbFrames.length, 2);
    // gdb stops its backtrace at main; the frames it shows must be ours, in order
    assert.deepEqual(frames.slice(0, gdbFrames.length).map((f) => ({ name: f.name, line: f.line })), gdbFrames);
    const args = await scopeVars(dc, frames[0].id, 'Arguments');
    const gArgs = gdbVars(section('ARGS', 'MAIN'));
    assert.ok(gArgs.size > 0);
    for (const [name, value] of gArgs) assert.equal(args.find((v) => v.name === name)?.value, value, `argument ${name}`);
    const mainLocals = await scopeVars(dc, frames[1].id, 'Locals');
    const gMain = gdbVars(section('MAIN', 'END'));
    assert.ok(gMain.size >= 3);
    for (const [name, value] of gMain) {
      const v = mainLocals.find((x) => x.name === name);
      assert.ok(v, `local ${name} shown`);
      // pointers: gdb's address differs between runs only by ASLR; both sides are 0x...
      if (/^0x/.test(value)) assert.match(v.value, /^\(?.*0x[0-9a-f]+/);
      else assert.equal(v.value, value, `local ${name}`);
    }
    const ev = await dc.evaluateRequest({ expression: 'total + i * 2', frameId: frames[0].id, context: 'watch' });
    const gEval = gdbBatch(prog, [...GDB, 'break counter.c:11', 'run', 'continue', 'print total + i * 2'], ['5']);
    assert.equal(ev.body.result, /\$1 = (.*)/.exec(gEval)![1]);
  });

  test('next, stepIn and stepOut land on the lines gdb lands on', async () => {
    const prog = buildFixture('counter.c');
    const g = gdbBatch(prog, [...GDB, 'break counter.c:20', 'run', 'step', 'next', 'next', 'next', 'next', 'next', 'step', 'finish'], ['3']);
    // the line numbers gdb printed after each command, in order
    const gdbLines = [...g.matchAll(/^(\d+)\t/gm)].map((m) => Number(m[1]));
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['3'] }, counterSrc, [{ line: 20 }]);
    const tid = stop.body.threadId!;
    const lines: number[] = [(await topFrame(dc, tid))[0].line];
    const seq: ('in' | 'next' | 'out')[] = ['in', 'next', 'next', 'next', 'next', 'next', 'in', 'out'];
    for (const s of seq) {
      const stopped = dc.waitForEvent('stopped');
      if (s === 'in') await dc.stepInRequest({ threadId: tid });
      else if (s === 'next') await dc.nextRequest({ threadId: tid });
      else await dc.stepOutRequest({ threadId: tid });
      await stopped;
      lines.push((await topFrame(dc, tid))[0].line);
    }
    assert.equal(gdbLines.length, seq.length + 1);
    assert.deepEqual(lines, gdbLines);
  });
});
