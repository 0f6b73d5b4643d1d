// Benchmark of adapter/symbols on a large binary: the sqlite3 amalgamation compiled with -g.
// Measures "address of function X after its prologue" and "file:line -> address" on a fresh
// Program (nothing parsed yet), time and memory, side by side with `gdb -batch`.
// The amalgamation comes from the npm registry (better-sqlite3 ships it), cached in bench/.build.
//   npx tsx bench/symbols.ts [path/to/sqlite3.c]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { DebugClient } from '@vscode/debugadapter-testsupport';
import { join, resolve } from 'node:path';
import { executableTarget, Program } from '../adapter/symbols';

const root = resolve(__dirname, '..');
const dir = join(root, 'bench', '.build', 'sqlite');

function amalgamation(): string {
  const given = process.argv[2];
  if (given) return given;
  const c = join(dir, 'package', 'deps', 'sqlite3', 'sqlite3.c');
  if (existsSync(c)) return c;
  mkdirSync(dir, { recursive: true });
  const tgz = execFileSync('npm', ['pack', 'better-sqlite3', '--silent'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', tgz, 'package/deps/sqlite3/sqlite3.c', 'package/deps/sqlite3/sqlite3.h'], { cwd: dir });
  return c;
}

function build(src: string, flags: string[], name: string): string {
  const out = join(dir, name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const main = join(dir, 'sqmain.c');
  writeFileSync(main, '#include "sqlite3.h"\n#include <stdio.h>\nint main(void){sqlite3*db;int rc=sqlite3_open(":memory:",&db);printf("%d\\n",rc);sqlite3_close(db);return 0;}\n');
  execFileSync('gcc', [...flags, '-I', resolve(src, '..'), main, src, '-o', out, '-lm', '-lpthread', '-ldl'], { stdio: 'inherit' });
  return out;
}

function ms(t0: bigint): number { return Number(process.hrtime.bigint() - t0) / 1e6; }

function gdbTime(bin: string, cmds: string[]): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const out = execFileSync('gdb', ['-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), bin], { encoding: 'utf8' });
  return { ms: ms(t0), out };
}

/** One question in this process, fresh (nothing parsed, nothing compiled yet): prints
 * its time, answer and the memory it took (RSS growth, in MB) as JSON. */
function one(bin: string, q: string): void {
  const r0 = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const p = new Program(executableTarget(bin));
  const bps = q.startsWith('break sqlite3.c:') ? p.lineBreakpoints('sqlite3.c', Number(q.split(':')[1])) : p.functionBreakpoints(q.slice('break '.length));
  const t = ms(t0);
  const ans = bps.map((b) => `0x${b.addr.toString(16)} line ${b.line}`).join(', ');
  console.log(JSON.stringify({ ms: t, ans, grow: (process.memoryUsage().rss - r0) / 1e6, rss: process.memoryUsage().rss / 1e6 }));
}

/** gdb's peak resident memory (MB) for the commands, by /usr/bin/time. */
function gdbMaxRss(bin: string, cmds: string[]): number {
  const r = spawnSync('/usr/bin/time', ['-f', 'MAXRSS %M', 'gdb', '-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), bin], { encoding: 'utf8' });
  return Number(/MAXRSS (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1e3;
}

if (process.argv[2] === '--one') {
  one(process.argv[3], process.argv[4]);
  process.exit(0);
}

/** Memory of a process as /proc/PID/smaps_rollup gives it (MB): resident, proportional
 * (shared pages divided among the processes that map them) and private. */
function memoryOf(text: string): { rss: number; pss: number; priv: number } {
  const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN) / 1024;
  return { rss: f('Rss'), pss: f('Pss'), priv: f('Private_Clean') + f('Private_Dirty') };
}

/** The adapter, as the editor starts it: launch to the first stop at `break sqlite3_open`
 * and the stack the editor asks for then; its time and the adapter process's memory. */
async function adapterFirstStop(bin: string): Promise<{ ms: number; mem: ReturnType<typeof memoryOf> }> {
  const t0 = performance.now();
  const dc = new DebugClient('node', join(__dirname, '..', 'dist', 'adapter.js'), 'cryo');
  dc.defaultTimeout = 120_000;
  await dc.start();
  try {
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: bin, stopAtEntry: false });
    await initialized;
    const stopped = dc.waitForEvent('stopped');
    await dc.setFunctionBreakpointsRequest({ breakpoints: [{ name: 'sqlite3_open' }] });
    await dc.configurationDoneRequest();
    await launched;
    const st = await stopped;
    await dc.stackTraceRequest({ threadId: st.body.threadId, levels: 20 });
    const ms = performance.now() - t0;
    const pid = (dc as unknown as { _adapterProcess: { pid: number } })._adapterProcess.pid;
    return { ms, mem: memoryOf(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')) };
  } finally {
    await dc.disconnectRequest({ terminateDebuggee: true }).catch(() => undefined);
    await dc.stop();
  }
}

/** gdb -batch doing the same: run to `break sqlite3_open`, bt; its time and memory there. */
function gdbFirstStop(bin: string): { ms: number; mem: ReturnType<typeof memoryOf> } {
  const t0 = performance.now();
  const out = execFileSync('gdb', ['-nx', '-batch', '-ex', 'set startup-with-shell off', '-ex', 'break sqlite3_open', '-ex', 'run', '-ex', 'bt',
    '-ex', 'python import sys; sys.stdout.write("SMAPS\\n" + open("/proc/self/smaps_rollup").read())', '-ex', 'kill', bin], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return { ms: performance.now() - t0, mem: memoryOf(out.slice(out.indexOf('SMAPS'))) };
}

const src = amalgamation();
const rows: string[][] = [['binary', 'question', 'cryo ms', 'cryo answer', 'gdb ms', 'gdb answer', 'cryo MB (growth / process)', 'gdb MB (growth / process)']];
const gdbBase = gdbMaxRss('/bin/true', []);
for (const [name, flags] of [['sqlite-O0', ['-O0', '-g']], ['sqlite-O2', ['-O2', '-g']]] as [string, string[]][]) {
  const bin = build(src, flags, name);
  for (const q of ['break sqlite3_open', 'break sqlite3.c:50000']) {
    // a process of its own per question, as the adapter is: nothing warm from another question
    const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--one', bin, q], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`cryo's lookup failed: ${r.stderr}`);
    const o = JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number; ans: string; grow: number; rss: number };
    const gd = gdbTime(bin, [q]);
    const gmem = gdbMaxRss(bin, [q]);
    const gm = /at (0x[0-9a-f]+): (?:file \S+, line (\d+)|\S+:(\d+)\. \((\d+) locations\))/.exec(gd.out);
    const gans = gm ? (gm[2] ? `${gm[1]} line ${gm[2]}` : `${gm[4]} locations, first ${gm[1]} line ${gm[3]}`) : gd.out.trim();
    const n = o.ans.split(', ').length;
    const short = n > 1 ? `${n} locations, first ${o.ans.split(', ')[0]}` : o.ans;
    rows.push([name, q, o.ms.toFixed(1), short, gd.ms.toFixed(1), gans, `${o.grow.toFixed(1)} / ${o.rss.toFixed(0)}`, `${(gmem - gdbBase).toFixed(1)} / ${gmem.toFixed(0)}`]);
  }
}
const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
console.log(`\n(memory: what the question added to the process's resident memory, then the process's whole; gdb: its peak minus its peak on /bin/true (${gdbBase.toFixed(0)} MB), then its peak. cryo's process here is Node with tsx loaded; the adapter's own process starts smaller)`);

(async () => {
  const frows: string[][] = [['binary', 'cryo ms', 'gdb ms', 'cryo MB (rss / pss / private)', 'gdb MB (rss / pss / private)']];
  for (const name of ['sqlite-O0', 'sqlite-O2']) {
    const bin = join(dir, name);
    const o = await adapterFirstStop(bin);
    const g = gdbFirstStop(bin);
    const m = (x: ReturnType<typeof memoryOf>) => `${x.rss.toFixed(1)} / ${x.pss.toFixed(1)} / ${x.priv.toFixed(1)}`;
    frows.push([name, o.ms.toFixed(0), g.ms.toFixed(0), m(o.mem), m(g.mem)]);
  }
  const fw = frows[0].map((_, i) => Math.max(...frows.map((r) => r[i].length)));
  console.log('\nLaunch to the first stop at `break sqlite3_open` and the stack there: the adapter (Node, started fresh) against gdb -batch (break, run, bt), and each process\'s memory at that stop');
  for (const r of frows) console.log(r.map((c, i) => c.padEnd(fw[i])).join('  '));
  console.log('(pss: shared pages divided among the processes mapping them, as the machine pays for them; rss counts the Node binary\'s and libraries\' pages whole)');
})();
