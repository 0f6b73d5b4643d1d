// Shared helpers for the image tests: the cryo command, fixture runs, waiting for output.
import { ChildProcess, spawn, spawnSync, SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFixture, BuildOptions, repoRoot } from '../helpers/fixtures';
import { copyFileSync, mkdirSync } from 'node:fs';
import koffi from 'koffi';
import { closeOthers } from '../helpers/crashimage.cjs';

export { closeOthers };

/** CRYO_BIN overrides the command under test (e.g. a build with -fsanitize=address for the fuzz test). */
export const cryoBin = process.env.CRYO_BIN ?? join(repoRoot, 'native', 'build', 'cryo');

export function ensureBuilt(): void {
  const r = spawnSync('make', ['-s', '-C', join(repoRoot, 'native')], { stdio: 'inherit' });
  if (r.status !== 0 || !existsSync(cryoBin)) throw new Error('native build failed');
}

export function cryo(args: string[], timeout = 60_000): SpawnSyncReturns<string> {
  return spawnSync(cryoBin, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

const dirs: string[] = [];
export function tmp(prefix = 'cryo-img-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}
export function cleanupDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Exit status as a shell reports it: the code, or 128+signal. */
export function shellStatus(r: { status: number | null; signal: NodeJS.Signals | null }): number {
  if (r.status !== null) return r.status;
  const n = require('node:os').constants.signals[r.signal as string] as number;
  return 128 + n;
}

export function lines(path: string): string[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l.length);
}

export async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function exited(p: ChildProcess): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((res) => {
    if (p.exitCode !== null || p.signalCode !== null) return res({ status: p.exitCode, signal: p.signalCode });
    p.on('exit', (status, signal) => res({ status, signal }));
  });
}

/** Starts a fixture with nothing open but stdio (closeOthers): descriptors the test
 * runner itself inherited would otherwise be in the image. */
export function start(prog: string, args: string[], cwd?: string, ids?: { uid: number; gid: number }): ChildProcess {
  return spawn('/bin/bash', ['-c', closeOthers, 'bash', prog, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd, ...ids });
}

/** Runs `cryo restore FILE --wait` without blocking the event loop; onRestored runs
 * once cryo says the process is restored (and running). */
export function restoreWait(image: string, timeout = 60_000, onRestored?: () => void): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const p = spawn(cryoBin, ['restore', image, '--wait'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let told = false;
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => {
      stderr += d;
      if (!told && onRestored && / restored as \d+/.test(stderr)) {
        told = true;
        onRestored();
      }
    });
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      rej(new Error(`cryo restore --wait timed out; stderr: ${stderr}`));
    }, timeout);
    p.on('exit', (status, signal) => {
      clearTimeout(t);
      res({ status: status ?? 128 + (require('node:os').constants.signals[signal as string] as number), stdout, stderr });
    });
  });
}

export interface InspectJson {
  format: { version: number; file_size: number };
  process: { pid: number; exe: string; cwd: string; mm: Record<string, string> };
  reason: { kind: string; signal?: number; signal_name?: string; code?: number; address?: string | null; pc?: string; tid?: number };
  threads: { tid: number; pc: string; sp: string; regs: Record<string, string>; rseq: { address: string; size: number } | null }[];
  mappings: {
    start: string;
    end: string;
    perms: string;
    kind: string;
    path: string;
    offset: string;
    content_stored: boolean;
    pages: Record<string, number>;
    runs: [string, number, number][];
  }[];
  files: { fd: number; type: string; path: string; flags: string; pos: number }[];
  signals: { signal: number; name: string; disposition: string; handler: string }[];
  totals: { pages: Record<string, number>; data_bytes: number };
}

