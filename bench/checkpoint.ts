// Checkpoint and restore latency: this engine against gdb's `checkpoint`/`restart`,
// on the churn fixture with 16 MiB, 256 MiB and 1 GiB touched, writing 1% of its
// pages between stops. Same binary, same machine, one run.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { Session } from '../adapter/engine';
import { symbolAddress } from '../test/helpers/elf';
import { buildFixture } from '../test/helpers/fixtures';
import { median, ms, printTable, ratio, type Row } from './table';

const ROUNDS = 7;

export function killProcessesOf(binary: string): void {
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (readlinkSync(`/proc/${p}/exe`) === binary) process.kill(Number(p), 'SIGKILL');
    } catch {
      /* gone, or not ours to read */
    }
  }
}

let writeRate = 0.01; // share of the touched pages written between two stops

function churnArgs(touchedMiB: number): string[] {
  const pages = Math.max(1, Math.round(touchedMiB * 256 * writeRate));
  return [String(touchedMiB * 2), String(ROUNDS + 2), String(pages)];
}

/** One checkpoint: ms until the call returns, and until it is complete (the engine
 * finishes a checkpoint on its tracer thread after returning, copying a delta's pages or
 * arming the tracker; listing waits for that). */
function timedCheckpoint(s: Session): [number, number] {
  const t0 = process.hrtime.bigint();
  s.checkpoint();
  const call = Number(process.hrtime.bigint() - t0) / 1e6;
  s.checkpoints();
  return [call, Number(process.hrtime.bigint() - t0) / 1e6];
}

async function ours(prog: string, touchedMiB: number) {
  const s = new Session();
  try {
    const { pid } = s.launch({ program: prog, args: churnArgs(touchedMiB), stdout: { mode: 'null' } });
    s.insertBreakpoint(symbolAddress(pid, prog, 'stop_here'));
    const times: number[] = [];
    const settled: number[] = [];
    let kinds: string[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      s.continue();
      const e = await s.waitStop();
      if (e.kind !== 'stopped') throw new Error(`churn ended early: ${e.kind}`);
      const [call, complete] = timedCheckpoint(s);
      times.push(call);
      settled.push(complete);
    }
    const list = s.checkpoints();
    kinds = list.map((c) => c.kind);
    const restoreTimes: number[] = [];
    for (const c of [list[0], list[list.length - 1], list[Math.floor(list.length / 2)]]) {
      const t0 = process.hrtime.bigint();
      s.restore(c.id);
      restoreTimes.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return {
      first: times[0],
      successive: median(times.slice(1)),
      firstSettled: settled[0],
      successiveSettled: median(settled.slice(1)),
      restoreFirst: restoreTimes[0],
      restoreLatest: restoreTimes[1],
      kinds,
      mode: s.checkpointMode(),
      deltaBytes: list.slice(1).reduce((a, c) => a + c.bytes, 0) / Math.max(1, list.length - 1),
    };
  } finally {
    await s.close();
  }
}

/** gdb timed by its own Python, around each command, at the same stops. */
function gdbRun(prog: string, touchedMiB: number, withRestart: boolean): { out: string; failed?: string } {
  const py = (code: string) => `python ${code}`;
  const cmds = ['maint set internal-error corefile no', 'maint set internal-error quit yes', 'set startup-with-shell off', 'set pagination off', 'break stop_here', py('import time')];
  for (let i = 0; i < ROUNDS; i++) {
    cmds.push(i === 0 ? 'run' : 'continue', py('t=time.perf_counter()'), 'checkpoint', py(`print("CP %.4f" % ((time.perf_counter()-t)*1000))`));
  }
  if (withRestart) cmds.push(py('t=time.perf_counter()'), `restart ${ROUNDS}`, py(`print("RS %.4f" % ((time.perf_counter()-t)*1000))`));
  // gdb 13 hangs killing an inferior that has checkpoints, at `kill` and at the end of
  // -batch alike: flush what it printed and leave at once (its inferiors are killed below)
  cmds.push(py('import sys, os; sys.stdout.flush(); os._exit(0)'));
  try {
    const out = execFileSync('gdb', ['-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), '--args', prog, ...churnArgs(touchedMiB)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      killSignal: 'SIGKILL',
    });
    return { out };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; signal?: string };
    const text = (err.stdout ?? '') + (err.stderr ?? '');
    const why = /internal-error: [^\n]*/.exec(text)?.[0] ?? (err.signal === 'SIGKILL' ? 'gdb hung and was killed after 120 s' : String(e).split('\n')[0]);
    return { out: err.stdout ?? '', failed: why };
  } finally {
    killProcessesOf(prog); // gdb's inferior and its checkpoint forks, if gdb left them
  }
}

function gdb(prog: string, touchedMiB: number) {
  const run = gdbRun(prog, touchedMiB, false);
  const cps = [...run.out.matchAll(/^CP ([\d.]+)/gm)].map((m) => Number(m[1]));
  if (cps.length !== ROUNDS) throw new Error(`gdb output not understood (${run.failed ?? ''}):\n${run.out.slice(-2000)}`);
  const rs = gdbRun(prog, touchedMiB, true);
  const restore = /^RS ([\d.]+)/m.exec(rs.out);
  return { first: cps[0], successive: median(cps.slice(1)), restoreLatest: restore ? Number(restore[1]) : NaN, restartFailure: restore ? undefined : rs.failed ?? 'no figure' };
}

