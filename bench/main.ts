// npm run bench: every benchmark, figures side by side with the tools people use today.
import { cpus, release } from 'node:os';
import { benchCheckpoints } from './checkpoint';
import { benchDebug } from './debug';
import { benchTimeTravel } from './timetravel';

async function main(): Promise<void> {
  const only = process.argv[2];
  console.log(`# cryo benchmarks — ${new Date().toISOString()}, kernel ${release()}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`);
  if (!only || only === 'checkpoint') await benchCheckpoints(process.env.CRYO_BENCH_SIZES?.split(',').map(Number));
  if (!only || only === 'debug') await benchDebug();
  if (!only || only === 'timetravel') await benchTimeTravel();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
