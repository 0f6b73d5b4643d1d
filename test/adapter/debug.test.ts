// The adapter over DAP on real programs, checked against gdb at the same stops and
// against the programs' own output.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { clientPool, collectOutput, launchTo } from './dap';
import { join } from 'node:path';

const client = clientPool();

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

  test('next through a loop on one line, a line of many rows and a loop a timer signal interrupts lands where gdb`s next does, with gdb`s values', async () => {
    const prog = buildFixture('step_lines.c');
    const src = join(fixturesDir, 'step_lines.c');
    // gdb single-steps every instruction: its loops are kept short (its own steps are slow
    // enough for the timer to tick in them); ours run the timer loop long enough for its
    // 2 ms signal to come during the step, which must then go on over the handler
    const g = gdbBatch(prog, [...GDB, 'break step_lines.c:19', 'run', 'next', 'p a', 'next', 'p sink', ...Array(6).fill('next'), 'next', 'p ticks > 0', 'next'], ['300', '300']);
    const gdbLines = [...g.matchAll(/^(\d+)\t/gm)].map((m) => Number(m[1]));
    const gdbValues = [...g.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);
    assert.deepEqual(gdbLines, [19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    const args = ['300', '5000000'];
    const bare = spawnSync(prog, args, { encoding: 'utf8' });
    assert.match(bare.stdout, /ticked=1/);

    const dc = await client();
    const out = collectOutput(dc);
    const stop = await launchTo(dc, { program: prog, args }, src, [{ line: 19 }]);
    const tid = stop.body.threadId!;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    const lines = [(await topFrame(dc, tid))[0].line];
    const values: string[] = [];
    const ev = async (expression: string) => {
      const f = (await topFrame(dc, tid))[0];
      return (await dc.evaluateRequest({ expression, frameId: f.id, context: 'watch' })).body.result;
    };
    for (let i = 0; i < gdbLines.length - 1; i++) {
      const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
      await dc.nextRequest({ threadId: tid });
      assert.equal((await stopped).body.reason, 'step');
      lines.push((await topFrame(dc, tid))[0].line);
      if (i === 0) values.push(await ev('a'));
      if (i === 1) values.push(await ev('sink'));
      if (i === 8) values.push(await ev('ticks > 0'));
    }
    assert.deepEqual(lines, gdbLines);
    assert.deepEqual(values, gdbValues);
    const ended = dc.waitForEvent('terminated');
    await dc.continueRequest({ threadId: tid });
    await ended;
    assert.equal(out.text('stdout'), bare.stdout);
  });

  test('next over a recursive call, and over calls with a false condition and a logpoint inside, ends where gdb`s next ends', async () => {
    const prog = buildFixture('sym_recurse.c');
    const src = join(fixturesDir, 'sym_recurse.c');
    const lineOf = (o: string) => [...o.matchAll(/^(\d+)\t/gm)].map((m) => Number(m[1])).at(-1);
    // the return address of a recursive call is reached first by the deeper frames
    const a = gdbBatch(prog, [...GDB, 'break sym_recurse.c:14', 'run', 'delete', 'next', 'print n', 'print track->depth', 'bt']);
    const b = gdbBatch(prog, [...GDB, 'break sym_recurse.c:21', 'run', 'break sym_recurse.c:11 if n == 99', 'dprintf sym_recurse.c:8,"depth %d\\n",track->depth', 'next', 'print r']);
    const values = (o: string) => [...o.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);

    let dc = await client();
    let stop = await launchTo(dc, { program: prog }, src, [{ line: 14 }]);
    let tid = stop.body.threadId!;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    let stopped = dc.waitForEvent('stopped');
    await dc.nextRequest({ threadId: tid });
    await stopped;
    let frames = await topFrame(dc, tid);
    const ev = async (expression: string) => (await dc.evaluateRequest({ expression, frameId: frames[0].id, context: 'watch' })).body.result;
    assert.equal(frames[0].line, lineOf(a));
    assert.deepEqual([await ev('n'), await ev('track->depth')], values(a));
    // the same frame as before the next: gdb's backtrace (which ends at main)
    const gdbBt = [...a.matchAll(/^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+) \(/gm)].map((m) => m[1]);
    const ours = frames.map((f) => f.name);
    assert.deepEqual(ours.slice(0, ours.indexOf('main') + 1), gdbBt);
    await dc.disconnectRequest({ terminateDebuggee: true });

    dc = await client();
    const out = collectOutput(dc);
    stop = await launchTo(dc, { program: prog }, src, [{ line: 21 }]);
    tid = stop.body.threadId!;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 11, condition: 'n == 99' }, { line: 8, logMessage: 'depth {track->depth}' }] });
    stopped = dc.waitForEvent('stopped');
    await dc.nextRequest({ threadId: tid });
    await stopped;
    frames = await topFrame(dc, tid);
    assert.equal(frames[0].line, lineOf(b));
    assert.deepEqual([await ev('r')], values(b));
    const logged = out.text('console').split('\n').filter((l) => l.startsWith('depth '));
    const printed = b.split('\n').filter((l) => l.startsWith('depth '));
    assert.equal(printed.length, 5);
    assert.deepEqual(logged, printed);
    await dc.disconnectRequest({ terminateDebuggee: true });
  });
});

