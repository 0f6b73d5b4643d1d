// Runs every test file under test/ with node's test runner (TypeScript through tsx),
// then fails if any process started from a test build folder is still alive: a
// debugger's tests must never leave a debuggee behind.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(new URL('..', import.meta.url).pathname);
const wanted = process.argv.slice(2);

function collect(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (name === 'fixtures' || name.startsWith('.') || name === 'node_modules') continue;
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = collect(join(root, 'test'), []).sort();
if (wanted.length) files = files.filter((f) => wanted.some((w) => relative(root, f).includes(w)));
if (!files.length) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

// A test that waits on something no timeout covers fails by name (--test-timeout) while
// the event loop runs; a file that prints nothing for STALL_S seconds (a blocked loop, or
// a process kept alive by a pending call) is reported with every process under it, its
// kernel and native stacks, then killed: CI fails saying where, instead of hanging.
const STALL_S = Number(process.env.CRYO_TEST_STALL_S ?? 420);
const runner = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: ['inherit', 'pipe', 'pipe'],
  env: { ...process.env, CRYO_TEST_ROOT: root },
});
let quietSince = Date.now();
let stalled = false;
runner.stdout.on('data', (b) => { quietSince = Date.now(); process.stdout.write(b); });
runner.stderr.on('data', (b) => { quietSince = Date.now(); process.stderr.write(b); });
const watchdog = setInterval(() => {
  if (stalled || Date.now() - quietSince < STALL_S * 1000) return;
  stalled = true;
  const tree = descendants(runner.pid);
  console.error(`\nrun-tests: no output for ${STALL_S} s: the tests are stuck. Processes under the runner:`);
  for (const pid of tree) console.error(describeProcess(pid));
  for (const pid of tree) {
    const bt = spawnSync('gdb', ['-nx', '-batch', '-p', String(pid), '-ex', 'info threads', '-ex', 'thread apply all bt 30'], { encoding: 'utf8', timeout: 60_000 });
    console.error(`--- gdb backtraces of ${pid}:\n${(bt.stdout ?? '') + (bt.stderr ?? '')}`);
  }
  for (const pid of tree.reverse()) { try { process.kill(pid, 'SIGKILL'); } catch {} }
}, 5000);
const r = await new Promise((res) => runner.on('close', (status, signal) => res({ status, signal })));
clearInterval(watchdog);
if (stalled) r.status = 1;

/** pid's descendants, parents first. */
function descendants(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {}
  }
  const out = [];
  const walk = (p) => { for (const c of children.get(p) ?? []) { out.push(c); walk(c); } };
  walk(pid);
  return out;
}

function describeProcess(pid) {
  const read = (f) => { try { return readFileSync(`/proc/${pid}/${f}`, 'utf8'); } catch { return '?'; } };
  const lines = [`${pid} ${read('cmdline').split('\0').join(' ').trim()}`, `  ${read('stat').split(') ')[1]?.split(' ').slice(0, 4).join(' ')}`];
  let tasks = [];
  try { tasks = readdirSync(`/proc/${pid}/task`); } catch {}
  for (const t of tasks) {
    const rd = (f) => { try { return readFileSync(`/proc/${pid}/task/${t}/${f}`, 'utf8').trim(); } catch { return '?'; } };
    lines.push(`  task ${t} ${rd('comm')} state ${rd('stat').split(') ')[1]?.split(' ')[0]} wchan ${rd('wchan')}`);
    const stack = rd('stack');
    if (stack !== '?' && stack) lines.push(stack.split('\n').map((l) => `    ${l}`).join('\n'));
  }
  return lines.join('\n');
}

// Leak check: any live process whose executable lives under a test build folder.
const buildDirs = process.env.CRYO_TEST_BUILD_DIR ? [resolve(process.env.CRYO_TEST_BUILD_DIR)] : [join(root, 'test', '.build')];
const leaked = [];
for (const pid of readdirSync('/proc')) {
  if (!/^\d+$/.test(pid)) continue;
  let exe = '';
  try { exe = readlinkSync(`/proc/${pid}/exe`); } catch { continue; }
  if (buildDirs.some((d) => exe.startsWith(d + '/'))) {
    let state = '?';
    try { state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[0]; } catch {}
    if (state !== 'Z') leaked.push(`${pid} ${state} ${exe}`);
  }
}
if (leaked.length) {
  console.error(`run-tests: ${leaked.length} process(es) left behind by the tests:\n  ${leaked.join('\n  ')}`);
  for (const l of leaked) { try { process.kill(Number(l.split(' ')[0]), 'SIGKILL'); } catch {} }
  process.exit(1);
}
process.exit(r.status ?? 1);
