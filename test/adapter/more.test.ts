// setVariable, restart, programs without debug information, breakpoints in libraries
// loaded later with dlopen.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { clientPool, collectOutput, fakeTerminal, launchTo } from './dap';

const client = clientPool();

const counterSrc = join(fixturesDir, 'counter.c');
const ends = (dc: DebugClient) => dc.waitForEvent('terminated');

describe('changing the program and starting again', () => {
  test('setVariable on a local changes what the program does next, as in gdb', async () => {
    const prog = buildFixture('counter.c');
    // main's loop bound n: lowered to 2 at the first tick, the program stops counting early
    const g = gdbBatch(prog, ['set startup-with-shell off', 'break counter.c:11', 'run', 'up', 'set var n = 2', 'delete', 'continue'], ['6']);
    const gOut = g.split('\n').filter((l) => /^(iteration|done)/.test(l)).join('\n') + '\n';
    const dc = await client();
    const out = collectOutput(dc);
    const stop = await launchTo(dc, { program: prog, args: ['6'] }, counterSrc, [{ line: 11 }]);
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    const scopes = await dc.scopesRequest({ frameId: st.body.stackFrames[1].id });
    const locals = scopes.body.scopes.find((s) => s.name === 'Locals')!;
    const set = await dc.setVariableRequest({ variablesReference: locals.variablesReference, name: 'n', value: '1 + 1' });
    assert.equal(set.body.value, '2');
    await assert.rejects(dc.setVariableRequest({ variablesReference: locals.variablesReference, name: 'nosuch', value: '1' }), /no variable nosuch/);
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const end = ends(dc);
    await dc.continueRequest({ threadId: stop.body.threadId! });
    await end;
    assert.equal(out.text('stdout'), gOut);
  });

  test('registers read back fresh after setVariable, a step, a restore and a step back (the engine caches them per stop)', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['6'] }, counterSrc, [{ line: 11 }]);
    void stop;
    const thread = async () => (await dc.threadsRequest()).body.threads[0].id;
    const regs = async () => {
      const st = await dc.stackTraceRequest({ threadId: await thread(), levels: 1 });
      const sc = await dc.scopesRequest({ frameId: st.body.stackFrames[0].id });
      const ref = sc.body.scopes.find((s) => s.name === 'Registers')!.variablesReference;
      const v = await dc.variablesRequest({ variablesReference: ref });
      const r = Object.fromEntries(v.body.variables.map((x) => [x.name, BigInt(x.value)]));
      return { ref, r, ip: BigInt(st.body.stackFrames[0].instructionPointerReference!), line: st.body.stackFrames[0].line };
    };
    const a = await regs();
    assert.equal(a.r.rip, a.ip);
    // a register written, then read back: the new value, not the one read before
    const set = await dc.setVariableRequest({ variablesReference: a.ref, name: 'rax', value: '0x1234' });
    assert.equal(BigInt(set.body.value), 0x1234n);
    assert.equal((await regs()).r.rax, 0x1234n);
    const snap = (await dc.customRequest('cryo/snapshot', { name: 'here' })).body;
    // a step: the registers of the new stop
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const stepped = dc.waitForEvent('stopped');
    await dc.nextRequest({ threadId: await thread() });
    await stepped;
    const b = await regs();
    assert.equal(b.line, 12);
    assert.equal(b.r.rip, b.ip);
    assert.notEqual(b.r.rip, a.r.rip);
    // a step back (time travel restores a checkpoint): the registers as they were there
    const back = dc.waitForEvent('stopped');
    await dc.stepBackRequest({ threadId: await thread() });
    await back;
    const c = await regs();
    assert.equal(c.line, 11);
    assert.equal(c.r.rip, a.r.rip);
    assert.equal(c.r.rip, c.ip);
    // a restored snapshot: its registers, rax as written
    const restored = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.customRequest('cryo/restore', { id: snap.id });
    await restored;
    const d = await regs();
    assert.equal(d.r.rip, a.r.rip);
    assert.equal(d.r.rax, 0x1234n);
    await dc.disconnectRequest({ terminateDebuggee: true });
  });

  test('restart runs the program again from the start with the same breakpoints', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const out = collectOutput(dc);
    const stop = await launchTo(dc, { program: prog, args: ['3'] }, counterSrc, [{ line: 10, condition: 'i == 2' }]);
    const args = async () => {
      const st = await dc.stackTraceRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
      const sc = await dc.scopesRequest({ frameId: st.body.stackFrames[0].id });
      const v = await dc.variablesRequest({ variablesReference: sc.body.scopes.find((s) => s.name === 'Arguments')!.variablesReference });
      return v.body.variables.find((x) => x.name === 'i')!.value;
    };
    assert.equal(await args(), '2');
    void stop;
    const again = dc.waitForEvent('stopped');
    await dc.customRequest('restart', {});
    await again;
    assert.equal(await args(), '2');
    const end = ends(dc);
    await dc.continueRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
    await end;
    const bare = spawnSync(prog, ['3'], { encoding: 'utf8' }).stdout;
    assert.equal(out.text('stdout'), bare.slice(0, bare.indexOf('iteration 2')) + bare);
  });
});

