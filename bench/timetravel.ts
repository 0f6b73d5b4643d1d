// Time travel: the cost of recording a run against the bare program, and the latency
// of step back and reverse continue against gdb's `record full` on the same loop.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { Session } from '../adapter/engine';
import { buildFixture, fixturesDir, repoRoot } from '../test/helpers/fixtures';
import { median, ms, printTable, ratio } from './table';

/** Median of three: the whole run (ms), and the loop alone as the program timed it. */
function bareMs(prog: string, args: string[]): { run: number; loop: number } {
  const times: number[] = [];
  const loops: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const r = spawnSync(prog, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOOPS_TIME: '1' }, encoding: 'utf8' });
    times.push(performance.now() - t);
    loops.push(Number(/loop ([\d.]+)/.exec(r.stderr ?? '')?.[1] ?? NaN));
  }
  return { run: median(times), loop: median(loops) };
}

async function underEngine(prog: string, args: string[], record: boolean): Promise<{ run: number; loop: number }> {
  const times: number[] = [];
  const loops: number[] = [];
  const err = join(mkdtempSync(join(tmpdir(), 'cryo-bench-tt-')), 'stderr');
  for (let i = 0; i < 3; i++) {
    const s = new Session();
    const t = performance.now();
    s.launch({ program: prog, args, stdout: { mode: 'null' }, stderr: { mode: 'file', path: err }, env: { ...process.env, LOOPS_TIME: '1' } as Record<string, string> });
    if (record) s.recordStart();
    s.continue();
    await s.waitStop();
    times.push(performance.now() - t);
    await s.close();
    loops.push(Number(/loop ([\d.]+)/.exec(readFileSync(err, 'utf8'))?.[1] ?? NaN));
  }
  rmSync(dirname(err), { recursive: true, force: true });
  return { run: median(times), loop: median(loops) };
}

const loopsSrc = join(fixturesDir, 'loops.c');

/** The adapter launched on loops.c, running to its breakpoint at step(i) with i == stopAt;
 * resolves when the program stands there (the time from configurationDone in `ms`). */
async function launchLoops(prog: string, args: string[], stopAt: number, extra: Record<string, unknown> = {}): Promise<{ dc: DebugClient; tid: number; ms: number }> {
  const dc = new DebugClient('node', join(repoRoot, 'dist', 'adapter.js'), 'cryo');
  dc.defaultTimeout = 300000;
  await dc.start();
  await dc.initializeRequest();
  const init = dc.waitForEvent('initialized');
  const launched = dc.launch({ program: prog, args, ...extra });
  await init;
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  await dc.setBreakpointsRequest({ source: { path: loopsSrc }, breakpoints: [{ line: 10, condition: `i == ${stopAt}` }] });
  const t0 = performance.now();
  await dc.configurationDoneRequest();
  await launched;
  const tid = (await stopped).body.threadId!;
  return { dc, tid, ms: performance.now() - t0 };
}

/** How long a reverse continue takes, to its stopped event. */
async function reverseContinueMs(dc: DebugClient): Promise<number> {
  const t = performance.now();
  const stopped = dc.waitForEvent('stopped');
  await dc.reverseContinueRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
  await stopped;
  return performance.now() - t;
}

async function dapTravel(prog: string, n: number) {
  const src = loopsSrc;
  const { dc, tid } = await launchLoops(prog, ['compute', String(n + 10)], n - 1);
  let stopped: Promise<DebugProtocol.StoppedEvent>;
  // next a few lines, then time step back
  for (let i = 0; i < 3; i++) {
    stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.nextRequest({ threadId: tid });
    await stopped;
  }
  const t0 = performance.now();
  stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  await dc.stepBackRequest({ threadId: (await dc.threadsRequest()).body.threads[0].id });
  await stopped;
  const stepBack = performance.now() - t0;
  // the breakpoint at every iteration now: reverse continue finds the previous hit by re-execution
  await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 10 }] });
  const reverse = await reverseContinueMs(dc);
  await dc.disconnectRequest({ terminateDebuggee: true });
  await dc.stop();
  return { stepBack, reverse };
}

/** A long recorded run to a breakpoint at its last iteration, then reverse continue to a
 * hit 15% of the run back: the time it takes, with positions kept every `periodMs`. */
