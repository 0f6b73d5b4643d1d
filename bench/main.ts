// npm run bench: every benchmark, figures side by side with the tools people use today.
import { spawnSync } from 'node:child_process';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { benchCheckpoints } from './checkpoint';
import { benchDebug } from './debug';
import { benchImages } from './images';
import { benchTimeTravel } from './timetravel';

async function main(): Promise<void> {
  const only = process.argv[2];
  console.log(`# cryo benchmarks — ${new Date().toISOString()}, kernel ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
  if (!only || only === 'checkpoint') await benchCheckpoints(process.env.CRYO_BENCH_SIZES?.split(',').map(Number));
  if (!only || only === 'debug') await benchDebug();
  if (!only || only === 'timetravel') await benchTimeTravel();
  if (!only || only === 'images') await benchImages(process.env.CRYO_BENCH_SIZES?.split(',').map(Number));
  if (!only || only === 'symbols') {
    // a large program (sqlite3's amalgamation, from the npm registry): symbols against gdb
    console.log('\n## Symbols on a large program: a fresh Program answering, against gdb -batch\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(__dirname, 'symbols.ts')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    process.stdout.write(r.stdout ?? '');
    if (r.status !== 0) console.log(`(symbols benchmark failed: exit ${r.status})`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
