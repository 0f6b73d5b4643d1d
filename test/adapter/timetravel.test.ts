// Step back and reverse continue over DAP, checked against what the forward run showed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { clientPool, collectOutput, fakeTerminal, launchTo } from './dap';

const client = clientPool();

const counterSrc = join(fixturesDir, 'counter.c');

async function tid(dc: DebugClient): Promise<number> {
  return (await dc.threadsRequest()).body.threads[0].id;
}

/** The line and every local and argument of the top frame, as the editor shows them. */
async function snapshot(dc: DebugClient, watch = 'total') {
  const t = await tid(dc);
  const st = await dc.stackTraceRequest({ threadId: t });
  const top = st.body.stackFrames[0];
  const sc = await dc.scopesRequest({ frameId: top.id });
  const vars: string[] = [];
  for (const s of sc.body.scopes.filter((x) => x.name !== 'Registers')) {
    const v = await dc.variablesRequest({ variablesReference: s.variablesReference });
    vars.push(...v.body.variables.map((x) => `${x.name}=${x.value}`));
  }
  const total = (await dc.evaluateRequest({ expression: watch, frameId: top.id, context: 'watch' })).body.result;
  return { fn: top.name, line: top.line, vars, total };
}

async function act(dc: DebugClient, what: 'next' | 'back' | 'reverse' | 'continue'): Promise<DebugProtocol.StoppedEvent> {
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  const t = await tid(dc);
  if (what === 'next') await dc.nextRequest({ threadId: t });
  else if (what === 'back') await dc.stepBackRequest({ threadId: t });
  else if (what === 'reverse') await dc.reverseContinueRequest({ threadId: t });
  else await dc.continueRequest({ threadId: t });
  return stopped;
}