describe('symbols the program does not have yet, or at all', () => {
  test('a program without debug information: a clear word, and the stack by symbol as gdb shows it', async () => {
    const prog = buildFixture('counter.c', { flags: ['-O0'], name: 'counter-nodebug' });
    const g = gdbBatch(prog, ['set startup-with-shell off', 'break tick', 'run', 'bt'], ['2']);
    const gNames = [...g.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(\)/gm)].map((m) => m[1]);
    const dc = await client();
    const out = collectOutput(dc);
    const stop = await launchTo(dc, { program: prog, args: ['2'] }, counterSrc, [], async () => {
      const r = await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'tick' }] });
      assert.equal(r.body.breakpoints[0].verified, true);
    });
    assert.match(out.text('console'), /has no debug information: stacks are shown by symbol/);
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    assert.deepEqual(st.body.stackFrames.slice(0, gNames.length).map((f) => f.name), gNames);
  });

  test('a breakpoint in a library loaded later with dlopen binds when it loads, and stops there', async () => {
    const lib = buildFixture('plugin.c', { shared: true, flags: ['-O0', '-g'] });
    const prog = buildFixture('host.c', { libs: ['-ldl'] });
    const pluginSrc = join(fixturesDir, 'plugin.c');
    const dc = await client();
    const changed: DebugProtocol.BreakpointEvent[] = [];
    dc.on('breakpoint', (e: DebugProtocol.BreakpointEvent) => changed.push(e));
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: [lib] });
    await initialized;
    const bp = await dc.setBreakpointsRequest({ source: { path: pluginSrc }, breakpoints: [{ line: 4 }] });
    assert.equal(bp.body.breakpoints[0].verified, false);
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.configurationDoneRequest();
    await launched;
    const stop = await stopped;
    assert.equal(stop.body.reason, 'breakpoint');
    assert.ok(changed.some((e) => e.body.breakpoint.verified && e.body.breakpoint.line === 4));
    const st = await dc.stackTraceRequest({ threadId: stop.body.threadId! });
    assert.deepEqual([st.body.stackFrames[0].name, st.body.stackFrames[0].line, st.body.stackFrames[1].name], ['plugin_scale', 4, 'main']);
    const y = await dc.evaluateRequest({ expression: 'y', frameId: st.body.stackFrames[0].id, context: 'watch' });
    assert.equal(y.body.result, '39');
  });
});

describe('console: integratedTerminal', () => {
  test('the program runs in the terminal the client starts, reads its input there, and stops at breakpoints', async () => {
    const prog = buildFixture('echoer.c');
    const dc = await client();
    const term = fakeTerminal(dc, 'hello\n');
    const st = await launchTo(dc, { program: prog, console: 'integratedTerminal' }, join(fixturesDir, 'echoer.c'), [], () =>
      dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'got_line' }] }),
    );
    assert.equal(st.body.reason, 'breakpoint');
    const frames = await dc.stackTraceRequest({ threadId: st.body.threadId! });
    assert.equal(frames.body.stackFrames[0].name, 'got_line');
    await dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    const exited = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: st.body.threadId! });
    term.stdin()!.write('world\n');
    term.stdin()!.end();
    assert.equal((await exited).body.exitCode, 2);
    assert.equal(term.output(), 'HELLO\nWORLD\nlines 2\n');
  });
});
