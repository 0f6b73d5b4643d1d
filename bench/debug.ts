// The debugger's own speed: launch to the first breakpoint stop, and time per `next`,
// against gdb -batch doing the same on the same binary, and (for `next`) against gdb on
// MI pipes as cpptools drives it. Measured from outside: gdb from its spawn, ours from
// the adapter process's spawn (Node's start included).
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir, repoRoot } from '../test/helpers/fixtures';
import { killProcessesOf } from './checkpoint';
import { median, ms, printTable, ratio } from './table';

// enough turns that a median is not one VM hiccup (here single nexts vary 1.3-6 ms)
const NEXTS = 200;

async function ours(prog: string, file: string, line: number, args: string[]) {
  const t0 = performance.now();
  const dc = new DebugClient('node', join(repoRoot, 'dist', 'adapter.js'), 'cryo');
  dc.defaultTimeout = 60000;
  await dc.start();
  await dc.initializeRequest();
  const initialized = dc.waitForEvent('initialized');
  const launched = dc.launch({ program: prog, args });
  await initialized;
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  await dc.setBreakpointsRequest({ source: { path: file }, breakpoints: [{ line }] });
  await dc.configurationDoneRequest();
  await launched;
  const st = await stopped;
  const first = performance.now() - t0;
  await dc.setBreakpointsRequest({ source: { path: file }, breakpoints: [] });
  const times: number[] = [];
  const own: number[] = [];
  for (let i = 0; i < NEXTS; i++) {
    const t = performance.now();
    const s = dc.waitForEvent('stopped');
    await dc.nextRequest({ threadId: st.body.threadId! });
    await s;
    await dc.stackTraceRequest({ threadId: st.body.threadId!, levels: 1 }); // what the editor asks at once
    const took = performance.now() - t;
    times.push(took);
    // the transport's share, at the same stop: a request the adapter answers at once. A
    // next is two such trips (next, answered with the stop; stackTrace), which gdb -batch,
    // reading its commands itself, does not make.
    const r = performance.now();
    await dc.threadsRequest();
    own.push(took - 2 * (performance.now() - r));
  }
  await dc.disconnectRequest({ terminateDebuggee: true });
  await dc.stop();
  return { first, next: median(times), own: median(own) };
}

function gdb(prog: string, file: string, line: number, args: string[]) {
  const t0 = performance.now();
  const out = execFileSync(
    'gdb',
    ['-nx', '-batch', '-ex', 'set startup-with-shell off', '-ex', `break ${file}:${line}`, '-ex', 'run', '-ex', 'python import time; print("T0 %.6f" % time.perf_counter())', '-ex', 'delete',
      ...Array.from({ length: NEXTS }, () => ['-ex', 'next']).flat(), '-ex', 'python print("T1 %.6f" % time.perf_counter())', '-ex', 'kill', '--args', prog, ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const total = performance.now() - t0;
  const a = Number(/T0 ([\d.]+)/.exec(out)![1]);
  const b = Number(/T1 ([\d.]+)/.exec(out)![1]);
  const nextMs = ((b - a) * 1000) / NEXTS;
  return { first: total - (b - a) * 1000, next: nextMs };
}

/** gdb driven as cpptools drives it in the editor: the MI interpreter on pipes, each
 * `next` (-exec-next) followed by the top frame (-stack-list-frames 0 0), as our figure
 * includes the stackTrace the editor asks for. */
async function gdbMi(prog: string, file: string, line: number, args: string[]): Promise<number> {
  const gdb = spawn('gdb', ['-nx', '--interpreter=mi3', '--args', prog, ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
  const lines = createInterface({ input: gdb.stdout! });
  let want: { cmd: string; test: (l: string) => boolean; done: () => void; fail: (e: Error) => void } | undefined;
  const settle = (f: (w: NonNullable<typeof want>) => void) => {
    const w = want;
    want = undefined;
    if (w) f(w);
  };
  // an error or gdb's exit ends the wait with a message, rather than a figure or a hang
  lines.on('line', (l) => {
    if (l.startsWith('^error')) settle((w) => w.fail(new Error(`gdb/MI: ${w.cmd}: ${l}`)));
    else if (want?.test(l)) settle((w) => w.done());
  });
  gdb.once('exit', (code) => settle((w) => w.fail(new Error(`gdb/MI exited (${code}) during ${w.cmd}`))));
  const send = (cmd: string, until: (l: string) => boolean) =>
    new Promise<void>((done, fail) => {
      want = { cmd, test: until, done, fail };
      gdb.stdin!.write(cmd + '\n');
    });
  const stopped = (l: string) => l.startsWith('*stopped');
  const done = (l: string) => l.startsWith('^done');
  try {
    await send('-gdb-set startup-with-shell off', done);
    await send(`-break-insert ${file}:${line}`, done);
    await send('-exec-run', stopped);
    await send('-break-delete', done);
    const times: number[] = [];
    for (let i = 0; i < NEXTS; i++) {
      const t = performance.now();
      await send('-exec-next', stopped);
      await send('-stack-list-frames 0 0', done);
      times.push(performance.now() - t);
    }
    return median(times);
  } finally {
    if (gdb.exitCode === null && gdb.signalCode === null) {
      const exited = new Promise((r) => gdb.once('exit', r));
      gdb.kill('SIGKILL');
      await exited;
    }
    killProcessesOf(prog);
  }
}

export async function benchDebug(): Promise<void> {
  const prog = buildFixture('counter.c');
  const src = join(fixturesDir, 'counter.c');
  const rows = [];
  const o = await ours(prog, src, 20, ['100000']);
  const g = gdb(prog, src, 20, ['100000']);
  const mi = await gdbMi(prog, src, 20, ['100000']);
  rows.push({
    program: 'counter.c (-O0 -g)',
    'to 1st stop (ms)': ms(o.first),
    'gdb (ms)': ms(g.first),
    ratio: ratio(o.first, g.first),
    'per next (ms)': ms(o.next),
    'gdb next (ms)': ms(g.next),
    'next ratio': ratio(o.next, g.next),
    'gdb/MI next + frame (ms)': ms(mi),
    'MI ratio': ratio(o.next, mi),
    'adapter own next (ms)': ms(o.own),
    'own vs gdb': ratio(o.own, g.next),
  });
  printTable(`Debugging: launch to the first breakpoint, and \`next\` (median of ${NEXTS}; ours includes the stackTrace the editor asks for)`, rows);
  console.log('\n(gdb`s first-stop time includes gdb`s exit after the run; ours includes starting Node for the adapter; gdb/MI: gdb on pipes as cpptools drives it, each next followed by the top frame; adapter own next: ours less two DAP round trips to the test client, each measured at the same stop with a threads request, i.e. the adapter`s work as gdb -batch`s figure is gdb`s)');
}
