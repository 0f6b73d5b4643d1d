// Images: `cryo dump` against gdb's gcore on the same process (at equal durability: the
// core is fsynced as the image is), image and core sizes, `cryo restore` time, and the
// cost of running a program under `cryo run` against running it bare, without and with
// periodic checkpoints (--checkpoint-every: recording plus checkpoints).
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixture, repoRoot } from '../test/helpers/fixtures';
import { start } from '../test/images/common';
import { killProcessesOf } from './checkpoint';
import { median, ms, printTable, ratio } from './table';

const cryo = join(repoRoot, 'native', 'build', 'cryo');

async function startHog(prog: string, mib: number) {
  // only stdio open: a descriptor inherited from elsewhere (a pipe) could not be restored
  const child = start(prog, [String(mib)]);
  await new Promise((r) => child.stdout!.once('data', r));
  return child;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  fsyncSync(fd);
  closeSync(fd);
}

export async function benchImages(sizes = [16, 256, 1024]): Promise<void> {
  const hog = buildFixture('memhog.c');
  const dir = mkdtempSync(join(tmpdir(), 'cryo-bench-img-'));
  const rows = [];
  try {
    for (const mib of sizes) {
      const child = await startHog(hog, mib);
      const pid = child.pid!;
      try {
        const image = join(dir, `hog-${mib}.cryo`);
        const t0 = performance.now();
        const d = spawnSync(cryo, ['dump', String(pid), '-o', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
        const dumpMs = performance.now() - t0;
        if (d.status !== 0) throw new Error(`cryo dump failed: ${d.stderr}`);
        const out = d.stdout + d.stderr;
        const frozen = Number(/frozen ([\d.]+) ms/.exec(out)?.[1] ?? NaN);
        const core = join(dir, `core-${mib}`);
        const t1 = performance.now();
        execFileSync('gcore', ['-o', core, String(pid)], { stdio: 'ignore', timeout: 120000 });
        fsyncFile(`${core}.${pid}`);
        const gcoreMs = performance.now() - t1;
        const imgSize = statSync(image).size;
        const coreSize = statSync(`${core}.${pid}`).size;
        rmSync(`${core}.${pid}`);
        // restore: a new process from the image (its pid printed), then ended (its stdout
        // goes to a file: the revived process keeps the descriptor open). Twice: with the
        // image out of the page cache (as the dump leaves it: written O_DIRECT; dropped again
        // with dd's nocache), then from the cache (as right after a copy or a first restore).
        const outFile = join(dir, 'restore.out'); // its report, and the revived process's stdio
        const restoreOnce = (): { ms: number; status: number | null } => {
          const outFd = openSync(outFile, 'w');
          const t2 = performance.now();
          const r = spawnSync(cryo, ['restore', image], { encoding: 'utf8', stdio: ['ignore', outFd, outFd], timeout: 60000 });
          const took = performance.now() - t2;
          closeSync(outFd);
          killProcessesOf(hog); // the revived copy (and the original, ended below anyway)
          return { ms: took, status: r.status };
        };
        spawnSync('dd', [`if=${image}`, 'iflag=nocache', 'count=0', 'status=none']);
        const cold = restoreOnce();
        const warm = restoreOnce();
        rows.push({
          touched: mib >= 1024 ? `${mib / 1024} GiB` : `${mib} MiB`,
          'dump (ms)': ms(dumpMs),
          'frozen (ms)': ms(frozen),
          'gcore+fsync (ms)': ms(gcoreMs),
          'dump ratio': ratio(dumpMs, gcoreMs),
          'image (MB)': (imgSize / 1e6).toFixed(1),
          'core (MB)': (coreSize / 1e6).toFixed(1),
          'restore, cold (ms)': cold.status === 0 ? ms(cold.ms) : `failed (exit ${cold.status})`,
          'restore, cached (ms)': warm.status === 0 ? ms(warm.ms) : `failed (exit ${warm.status})`,
        });
        rmSync(image);
      } finally {
        child.kill('SIGKILL');
        killProcessesOf(hog);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable('Images: cryo dump against gcore on the same process (half of the touched memory zero), restore', rows);

  const loops = buildFixture('loops.c', { flags: ['-O0', '-g'] });
  const run = (argv: string[], times = 5) => {
    const t: number[] = [];
    for (let i = 0; i < times; i++) {
      const a = performance.now();
      spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore'] });
      t.push(performance.now() - a);
    }
    return median(t);
  };
  /** Commands run in turns (a, b, c, a, b, c...), so that a change in the machine's load
   * falls on all alike: the median of each. */
  const turns = (cmds: string[][], times: number): number[] => {
    const t: number[][] = cmds.map(() => []);
    for (let i = 0; i < times; i++) {
      cmds.forEach((argv, k) => {
        const t0 = performance.now();
        spawnSync(argv[0], argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore'] });
        t[k].push(performance.now() - t0);
      });
    }
    return t.map(median);
  };
  const crashDir = mkdtempSync(join(tmpdir(), 'cryo-bench-run-'));
  // A supervisor is a process of its own: its start is paid once per run, so the share
  // depends on how long the program runs (shown on /bin/true, then on runs of ~50 ms and
  // ~0.5 s). The least any supervisor can cost is measured beside it: a C program that
  // only forks, execs and waits (test/fixtures/supervise.c).
  const minimal = buildFixture('supervise.c', { flags: ['-O2', '-static'] });
  const pct = (x: number, bare: number) => `${(((x - bare) / bare) * 100).toFixed(1)}%`;
  const rrows = [];
  for (const [kind, n, times] of [['true', '', 31], ['compute', '20000000', 21], ['syscalls', '200000', 21], ['compute', '200000000', 7], ['syscalls', '2000000', 7]] as [string, string, number][]) {
    const prog = kind === 'true' ? ['/bin/true'] : [loops, kind, n];
    const [bare, least, under] = turns([prog, [minimal, ...prog], [cryo, 'run', '--on-crash', crashDir, '--', ...prog]], times);
    const fixed = kind === 'true';
    rrows.push({
      workload: fixed ? '/bin/true (the fixed cost)' : `${kind} (${n} iterations)`,
      runs: times,
      'bare (ms)': ms(bare),
      'fork+exec+wait supervisor (ms)': ms(least),
      'cryo run (ms)': ms(under),
      'supervisor overhead': fixed ? `+${ms(least - bare)} ms` : pct(least, bare),
      'cryo run overhead': fixed ? `+${ms(under - bare)} ms` : pct(under, bare),
    });
  }
  printTable('cryo run --on-crash: the cost when nothing crashes (medians; bare, a minimal supervisor and cryo run in turns)', rrows);

  // field bundles: recording every input from the start, a checkpoint every 100 ms (5
  // kept), against the bare program and plain `cryo run`, on runs of a few seconds
  const brows = [];
  for (const [kind, n] of [['compute', '400000000'], ['syscalls', '100000']]) {
    const bare = run([loops, kind, n]);
    const plain = run([cryo, 'run', '--on-crash', crashDir, '--', loops, kind, n]);
    const bundled = run([cryo, 'run', '--on-crash', crashDir, '--checkpoint-every', '100', '--keep', '5', '--', loops, kind, n]);
    brows.push({
      workload: `${kind} (${n} iterations)`,
      'bare (ms)': ms(bare),
      'cryo run (ms)': ms(plain),
      '--checkpoint-every 100 --keep 5 (ms)': ms(bundled),
      'ratio to bare': `${(bundled / bare).toFixed(2)}x`,
      'ratio to cryo run': `${(bundled / plain).toFixed(2)}x`,
    });
  }
  rmSync(crashDir, { recursive: true, force: true });
  printTable('cryo run --checkpoint-every 100 --keep 5 (field bundles): the cost when nothing crashes (median of 5)', brows);
}