describe('time travel', () => {
  test('next five times through a loop, step back five times: the same states in reverse; next again: the same states', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const out = collectOutput(dc);
    const init = await dc.initializeRequest();
    assert.equal(init.body?.supportsStepBack, true);
    await launchTo(dc, { program: prog, args: ['6'] }, counterSrc, [{ line: 20, condition: 'i == 2' }]);
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const forward = [await snapshot(dc)];
    for (let i = 0; i < 5; i++) {
      await act(dc, 'next');
      forward.push(await snapshot(dc));
    }
    const lines = forward.map((f) => f.line);
    assert.ok(new Set(lines).size >= 3, `the steps visit several lines: ${lines}`);
    // short steps keep no checkpoint of their own: the states below are found again by
    // re-executing from the few that were taken
    const tl = (await dc.customRequest('cryo/checkpoints')).body.timeline as { positions: number; checkpoints: number };
    assert.ok(tl.checkpoints < tl.positions, `checkpoints ${tl.checkpoints} of ${tl.positions} positions`);
    const printedBefore = out.text('stdout');
    for (let i = 4; i >= 0; i--) {
      const ev = await act(dc, 'back');
      assert.equal(ev.body.reason, 'step');
      assert.deepEqual(await snapshot(dc), forward[i], `step back to state ${i}`);
    }
    for (let i = 1; i <= 5; i++) {
      await act(dc, 'next');
      assert.deepEqual(await snapshot(dc), forward[i], `forward again to state ${i}`);
    }
    // going back and forth printed nothing twice
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(out.text('stdout'), printedBefore);
  });

  test('with a small position limit, older positions are thinned: step back still retraces every line, the view says how far back', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const reaches: { checkpoints: number }[] = [];
    dc.on('cryo/checkpointsChanged', (e: DebugProtocol.Event) => e.body?.timeline && reaches.push(e.body.timeline));
    await launchTo(dc, { program: prog, args: ['8'], timeTravel: { maxPositions: 6 } }, counterSrc, [{ line: 20, condition: 'i == 1' }]);
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const forward = [await snapshot(dc)];
    for (let i = 0; i < 12; i++) {
      await act(dc, 'next');
      forward.push(await snapshot(dc));
    }
    const r = (await dc.customRequest('cryo/checkpoints')).body.timeline;
    // every stop stays reachable; only the checkpoints (the memory) are thinned
    assert.ok(r.available && r.positions >= 13 && r.checkpoints <= 6 && r.checkpoints >= 3, `thinned to the limit: ${JSON.stringify(r)}`);
    await new Promise((r) => setTimeout(r, 400)); // the view hears once stepping pauses
    assert.ok(reaches.length >= 1 && reaches[reaches.length - 1].checkpoints === r.checkpoints, `the view was told: ${JSON.stringify(reaches)}`);
    for (let i = 11; i >= 0; i--) {
      const ev = await act(dc, 'back');
      assert.equal(ev.body.reason, 'step');
      assert.deepEqual(await snapshot(dc), forward[i], `step back to state ${i}`);
    }
  });

  test('a loop with no syscalls, thinned: each step back finds its own iteration, not an earlier one that looks the same', async () => {
    // the same pc, frame and log position come back every iteration: only how the stop
    // was reached (a `next` from the stop before it) tells the iterations apart
    const prog = buildFixture('loops.c', { flags: ['-O0', '-g'] });
    const src = join(fixturesDir, 'loops.c');
    const dc = await client();
    await launchTo(dc, { program: prog, args: ['compute', '50'], timeTravel: { maxPositions: 4 } }, src, [{ line: 17, condition: 'i == 3' }]);
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    const forward = [await snapshot(dc, 'sum')];
    for (let i = 0; i < 14; i++) {
      await act(dc, 'next');
      forward.push(await snapshot(dc, 'sum'));
    }
    assert.ok(forward[14].vars.some((v) => v.startsWith('i=') && v !== forward[0].vars.find((x) => x.startsWith('i='))), `the steps crossed iterations: ${JSON.stringify(forward.map((f) => f.vars))}`);
    const r = (await dc.customRequest('cryo/checkpoints')).body.timeline;
    assert.ok(r.checkpoints <= 4 && r.positions >= 15, `thinned: ${JSON.stringify(r)}`);
    for (let i = 13; i >= 0; i--) {
      const ev = await act(dc, 'back');
      assert.equal(ev.body.reason, 'step');
      assert.deepEqual(await snapshot(dc, 'sum'), forward[i], `step back to state ${i}`);
    }
    for (let i = 1; i <= 14; i++) {
      await act(dc, 'next');
      assert.deepEqual(await snapshot(dc, 'sum'), forward[i], `forward again to state ${i}`);
    }
  });

  test('a loop with no syscalls: step back from a breakpoint many iterations after the previous stop lands in the right iteration', async () => {
    // the stop before is iteration 3; the lines stepped back to are in iteration 9 and 10,
    // with the pc, frame and log position of every iteration before them
    const prog = buildFixture('loops.c', { flags: ['-O0', '-g'] });
    const src = join(fixturesDir, 'loops.c');
    // the reference: the same lines stepped forward from iteration 8 in a session of their own
    // (argv's address differs between the two runs: address space layout randomisation;
    // t0 is the clock when the loop began)
    const state = async (c: DebugClient) => {
      const s = await snapshot(c, 'sum');
      return { ...s, vars: s.vars.filter((v) => !/^(argv|t0|t1)=/.test(v)) };
    };
    const ref = await client();
    await launchTo(ref, { program: prog, args: ['compute', '50'] }, src, [{ line: 17, condition: 'i == 8' }]);
    await ref.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    const forward = [await state(ref)];
    while (!(forward[forward.length - 1].line === 17 && forward[forward.length - 1].vars.includes('i=10'))) {
      assert.ok(forward.length < 20, `reached iteration 10: ${JSON.stringify(forward)}`);
      await act(ref, 'next');
      forward.push(await state(ref));
    }
    await ref.disconnectRequest({ terminateDebuggee: true });
    const dc = await client();
    await launchTo(dc, { program: prog, args: ['compute', '50'] }, src, [{ line: 17, condition: 'i == 3' }]);
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 17, condition: 'i == 10' }] });
    await act(dc, 'continue');
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    assert.deepEqual(await state(dc), forward[forward.length - 1]);
    for (let i = forward.length - 2; i >= 0; i--) {
      await act(dc, 'back');
      assert.deepEqual(await state(dc), forward[i], `step back to state ${i} of ${JSON.stringify(forward.map((f) => [f.line, f.vars.find((v) => v.startsWith('i='))]))}`);
    }
  });

  test('going forward again past a signal the program got from outside stops where the replay leaves the recorded run, and says why', async () => {
    // raise() sends SIGUSR1 to the pid getpid() gave, which a replay answers with the
    // recorded pid: the signal cannot come again, so the replay must stop and say so
    const prog = buildFixture('signals.c');
    const src = join(fixturesDir, 'signals.c');
    const dc = await client();
    const first = await launchTo(dc, { program: prog, args: ['3'] }, src, [{ line: 16 }]);
    const tid = first.body.threadId!;
    const snap = (await dc.customRequest('cryo/snapshot', { name: 'before the signals' })).body;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 17 }] });
    const at17 = dc.waitForEvent('stopped');
    await dc.continueRequest({ threadId: tid });
    await at17;
    const received = async () => (await dc.evaluateRequest({ expression: 'received', context: 'watch', frameId: (await dc.stackTraceRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id })).body.stackFrames[0].id })).body.result;
    assert.equal(await received(), '3');
    const restored = dc.waitForEvent('stopped');
    await dc.customRequest('cryo/restore', { id: snap.id });
    await restored;
    const diverged = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
    const ev = await diverged;
    assert.equal(ev.body.reason, 'diverged');
    assert.match(ev.body.description ?? '', /received SIGUSR1 here.*runs live/);
  });

  test('a signal that comes at the end of a syscall the buffer made is logged after that syscall: a replay from before it gives it there again, to the same state', async () => {
    // the ring holds the reads and getpid when SIGPIPE stops the write in the buffer's
    // wrapper: the entry in flight is the write's, wherever the ring was drained to (it
    // took a drained read's number, and the replay left the log at the write). The
    // signal came at the write's exit: the replay sends it there, and the handler runs.
    const prog = buildFixture('sysbuf_sigpipe.c');
    const src = join(fixturesDir, 'sysbuf_sigpipe.c');
    const lines = readFileSync(src, 'utf8').split('\n');
    const at = (tag: string) => lines.findIndex((l) => l.includes(`BREAK:${tag}`)) + 1;
    const dc = await client();
    const first = await launchTo(dc, { program: prog }, src, [{ line: at('before') }]);
    const snap = (await dc.customRequest('cryo/snapshot', { name: 'before the syscalls' })).body;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: at('after') }] });
    const state = async () => {
      const t = (await dc.threadsRequest()).body.threads[0].id;
      const f = (await dc.stackTraceRequest({ threadId: t })).body.stackFrames[0];
      const ev = async (e: string) => (await dc.evaluateRequest({ expression: e, context: 'watch', frameId: f.id })).body.result;
      return { line: f.line, wrote: await ev('wrote'), pipes: await ev('pipes'), pid: await ev('pid') };
    };
    const after = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: first.body.threadId! });
    assert.equal((await after).body.reason, 'breakpoint');
    const live = await state();
    assert.deepEqual([live.line, live.wrote, live.pipes], [at('after'), '-1', '1'], 'the write failed (EPIPE) and the handler ran once');
    const restored = dc.waitForEvent('stopped');
    await dc.customRequest('cryo/restore', { id: snap.id });
    await restored;
    const again = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
    const ev = await again;
    assert.equal(ev.body.reason, 'breakpoint', `the replay: ${ev.body.reason} ${ev.body.description ?? ''}`);
    assert.deepEqual(await state(), live, 'the write replayed with its result, the handler run once, getppid replayed');
  });

  test('step back from a crash (SIGSEGV three frames deep): the line before the fault, then forward again to the same fault', async () => {
    const prog = buildFixture('crash.c');
    const dc = await client();
    const crashed = await launchTo(dc, { program: prog }, join(fixturesDir, 'crash.c'), []);
    assert.equal(crashed.body.reason, 'exception');
    const t0 = crashed.body.threadId!;
    const at = async (t: number) => {
      const f = (await dc.stackTraceRequest({ threadId: t })).body.stackFrames;
      return { names: f.slice(0, 4).map((x) => x.name), line: f[0].line, pc: f[0].instructionPointerReference };
    };
    const crash = await at(t0);
    assert.deepEqual(crash.names, ['depth3', 'depth2', 'depth1', 'main']);
    const back = await act(dc, 'back');
    assert.equal(back.body.reason, 'step');
    const before = await at(back.body.threadId!);
    assert.equal(before.names[0], 'depth3', `still in the faulting frame: ${JSON.stringify(before)}`);
    assert.notEqual(before.pc, crash.pc, 'before the faulting instruction');
    // forward: the same fault at the same place
    const again = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: back.body.threadId! });
    const fault = await again;
    assert.equal(fault.body.reason, 'exception');
    assert.deepEqual(await at(fault.body.threadId!), crash);
    const info = await dc.exceptionInfoRequest({ threadId: fault.body.threadId! });
    assert.equal(info.body.exceptionId, 'SIGSEGV');
  });

  test('a long run keeps periodic positions at recorded syscalls: reverse continue searches from the latest one back and finds the hit the program printed', async () => {
    const prog = buildFixture('loops.c');
    const src = join(fixturesDir, 'loops.c');
    const N = 20000;
    const K = N - 3000;
    const dc = await client();
    const out = collectOutput(dc);
    const stepLine = readFileSync(src, 'utf8').split('\n').findIndex((l) => l.includes('void step(long i)')) + 1;
    const stop = await launchTo(dc, { program: prog, args: ['syscalls', String(N)], timeTravel: { periodMs: 20 } }, src, [{ line: stepLine, condition: `i == ${N - 1}` }]);
    assert.equal(stop.body.reason, 'breakpoint');
    const body = (await dc.customRequest('cryo/checkpoints')).body;
    const r = body.timeline;
    assert.ok(r.positions >= 4, `periodic positions were kept during the run: ${JSON.stringify(r)}`);
    // the writes went through the in-process buffer; the periodic stops trapped
    assert.ok(body.record.buffered > N / 2, `buffered: ${JSON.stringify(body.record)}`);
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: stepLine, condition: `i == ${K}` }] });
    const back = await act(dc, 'reverse');
    assert.equal(back.body.reason, 'breakpoint');
    const t = back.body.threadId!;
    const f = (await dc.stackTraceRequest({ threadId: t })).body.stackFrames[0];
    const ev = async (e: string) => (await dc.evaluateRequest({ expression: e, frameId: f.id, context: 'watch' })).body.result;
    assert.equal(await ev('i'), String(K));
    // the program printed "i sum" after each step: at the entry of step(K), sum is line K-1's
    const printed = new RegExp(`^${K - 1} (\\d+)$`, 'm').exec(out.text('stdout'))?.[1];
    assert.ok(printed, 'the program printed that line');
    assert.equal(await ev('sum'), printed);
  });

  test('step back from a function`s first line goes to the caller, at the call', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    await launchTo(dc, { program: prog, args: ['4'] }, counterSrc, [{ line: 11, condition: 'i == 2' }]);
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const frames = async (t: number) => (await dc.stackTraceRequest({ threadId: t })).body.stackFrames;
    const lines: string[] = [];
    let t = 0;
    for (let k = 0; k < 3; k++) {
      const ev = await act(dc, 'back');
      t = ev.body.threadId!;
      const f = await frames(t);
      lines.push(`${f[0].name}:${f[0].line}`);
    }
    // tick's line 10, then its first line (9, the entry), then main's line 20 where tick(i) is called
    assert.deepEqual(lines, ['tick:10', 'tick:9', 'main:20']);
    const top = (await frames(t))[0];
    assert.equal((await dc.evaluateRequest({ expression: 'i', frameId: top.id, context: 'watch' })).body.result, '2');
    assert.equal((await dc.evaluateRequest({ expression: 'total', frameId: top.id, context: 'watch' })).body.result, '1');
  });

  test('reverse step out from inside a function lands on its call instruction in the caller, as gdb`s reverse-finish', async () => {
    const prog = buildFixture('counter.c');
    // gdb records from the caller's line (its record cannot step through this libc's AVX-512 code)
    const g = gdbBatch(prog, ['set startup-with-shell off', 'break counter.c:20 if i == 2', 'run', 'record full', 'step', 'next', 'reverse-finish', 'p $pc', 'p i', 'p total'], ['4']);
    const gPc = /\$1 = .*<(main\+\d+)>/.exec(g)?.[1];
    const gI = /\$2 = (.*)/.exec(g)?.[1];
    const gTotal = /\$3 = (.*)/.exec(g)?.[1];
    assert.ok(gPc && gI && gTotal, g);
    const dc = await client();
    await launchTo(dc, { program: prog, args: ['4'] }, counterSrc, [{ line: 11, condition: 'i == 2' }]);
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.customRequest('cryo/reverseStepOut', { threadId: await tid(dc) });
    const back = await stopped;
    assert.equal(back.body.reason, 'step');
    const t = back.body.threadId!; // a restored process: a new thread id
    const top = (await dc.stackTraceRequest({ threadId: t })).body.stackFrames[0];
    assert.equal(top.name, 'main');
    assert.equal(top.line, 20);
    const ev = async (e: string) => (await dc.evaluateRequest({ expression: e, frameId: top.id, context: 'watch' })).body.result;
    assert.match(await ev('$pc'), new RegExp(`<${gPc!.replace('+', '\\+')}>`), 'the call instruction gdb stops at');
    assert.equal(await ev('i'), gI);
    assert.equal(await ev('total'), gTotal);
    // forward again: into tick, with the same i
    const again = dc.waitForEvent('stopped');
    await dc.stepInRequest({ threadId: t });
    await again;
    const inTick = (await dc.stackTraceRequest({ threadId: t })).body.stackFrames[0];
    assert.equal(inTick.name, 'tick');
    assert.equal((await dc.evaluateRequest({ expression: 'i', frameId: inTick.id, context: 'watch' })).body.result, gI);
    // out of main: its call was made before the first position kept (the program's start),
    // which is as far back as the timeline reaches, and says so
    const s2 = dc.waitForEvent('stopped');
    await dc.stepOutRequest({ threadId: t });
    await s2;
    const s3 = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.customRequest('cryo/reverseStepOut', { threadId: t });
    const earliest = await s3;
    assert.equal(earliest.body.reason, 'entry');
    assert.match(earliest.body.description ?? '', /earliest position/);
  });

  test('reverse continue from the 1000th iteration finds the 999th hit, the loop variable one less', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    await launchTo(dc, { program: prog, args: ['1200'] }, counterSrc, [{ line: 10, condition: 'i == 999' }]);
    assert.deepEqual((await snapshot(dc)).vars, ['i=999']);
    // the breakpoint now stops at every iteration: the 999th was passed without stopping
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [{ line: 10 }] });
    const ev = await act(dc, 'reverse');
    assert.equal(ev.body.reason, 'breakpoint');
    const s = await snapshot(dc);
    assert.deepEqual([s.fn, s.line, s.vars], ['tick', 10, ['i=998']]);
    assert.equal(s.total, String((998 * 997) / 2));
    // and again
    await act(dc, 'reverse');
    assert.deepEqual((await snapshot(dc)).vars, ['i=997']);
    // forward from the past: the breakpoint hits the next iteration
    await act(dc, 'continue');
    assert.deepEqual((await snapshot(dc)).vars, ['i=998']);
  });

  test('a program reading stdin, random bytes, the time and its pid sees the same values after going back and forward; its output appears once', async () => {
    const prog = buildFixture('inputs.c');
    const dc = await client();
    const term = fakeTerminal(dc, 'one\ntwo\nthree\n');
    await launchTo(dc, { program: prog, console: 'integratedTerminal' }, join(fixturesDir, 'inputs.c'), [], () =>
      dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'mark' }] }),
    );
    const globals = async () => {
      const st = await dc.stackTraceRequest({ threadId: await tid(dc) });
      const f = st.body.stackFrames[0].id;
      const ev = async (e: string) => (await dc.evaluateRequest({ expression: e, frameId: f, context: 'watch' })).body.result;
      return { n: await ev('n'), line: await ev('last_line'), rand: await ev('last_rand'), time: await ev('last_time'), vtime: await ev('last_vtime'), pid: await ev('last_pid') };
    };
    const seen = [await globals()];
    for (let i = 2; i <= 3; i++) {
      await act(dc, 'continue');
      seen.push(await globals());
    }
    await new Promise((r) => setTimeout(r, 200));
    const printed = term.output();
    assert.equal(printed.split('\n').filter(Boolean).length, 3);
    // stdin's reads, getrandom, the vDSO clock and the writes went through the buffer
    const rec = (await dc.customRequest('cryo/checkpoints')).body.record;
    assert.ok(rec.buffered >= 9, `buffered: ${JSON.stringify(rec)}`);
    // back to mark(1): the breakpoint hits before, in reverse
    await act(dc, 'reverse');
    assert.deepEqual(await globals(), seen[1]);
    await act(dc, 'reverse');
    assert.deepEqual(await globals(), seen[0]);
    // forward again: replayed inputs, the same values, nothing printed again
    for (let i = 2; i <= 3; i++) {
      await act(dc, 'continue');
      assert.deepEqual(await globals(), seen[i - 1], `mark(${i}) sees the recorded inputs`);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(term.output(), printed);
    // then live to the end: the rest printed once
    await dc.setFunctionBreakpointsRequest({ breakpoints: [] });
    const exited = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: await tid(dc) });
    term.stdin()!.end();
    assert.equal((await exited).body.exitCode, 0);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(term.output(), printed + 'done 3\n');
  });
});