export function inspectJson(image: string): InspectJson {
  const r = cryo(['inspect', image, '--json']);
  if (r.status !== 0) throw new Error(`cryo inspect failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Fixture binaries run from a private copy, so that the process checks of suites
 * running at the same time (which kill anything under test/.build) leave them alone;
 * assertNoImageProcesses checks them instead. */
const binDir = join(tmpdir(), `cryo-img-bin-${process.pid}`);
process.on('exit', () => rmSync(binDir, { recursive: true, force: true }));
export function fixture(source: string, opts: BuildOptions = {}): string {
  const built = buildFixture(source, opts);
  mkdirSync(binDir, { recursive: true });
  const copy = join(binDir, built.split('/').pop()!);
  if (!existsSync(copy)) {
    copyFileSync(built, copy + '.tmp');
    require('node:fs').renameSync(copy + '.tmp', copy);
    require('node:fs').chmodSync(copy, 0o755);
  }
  return copy;
}

function imageProcesses(): { pid: number; state: string; exe: string }[] {
  const out: { pid: number; state: string; exe: string }[] = [];
  for (const name of require('node:fs').readdirSync('/proc') as string[]) {
    if (!/^\d+$/.test(name)) continue;
    let exe: string;
    try {
      exe = require('node:fs').readlinkSync(`/proc/${name}/exe`);
    } catch {
      continue;
    }
    if (!exe.startsWith(binDir + '/') && !/\/test\/\.build\/img_[^/]*$/.test(exe)) continue;
    let state = '?';
    try {
      state = readFileSync(`/proc/${name}/stat`, 'utf8').split(') ')[1].split(' ')[0];
    } catch {
      continue;
    }
    if (state !== 'Z' && state !== 'X') out.push({ pid: Number(name), state, exe });
  }
  return out;
}

/** Like assertNoFixtureProcesses, but only for this suite's fixtures. */
export function assertNoImageProcesses(context: string): void {
  const left = imageProcesses();
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (left.length) throw new Error(`${context}: ${left.length} process(es) left behind: ${left.map((p) => `${p.pid} (${p.state}) ${p.exe}`).join(', ')}`);
}

let loadedLib: ReturnType<typeof loadImageLib> | undefined;
/** The image reader of libcryo through its C ABI (koffi), as the adapter calls it. */
export function imageLib() {
  return (loadedLib ??= loadImageLib());
}
function loadImageLib() {
  const l = koffi.load(join(repoRoot, 'native', 'build', 'libcryo.so'));
  const Img = koffi.pointer(koffi.opaque('cryo_image'));
  return {
    open: l.func('int cryo_image_open(const char *, _Out_ cryo_image **)'),
    close: l.func('void cryo_image_close(cryo_image *)'),
    json: l.func('int cryo_image_json(cryo_image *, _Out_ void **)'),
    free: l.func('void cryo_image_free_string(void *)'),
    regs: l.func('int cryo_image_thread_regs(cryo_image *, int32_t, _Out_ uint64_t *)'),
    xstate: l.func('int cryo_image_thread_xstate(cryo_image *, int32_t, uint8_t *, size_t, _Out_ size_t *)'),
    read: l.func('int cryo_image_read_memory(cryo_image *, uint64_t, uint8_t *, size_t, _Out_ size_t *)'),
    exportCore: l.func('int cryo_image_export_core(cryo_image *, const char *)'),
    lastError: l.func('const char *cryo_last_error()'),
    Img,
  };
}

// CRC32C, as docs/image-format.md specifies it (written here independently of the C code)
const table = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();
export function crc32c(b: Buffer): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = table[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Recomputes every checksum (sections, TOC, header) of an image whose TOC is intact. */
export function fixChecksums(img: Buffer): void {
  if (img.length < 64) return;
  const tocOff = Number(img.readBigUInt64LE(32));
  const n = img.readUInt32LE(40);
  if (n > 64 || tocOff + n * 32 > img.length) return;
  for (let i = 0; i < n; i++) {
    const e = tocOff + i * 32;
    const off = Number(img.readBigUInt64LE(e + 8));
    const len = Number(img.readBigUInt64LE(e + 16));
    if (off + len <= img.length) img.writeUInt32LE(crc32c(img.subarray(off, off + len)), e + 24);
  }
  img.writeUInt32LE(crc32c(img.subarray(tocOff, tocOff + n * 32)), 44);
  img.writeBigUInt64LE(BigInt(img.length), 24);
  img.writeUInt32LE(crc32c(img.subarray(0, 60)), 60);
}
