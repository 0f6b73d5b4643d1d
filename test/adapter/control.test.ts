// Conditions, hit counts, logpoints, signals, pause, attach and the errors users see.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { isAlive, waitGone } from '../helpers/procs';
import { clientPool, collectOutput, launchTo } from './dap';

const client = clientPool();

const counterSrc = join(fixturesDir, 'counter.c');

async function argValue(dc: DebugClient, tid: number, name: string): Promise<string | undefined> {
  const st = await dc.stackTraceRequest({ threadId: tid });
  const scopes = await dc.scopesRequest({ frameId: st.body.stackFrames[0].id });
  const vars = await dc.variablesRequest({ variablesReference: scopes.body.scopes.find((s) => s.name === 'Arguments')!.variablesReference });
  return vars.body.variables.find((v) => v.name === name)?.value;
}

describe('breakpoint options', () => {
  test('a conditional breakpoint stops only where the condition holds', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['10'] }, counterSrc, [{ line: 10, condition: 'i == 6 || i == 8' }]);
    assert.equal(await argValue(dc, stop.body.threadId!, 'i'), '6');
    const again = dc.waitForEvent('stopped');
    await dc.continueRequest({ threadId: stop.body.threadId! });
    await again;
    assert.equal(await argValue(dc, stop.body.threadId!, 'i'), '8');
  });

  test('a hit count stops on that hit, as gdb`s ignore count does', async () => {
    const prog = buildFixture('counter.c');
    const g = gdbBatch(prog, ['set startup-with-shell off', 'break tick', 'ignore 1 4', 'run', 'info args'], ['10']);
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['10'] }, counterSrc, [{ line: 10, hitCondition: '5' }]);
    assert.equal(await argValue(dc, stop.body.threadId!, 'i'), /^i = (\d+)/m.exec(g)![1]);
  });

  test('a logpoint logs with interpolated values and does not stop', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const out = collectOutput(dc);
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: ['4'] });
    await initialized;
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [{ line: 11, logMessage: 'i={i} total={total}' }] });
    const ended = dc.waitForEvent('terminated');
    await dc.configurationDoneRequest();
    await launched;
    await ended;
    assert.equal(out.text('console').split('\n').filter((l) => l.startsWith('i=')).join('\n'), 'i=0 total=0\ni=1 total=0\ni=2 total=1\ni=3 total=3');
  });

  test('after a logpoint and a false condition on the way, a stop shows its own place, as gdb does', async () => {
    const prog = buildFixture('counter.c');
    const g = gdbBatch(prog, ['set startup-with-shell off', 'dprintf counter.c:11,"log %ld\\n",i', 'break counter.c:10 if i == 99', 'break counter.c:21', 'run', 'bt', 'print i'], ['4']);
    const dc = await client();
    const out = collectOutput(dc);
    const stop = await launchTo(dc, { program: prog, args: ['4'] }, counterSrc, [{ line: 11, logMessage: 'log {i}' }, { line: 10, condition: 'i == 99' }, { line: 21 }]);
    const tid = stop.body.threadId!;
    const st = await dc.stackTraceRequest({ threadId: tid });
    const gdbTop = /^#0\s+(\w+) \(.*at .*:(\d+)$/m.exec(g)!;
    assert.deepEqual([st.body.stackFrames[0].name, st.body.stackFrames[0].line], [gdbTop[1], Number(gdbTop[2])]);
    assert.equal(st.body.stackFrames.length >= 2 && st.body.stackFrames[1].name, '__libc_start_call_main'); // main's caller, not tick's
    const logged = out.text('console').split('\n').filter((l) => l.startsWith('log '));
    assert.deepEqual(logged, g.split('\n').filter((l) => l.startsWith('log ')));
    const i = await dc.evaluateRequest({ expression: 'i', frameId: st.body.stackFrames[0].id, context: 'watch' });
    assert.equal(i.body.result, /^\$1 = (\d+)/m.exec(g)![1]);
  });

  test('a function breakpoint and a bad hit condition', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['3'] }, counterSrc, [], async () => {
      const r = await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'tick' }] });
      assert.equal(r.body.breakpoints[0].verified, true);
      const bad = await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [{ line: 11, hitCondition: 'sometimes' }] });
      assert.equal(bad.body.breakpoints[0].verified, false);
      assert.match(bad.body.breakpoints[0].message ?? '', /hit condition "sometimes" is not understood/);
    });
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    assert.equal(st.body.stackFrames[0].name, 'tick');
    assert.equal(st.body.stackFrames[0].line, 10);
  });
});