describe('memory, disassembly, modules', () => {
  test('disassemble around the pc gives gdb`s instruction boundaries and mnemonics; readMemory gives gdb`s values', async () => {
    const prog = buildFixture('counter.c');
    const g = gdbBatch(prog, [...GDB, 'break counter.c:11', 'run', 'x/12i $pc', 'p/x total', 'p/x counter'], ['5']);
    const gInsns = [...g.matchAll(/^(?:=> )?\s*0x([0-9a-f]+) <[^>]+>:\s+(\S+)/gm)].map((m) => ({ off: m[1], mnem: m[2] }));
    assert.equal(gInsns.length, 12);
    const dc = await client();
    const stop = await launchTo(dc, { program: prog, args: ['5'] }, counterSrc, [{ line: 11 }]);
    const frames = await topFrame(dc, stop.body.threadId!);
    const pc = BigInt(frames[0].instructionPointerReference!);
    const d = await dc.customRequest('disassemble', { memoryReference: frames[0].instructionPointerReference, instructionCount: 12 });
    const ours = (d.body.instructions as DebugProtocol.DisassembledInstruction[]).map((i) => ({ addr: BigInt(i.address), mnem: i.instruction.split(/\s+/)[0], symbol: i.symbol, line: i.line }));
    // gdb runs without ASLR: compare offsets from the first instruction, and mnemonics
    const gBase = BigInt('0x' + gInsns[0].off);
    assert.deepEqual(ours.map((i) => i.addr - pc), gInsns.map((i) => BigInt('0x' + i.off) - gBase));
    // AT&T mnemonics: Capstone adds an operand-size suffix where gdb leaves it implied
    ours.forEach((o, k) => assert.ok(o.mnem === gInsns[k].mnem || o.mnem.slice(0, -1) === gInsns[k].mnem, `${o.mnem} vs gdb ${gInsns[k].mnem}`));
    assert.match(ours[0].symbol ?? '', /^tick\+\d+$/);
    assert.equal(ours[0].line, 11);
    // instructions before the pc too
    const back = await dc.customRequest('disassemble', { memoryReference: frames[0].instructionPointerReference, instructionOffset: -3, instructionCount: 4 });
    assert.equal(BigInt(back.body.instructions[3].address), pc);
    // what VS Code's Disassembly view asks: 200 before, 200 after; slot 200 is the pc
    const view = await dc.customRequest('disassemble', { memoryReference: frames[0].instructionPointerReference, instructionOffset: -200, instructionCount: 400 });
    const slots = view.body.instructions as DebugProtocol.DisassembledInstruction[];
    assert.equal(slots.length, 400);
    assert.equal(BigInt(slots[200].address), pc);
    const firstReal = slots.findIndex((i) => i.presentationHint !== 'invalid');
    assert.ok(firstReal <= 170, `at least 30 instructions before the pc (first real slot ${firstReal})`);
    // from there on, each instruction starts where the previous one ends
    for (let k = firstReal; k < 260; k++) {
      const len = BigInt(slots[k].instructionBytes!.split(' ').length);
      assert.equal(BigInt(slots[k + 1].address), BigInt(slots[k].address) + len, `slot ${k + 1} follows slot ${k}`);
    }
    // asked with no reference (before any stop): no error, only empty slots
    const empty = await dc.customRequest('disassemble', { memoryReference: '', instructionCount: 5 });
    assert.equal(empty.body.instructions.length, 5);
    for (const name of ['total', 'counter']) {
      const ev = await dc.evaluateRequest({ expression: `&${name}`, frameId: frames[0].id, context: 'watch' });
      const addrText = /0x[0-9a-f]+/.exec(ev.body.result)![0];
      const mem = await dc.customRequest('readMemory', { memoryReference: addrText, count: 8 });
      const value = Buffer.from(mem.body.data, 'base64').readBigUInt64LE(0);
      const gValue = BigInt(new RegExp(`= (0x[0-9a-f]+)`, 'g').exec(g.slice(g.indexOf(name === 'total' ? '$1 = ' : '$2 = ')))![1]);
      assert.equal(value, gValue, name);
    }
    const mods = await dc.customRequest('modules', {});
    const names = (mods.body.modules as DebugProtocol.Module[]).map((m) => m.name);
    assert.ok(names.some((n) => n.startsWith('counter')), `modules: ${names}`);
    assert.ok(names.some((n) => n.startsWith('libc.so')), `modules: ${names}`);
    const srcs = await dc.customRequest('loadedSources', {});
    assert.ok((srcs.body.sources as DebugProtocol.Source[]).some((s) => s.path === counterSrc));
  });
});
