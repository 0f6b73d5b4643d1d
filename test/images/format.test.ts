// cryo dump and inspect: what an image says about a live process, how it is written
// (mode 0600, temporary file renamed, a full disk leaves the previous file intact), and
// the command's usage errors and exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { isAlive } from '../helpers/procs';
import { assertNoImageProcesses, fixture, cleanupDirs, cryo, ensureBuilt, exited, inspectJson, lines, start, tmp, waitFor } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

async function memoryProcess() {
  const prog = fixture('img_memory.c', { name: 'img_memory' });
  const p = start(prog, []);
  let out = '';
  p.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready'), 10_000, 'ready');
  return { prog, p };
}

describe('cryo dump and inspect', () => {
  test('an image describes the process: exe, threads, memory by page kind, files, signals', async () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    const out = join(dir, 'out.txt');
    const p = start(prog, ['100000', out, '1000']);
    await waitFor(() => lines(out).length > 10, 10_000, 'output');
    const img = join(dir, 'c.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img]);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stderr, /frozen [\d.]+ ms, total [\d.]+ ms/);
    assert.ok(isAlive(p.pid!), 'detached by default: it runs on');
    p.kill('SIGKILL');
    await exited(p);
    assert.equal(statSync(img).mode & 0o777, 0o600, 'mode 0600');
    assert.deepEqual(readdirSync(dir).sort(), ['c.cryo', 'out.txt'], 'no temporary file left');
    const j = inspectJson(img);
    assert.equal(j.process.pid, p.pid);
    assert.equal(j.process.exe, prog);
    assert.equal(j.process.cwd, process.cwd());
    assert.equal(j.reason.kind, 'snapshot');
    assert.equal(j.threads.length, 1);
    assert.equal(j.threads[0].tid, p.pid);
    assert.ok(BigInt(j.process.mm.brk) >= BigInt(j.process.mm.start_brk));
    const exe = j.mappings.filter((m) => m.path === prog);
    assert.ok(exe.length >= 3 && exe.some((m) => m.perms === 'r-xp'));
    assert.ok(j.mappings.some((m) => m.kind === 'stack') && j.mappings.some((m) => m.kind === 'vdso'));
    assert.ok(j.totals.pages.data > 0 && j.totals.pages.file > 0 && j.totals.pages.absent > 0);
    const text = exe.find((m) => m.perms === 'r-xp')!;
    assert.equal(text.pages.data, 0, 'clean program text is not stored');
    const f = j.files.find((x) => x.fd === 3);
    assert.equal(f?.path, out);
    assert.equal(f?.type, 'file');
    assert.ok(f!.pos > 0);
    const t = cryo(['inspect', img]);
    assert.equal(t.status, 0);
    assert.match(t.stdout, /reason: snapshot/);
    assert.match(t.stdout, new RegExp(`thread ${p.pid}\\s+pc 0x[0-9a-f]+`));
    assert.match(t.stdout, /total pages: data \d+, zero \d+, absent \d+, unreadable \d+, clean file \d+/);
  });

  test('zero pages are not stored; data is page-aligned and the file is smaller than the memory', async () => {
    const { p } = await memoryProcess();
    const dir = tmp();
    const img = join(dir, 'm.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    await exited(p);
    const j = inspectJson(img);
    const big = j.mappings.find((m) => m.kind === 'anon' && BigInt(m.end) - BigInt(m.start) >= 4n << 20n)!;
    assert.ok(big, 'the 4 MiB mapping');
    assert.ok(big.pages.zero >= 300 && big.pages.data >= 600, JSON.stringify(big.pages));
    for (const m of j.mappings) for (const [k, , off] of m.runs) if (k === 'data') assert.equal(off % 4096, 0);
    assert.ok(j.mappings.some((m) => m.perms === '---p'), 'a PROT_NONE mapping is recorded');
    assert.equal(statSync(img).size, j.format.file_size);
    assert.ok(j.totals.data_bytes < statSync(img).size && statSync(img).size < j.totals.data_bytes + (1 << 20));
  });

  test('a full disk gives a clear error and leaves the previous image intact', async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a tmpfs');
    const dir = tmp();
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    if (m.status !== 0) return t.skip(`cannot mount a tmpfs: ${m.stderr}`);
    try {
      const target = join(mnt, 'img.cryo');
      const previous = Buffer.from('the previous image\n');
      writeFileSync(target, previous);
      const { p } = await memoryProcess();
      const d = cryo(['dump', String(p.pid), '-o', target, '--kill']);
      assert.equal(d.status, 1);
      assert.match(d.stderr, /no space left on the device.*no image written/);
      assert.match(d.stderr, /left running/);
      assert.ok(isAlive(p.pid!), '--kill does not kill when the image could not be written');
      assert.deepEqual(readFileSync(target), previous, 'the previous file is untouched');
      assert.deepEqual(readdirSync(mnt), ['img.cryo'], 'no temporary file left');
      p.kill('SIGKILL');
      await exited(p);
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('every thread of a multi-threaded process is in the image', async () => {
    const prog = fixture('img_threads.c', { name: 'img_threads', flags: ['-O0', '-g', '-pthread'] });
    const p = start(prog, []);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 10_000, 'ready');
    const tids = readdirSync(`/proc/${p.pid}/task`).map(Number).sort((a, b) => a - b);
    assert.equal(tids.length, 4);
    const img = join(tmp(), 't.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    await exited(p);
    const j = inspectJson(img);
    assert.deepEqual(j.threads.map((t) => t.tid).sort((a, b) => a - b), tids);
    for (const t of j.threads) assert.ok(BigInt(t.regs.fs_base) !== 0n, 'each thread has its TLS');
    assert.equal(new Set(j.threads.map((t) => t.regs.fs_base)).size, 4);
  });

  test('usage errors exit 2, failures exit 1 with a message', () => {
    assert.equal(cryo([]).status, 2);
    const h = cryo(['help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /exit codes:/);
    assert.match(h.stdout, /dump PID -o FILE/);
    assert.equal(cryo(['frobnicate']).status, 2);
    assert.equal(cryo(['dump']).status, 2);
    assert.equal(cryo(['dump', '123']).status, 2);
    assert.equal(cryo(['dump', 'abc', '-o', '/tmp/x']).status, 2);
    assert.equal(cryo(['dump', '1', '-o', '/tmp/x', '--bogus']).status, 2);
    const nope = cryo(['dump', '999999999', '-o', join(tmp(), 'x.cryo')]);
    assert.equal(nope.status, 1);
    assert.match(nope.stderr, /no such process/);
    assert.equal(cryo(['inspect']).status, 2);
    assert.equal(cryo(['inspect', '/nonexistent.cryo']).status, 1);
    assert.equal(cryo(['restore']).status, 2);
    const r = cryo(['restore', '/nonexistent.cryo']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /nonexistent\.cryo/);
  });
});