async function longRun(prog: string, n: number, periodMs: number): Promise<{ run: number; reverse: number; positions: number }> {
  const src = loopsSrc;
  const { dc, ms: run } = await launchLoops(prog, ['syscalls', String(n)], n - 1, { timeTravel: { periodMs } });
  const positions = (await dc.customRequest('cryo/checkpoints')).body.timeline.positions as number;
  await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 10, condition: `i == ${Math.floor(n * 0.85)}` }] });
  const reverse = await reverseContinueMs(dc);
  await dc.disconnectRequest({ terminateDebuggee: true });
  await dc.stop();
  return { run, reverse, positions };
}

function gdbRecord(prog: string, n: number) {
  const py = (c: string) => `python ${c}`;
  const out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'set startup-with-shell off', '-ex', 'break main', '-ex', 'run', '-ex', 'record full', '-ex', 'set record full insn-number-max unlimited',
    '-ex', `break loops.c:10 if i == ${n - 1}`, '-ex', py('import time; t=time.perf_counter()'), '-ex', 'continue', '-ex', py('print("FWD %.3f" % ((time.perf_counter()-t)*1000))'),
    '-ex', 'delete', '-ex', 'break loops.c:10', '-ex', py('t=time.perf_counter()'), '-ex', 'reverse-continue', '-ex', py('print("RC %.3f" % ((time.perf_counter()-t)*1000))'),
    '-ex', py('t=time.perf_counter()'), '-ex', 'reverse-next', '-ex', py('print("RN %.3f" % ((time.perf_counter()-t)*1000))'), '-ex', 'kill', '--args', prog, 'compute', String(n + 10)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
  const f = (k: string) => Number(new RegExp(`^${k} ([\\d.]+)`, 'm').exec(out)?.[1] ?? NaN);
  return { forward: f('FWD'), reverse: f('RC'), stepBack: f('RN') };
}

export async function benchTimeTravel(): Promise<void> {
  const prog = buildFixture('loops.c', { flags: ['-O0', '-g'] });
  const rows = [];
  for (const [kind, n] of [['compute', 100_000], ['compute', 2_000_000], ['syscalls', 20_000]] as const) {
    const args = [kind, String(n)];
    const bare = bareMs(prog, args);
    const traced = await underEngine(prog, args, false);
    const recorded = await underEngine(prog, args, true);
    rows.push({
      workload: `${kind} (${n} iterations)`,
      'bare run (ms)': ms(bare.run),
      'traced run (ms)': ms(traced.run),
      'recorded run (ms)': ms(recorded.run),
      'run cost': `${(recorded.run / bare.run).toFixed(2)}x of bare`,
      'bare loop (ms)': ms(bare.loop),
      'recorded loop (ms)': ms(recorded.loop),
      'loop cost': `${(recorded.loop / bare.loop).toFixed(2)}x of bare`,
    });
  }
  printTable('Recording: the forward run with syscall recording on, against the bare program (run: the process from launch to exit; loop: its loop as the program timed it)', rows);
  const N = 2000;
  const ours = await dapTravel(prog, N);
  const gdb = gdbRecord(prog, N);
  const forward = (await underEngine(prog, ['compute', String(N)], true)).run;
  printTable(`Going back (loops.c compute, breakpoint at iteration ${N}; ours through DAP, gdb with record full)`, [
    { action: `run forward to iteration ${N}, recording`, 'cryo (ms)': ms(forward), 'gdb (ms)': ms(gdb.forward), ratio: ratio(forward, gdb.forward) },
    { action: 'step back one line', 'cryo (ms)': ms(ours.stepBack), 'gdb (ms)': ms(gdb.stepBack), ratio: ratio(ours.stepBack, gdb.stepBack) },
    { action: 'reverse continue to the previous hit', 'cryo (ms)': ms(ours.reverse), 'gdb (ms)': ms(gdb.reverse), ratio: ratio(ours.reverse, gdb.reverse) },
  ]);
  console.log('\n(gdb records every instruction: going back is a walk in memory, the forward run pays for it; cryo records syscall results and goes back by restoring a checkpoint and re-executing)');
  const L = 40_000;
  const rowsL = [];
  for (const periodMs of [0, 250, 50]) {
    const r = await longRun(prog, L, periodMs);
    rowsL.push({ 'periodic positions': periodMs ? `every ${periodMs} ms` : 'none', 'run to the end (ms)': ms(r.run), 'positions kept': String(r.positions), 'reverse continue 15% back (ms)': ms(r.reverse) });
  }
  printTable(`A long run (loops.c syscalls, ${L} iterations, recorded), then reverse continue to a hit 15% of it back`, rowsL);
}