/** A bare fork() of the same process at its first stop, timed by the program itself:
 * the first fork of freshly touched memory is the one a first checkpoint compares with,
 * since later forks find the page tables already shared once. */
function bareFork(prog: string, touchedMiB: number): number {
  const r = spawnSync(prog, churnArgs(touchedMiB), { env: { ...process.env, CHURN_FORK_PROBE: '1' }, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const t = [...(r.stderr ?? '').matchAll(/^fork ([\d.]+)/gm)].map((m) => Number(m[1]));
  if (t.length !== ROUNDS + 2) throw new Error(`churn's fork probe printed ${t.length} figures: ${r.stderr}`);
  return t[0];
}

/** A first checkpoint of a fresh process at its first stop. */
async function firstCheckpoint(prog: string, touchedMiB: number): Promise<[number, number]> {
  const s = new Session();
  try {
    const { pid } = s.launch({ program: prog, args: churnArgs(touchedMiB), stdout: { mode: 'null' } });
    s.insertBreakpoint(symbolAddress(pid, prog, 'stop_here'));
    s.continue();
    const e = await s.waitStop();
    if (e.kind !== 'stopped') throw new Error(`churn ended early: ${e.kind}`);
    return timedCheckpoint(s);
  } finally {
    await s.close();
  }
}

const FIRST_SAMPLES = 5;

/** First checkpoints and bare forks sampled alternately, so that both meet the same
 * moments of this machine (run one after the other, their medians differed by more
 * than a third from one minute to the next). */
async function firstVsFork(prog: string, touchedMiB: number): Promise<{ first: number; complete: number; fork: number }> {
  const first: number[] = [];
  const complete: number[] = [];
  const fork: number[] = [];
  for (let i = 0; i < FIRST_SAMPLES; i++) {
    const [call, done] = await firstCheckpoint(prog, touchedMiB);
    first.push(call);
    complete.push(done);
    fork.push(bareFork(prog, touchedMiB));
  }
  return { first: median(first), complete: median(complete), fork: median(fork) };
}

export async function benchCheckpoints(sizes = [16, 256, 1024]): Promise<void> {
  const prog = buildFixture('churn.c', { flags: ['-O2', '-g'] });
  const rows: Row[] = [];
  const notes = new Set<string>();
  let mode = '';
  const firsts = new Map<number, { first: number; complete: number; fork: number }>();
  for (const [mib, rate] of sizes.flatMap((m) => [[m, 0.01], [m, 0.001]])) {
    writeRate = rate;
    const o = await ours(prog, mib);
    // a first checkpoint does not depend on the write rate: sample it once per size
    if (!firsts.has(mib)) firsts.set(mib, await firstVsFork(prog, mib));
    const { first, complete, fork } = firsts.get(mib)!;
    o.first = first;
    o.firstSettled = complete;
    const g = gdb(prog, mib);
    mode = o.mode.why;
    if (g.restartFailure) notes.add(`gdb's restart gave no figure: ${g.restartFailure}`);
    rows.push({
      touched: mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`,
      'written/stop': `${rate * 100}%`,
      [`first cp (ms, median of ${FIRST_SAMPLES})`]: ms(o.first),
      'gdb first (ms)': ms(g.first),
      'first ratio': ratio(o.first, g.first),
      [`bare 1st fork (ms, median of ${FIRST_SAMPLES}, interleaved)`]: ms(fork),
      'vs fork': ratio(o.first, fork),
      [`first complete (ms, median of ${FIRST_SAMPLES})`]: ms(o.firstSettled),
      'next cps (ms, median)': ms(o.successive),
      'gdb next (ms)': ms(g.successive),
      'next ratio': ratio(o.successive, g.successive),
      'next complete (ms)': ms(o.successiveSettled),
      'delta size (KiB)': Math.round(o.deltaBytes / 1024),
      'restore 1st (ms)': ms(o.restoreFirst),
      'restore last (ms)': ms(o.restoreLatest),
      'gdb restart (ms)': isFinite(g.restoreLatest) ? ms(g.restoreLatest) : 'failed',
      'restore ratio': ratio(o.restoreLatest, g.restoreLatest),
    });
  }
  printTable(`Checkpoints: cryo vs gdb checkpoint/restart (churn fixture, -O2; a share of the touched pages written between stops; ${ROUNDS} stops)`, rows);
  console.log(`\ncheckpoint mode: ${mode}`);
  console.log("cp (ms): until cryo_checkpoint_create returns and the debugger can go on; complete (ms): until the engine has also copied a delta's pages or armed the tracker, on its tracer thread (a resume waits for that; gdb's fork likewise leaves the page copies to copy-on-write after it returns)");
  for (const n of notes) console.log(n);
}
