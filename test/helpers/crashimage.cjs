// Crash images for the tests: a program run under `cryo run --on-crash DIR` with nothing
// open but stdio. Plain CommonJS so that the TypeScript tests (test/adapter, test/images)
// and the editor runner (test/editor/run.mjs, plain Node) share it.
const { spawnSync } = require('node:child_process');
const { readdirSync } = require('node:fs');
const { join } = require('node:path');

/** A bash script that closes every descriptor above 2, then execs "$@": descriptors the
 * test runner itself inherited (from a CI wrapper, say) would otherwise be in the image,
 * and a pipe at a number above 2 cannot be restored. */
const closeOthers = 'for f in /proc/$$/fd/*; do n=${f##*/}; if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null; fi; done; exec "$@"';

/** Runs prog with args under `cryoBin run --on-crash dir`; returns the path of the image
 * it wrote there. Throws when the program did not fail or no image (or more than one)
 * was written. opts: cwd, env, timeout (ms), run (options of `cryo run` such as
 * --checkpoint-every), input (the program's stdin). */
function crashImage(cryoBin, dir, prog, args = [], opts = {}) {
  const r = spawnSync('/bin/bash', ['-c', closeOthers, 'bash', cryoBin, 'run', '--on-crash', dir, ...(opts.run ?? []), '--', prog, ...args], {
    encoding: 'utf8',
    cwd: opts.cwd,
    env: opts.env,
    timeout: opts.timeout ?? 60_000,
    input: opts.input,
    stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (r.error) throw r.error;
  if (opts.onResult) opts.onResult(r);
  if (r.status === 0) throw new Error(`${prog} did not crash under cryo run (status 0): ${r.stderr}`);
  const images = readdirSync(dir).filter((f) => f.endsWith('.cryo'));
  if (images.length !== 1) throw new Error(`cryo run --on-crash ${dir} wrote ${images.length} images (status ${r.status}): ${r.stderr}`);
  return join(dir, images[0]);
}

module.exports = { closeOthers, crashImage };
