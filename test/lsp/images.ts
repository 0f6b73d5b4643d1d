// Real images for the language server and grammar tests: a crash (cryo run --on-crash)
// and a snapshot of a multi-threaded process (cryo dump), made with the image tests' helpers.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { crashImage as sharedCrashImage } from '../helpers/crashimage.cjs';
import { repoRoot } from '../helpers/fixtures';
import { cryo, cryoBin, exited, fixture, start, tmp, waitFor } from '../images/common';

/** dist/imageServer.js as it is built from the sources now. */
export function buildBundles(): void {
  const r = spawnSync(process.execPath, [join(repoRoot, 'scripts', 'build.mjs')], { stdio: 'inherit' });
  assert.equal(r.status, 0, 'esbuild failed');
}

/** Runs prog with args under `cryo run --on-crash` in its own folder; returns the image. */
export function crashImage(prog: string, args: string[], cwd: string): string {
  return sharedCrashImage(cryoBin, cwd, prog, args, { cwd });
}

/** img_crash dereferencing NULL, run from a private copy of the binary (so it can be changed afterwards). */
export function nullCrash(): { prog: string; image: string; dir: string } {
  const dir = tmp('cryo-lsp-');
  const prog = join(dir, 'img_crash');
  copyFileSync(fixture('img_crash.c', { name: 'img_crash' }), prog);
  return { prog, image: crashImage(prog, ['null'], dir), dir };
}

/** A snapshot of img_threads (main and three workers), the process killed after the dump. */
export async function threadsSnapshot(): Promise<string> {
  const prog = fixture('img_threads.c', { name: 'img_threads', flags: ['-O0', '-g', '-pthread'] });
  const dir = tmp('cryo-lsp-');
  const p = start(prog, [], dir);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  try {
    await waitFor(() => out.includes('ready'), 10_000, 'ready');
    const img = join(dir, 'threads.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    return img;
  } finally {
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    await exited(p);
  }
}
