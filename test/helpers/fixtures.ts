// Compiles fixture programs at test time into test/.build, cached on source mtime and flags.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '..', '..');
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
// one folder per test run if asked (CRYO_TEST_BUILD_DIR): the leak check looks only there
export const buildDir = process.env.CRYO_TEST_BUILD_DIR ? resolve(process.env.CRYO_TEST_BUILD_DIR) : join(repoRoot, 'test', '.build');

export interface BuildOptions {
  /** extra compiler flags; defaults to -O0 -g */
  flags?: string[];
  /** extra source files (relative to test/fixtures) compiled into the same binary */
  extra?: string[];
  /** build a shared library instead of an executable */
  shared?: boolean;
  /** libraries / linker flags appended at the end */
  libs?: string[];
  /** output name override */
  name?: string;
}

/** Builds test/fixtures/<source> and returns the absolute path of the binary. */
export function buildFixture(source: string, opts: BuildOptions = {}): string {
  const src = join(fixturesDir, source);
  const flags = opts.flags ?? ['-O0', '-g'];
  const isCxx = ['.cc', '.cpp', '.cxx'].includes(extname(src));
  const compiler = isCxx ? 'g++' : 'gcc';
  const extra = (opts.extra ?? []).map((e) => join(fixturesDir, e));
  const args = [...flags, ...(opts.shared ? ['-shared', '-fPIC'] : []), src, ...extra];
  const libs = opts.libs ?? [];
  const key = createHash('sha1')
    .update(compiler + '\0' + [...args, ...libs].join('\0') + '\0' + [src, ...extra].map((f) => statSync(f).mtimeMs).join(','))
    .digest('hex')
    .slice(0, 10);
  const stem = opts.name ?? basename(src, extname(src));
  const out = join(buildDir, `${stem}-${key}${opts.shared ? '.so' : ''}`);
  if (!existsSync(out)) {
    mkdirSync(buildDir, { recursive: true });
    const tmp = `${out}.tmp${process.pid}`;
    execFileSync(compiler, [...args, '-o', tmp, ...libs], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    execFileSync('mv', [tmp, out]);
  }
  return out;
}