describe('signals, pause, attach', () => {
  test('a crash stops with reason exception; exceptionInfo names the signal and the address gdb reports', async () => {
    const prog = buildFixture('crash.c');
    const g = gdbBatch(prog, ['set startup-with-shell off', 'run', 'p $_siginfo._sifields._sigfault.si_addr', 'bt 1']);
    const dc = await client();
    const stop = await launchTo(dc, { program: prog }, join(fixturesDir, 'crash.c'), []);
    assert.equal(stop.body.reason, 'exception');
    const info = await dc.exceptionInfoRequest({ threadId: stop.body.threadId! });
    assert.equal(info.body.exceptionId, 'SIGSEGV');
    const addr = /\(void \*\) (0x[0-9a-f]+)/.exec(g)![1];
    assert.match(info.body.description ?? '', new RegExp(`at address ${addr}`));
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    const gTop = /^#0\s+(?:0x[0-9a-f]+ in )?(\w+) .* at \S+:(\d+)/m.exec(g)!;
    assert.deepEqual([st.body.stackFrames[0].name, st.body.stackFrames[0].line], [gTop[1], Number(gTop[2])]);
    const ended = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: stop.body.threadId! });
    assert.equal((await ended).body.exitCode, 128 + 11);
  });

  test('pause stops a running program; continue and terminate end it, leaving nothing', async () => {
    const prog = buildFixture('sleeper.c');
    const dc = await client();
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: ['1000', '10'] });
    await initialized;
    await dc.configurationDoneRequest();
    await launched;
    await new Promise((r) => setTimeout(r, 200));
    const threads = await dc.threadsRequest();
    const paused = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.pauseRequest({ threadId: threads.body.threads[0].id });
    assert.equal((await paused).body.reason, 'pause');
    const st = await dc.stackTraceRequest({ threadId: threads.body.threads[0].id });
    assert.ok(st.body.stackFrames.some((f) => f.name === 'main'), 'main is on the stack of the paused program');
    const pid = threads.body.threads[0].id;
    await dc.continueRequest({ threadId: pid });
    const term = dc.waitForEvent('terminated');
    await dc.terminateRequest({});
    await term;
    assert.ok(await waitGone(pid));
  });

  test('terminate on a stopped program ends the session: exited, then terminated (Stop pressed once)', async () => {
    const prog = buildFixture('sleeper.c');
    const dc = await client();
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: ['1000', '10'], stopAtEntry: true });
    await initialized;
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.configurationDoneRequest();
    await launched;
    const pid = (await stopped).body.threadId!;
    const exited = dc.waitForEvent('exited');
    const term = dc.waitForEvent('terminated');
    await dc.terminateRequest({});
    await exited;
    await term;
    assert.ok(await waitGone(pid));
  });

  test('attach to a running process, stop at a breakpoint, disconnect: it runs on to its normal end', async () => {
    const prog = buildFixture('sleeper.c');
    const child = spawn(prog, ['40', '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => child.stdout.once('data', r));
    const done = new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    const dc = await client();
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const attached = dc.attachRequest({ pid: child.pid } as DebugProtocol.AttachRequestArguments);
    await initialized;
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'nap' }] });
    await dc.configurationDoneRequest();
    await attached;
    const stop = await stopped;
    assert.equal(stop.body.reason, 'breakpoint');
    await dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    await dc.disconnectRequest({ terminateDebuggee: false });
    assert.equal(await done, 7);
    assert.match(out, /tick 39\nfinished\n$/);
    assert.ok(!isAlive(child.pid!));
  });

  test('errors that say what to do: missing program, not executable, attach to nothing', async () => {
    const dc = await client();
    await dc.initializeRequest();
    await assert.rejects(dc.launch({ program: '/nonexistent/app' }), /does not exist: build it first/);
    const dc2 = await client();
    await dc2.initializeRequest();
    await assert.rejects(dc2.launch({ program: counterSrc }), /not executable/);
    const dc3 = await client();
    await dc3.initializeRequest();
    await assert.rejects(dc3.attachRequest({ pid: 999999 } as DebugProtocol.AttachRequestArguments), /no such process/);
  });
});

describe('C++ values and condition errors', () => {
  test('locals of a C++ frame (struct, array, class with a base, std::string, vector, map) as gdb prints them', async () => {
    const prog = buildFixture('shapes.cc');
    const src = join(fixturesDir, 'shapes.cc');
    const g = gdbBatch(prog, ['set startup-with-shell off', 'break shapes.cc:40', 'run', 'info locals']);
    const gLocals = new Map<string, string>();
    for (const m of g.slice(g.indexOf('\n40\t')).matchAll(/^(\w+) = (.*(?:\n(?!\w+ = ).*)*)/gm)) gLocals.set(m[1], m[2].replace(/\s+/g, ' ').trim());
    assert.ok(gLocals.size >= 6, `gdb locals: ${[...gLocals.keys()]}`);
    const dc = await client();
    const stop = await launchTo(dc, { program: prog }, src, [{ line: 40 }]);
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    const sc = await dc.scopesRequest({ frameId: st.body.stackFrames[0].id });
    const vars = await dc.variablesRequest({ variablesReference: sc.body.scopes.find((s) => s.name === 'Locals')!.variablesReference });
    const norm = (x: string) => x.replace(/\s+/g, ' ').replace(/0x[0-9a-f]+/g, '0x…').trim();
    for (const [name, value] of gLocals) {
      const v = vars.body.variables.find((x) => x.name === name);
      assert.ok(v, `local ${name} is shown`);
      assert.equal(norm(v.value), norm(value), `local ${name}`);
    }
    // expandable: the Rect's base class and the vector's elements
    const r = vars.body.variables.find((x) => x.name === 'r')!;
    const kids = await dc.variablesRequest({ variablesReference: r.variablesReference });
    assert.ok(kids.body.variables.some((k) => k.name === 'Shape' || /Shape/.test(k.name)), `children of r: ${kids.body.variables.map((k) => k.name)}`);
    const vec = vars.body.variables.find((x) => x.name === 'v')!;
    const elems = await dc.variablesRequest({ variablesReference: vec.variablesReference });
    assert.deepEqual(elems.body.variables.map((e) => e.value), ['2', '3', '5', '7']);
  });

  test('a breakpoint condition that does not parse is refused, saying where; the others stay', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    await dc.initializeRequest();
    const init = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: ['3'] });
    await init;
    const r = await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [{ line: 10, condition: 'i == (3' }, { line: 11, condition: 'i == 1' }] });
    assert.equal(r.body.breakpoints[0].verified, false);
    assert.match(r.body.breakpoints[0].message ?? '', /Condition "i == \(3": A syntax error in expression.*\(column \d+\)/);
    assert.equal(r.body.breakpoints[1].verified, true);
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.configurationDoneRequest();
    await launched;
    const st = await dc.stackTraceRequest({ threadId: (await stopped).body.threadId! });
    assert.equal(st.body.stackFrames[0].line, 11);
  });
});
