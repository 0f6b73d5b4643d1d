// Runs every test file under test/ with node's test runner (TypeScript through tsx),
// then fails if any process started from a test build folder is still alive: a
// debugger's tests must never leave a debuggee behind.
import { spawnSync } from 'node:child_process';
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

const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-reporter=spec', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, CRYO_TEST_ROOT: root },
});

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
