// Dump mid-run, kill, restore: the program's own output continues with no gap and no
// repeat, and its exit code is that of an uninterrupted run.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, realpathSync, rmdirSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { repoRoot } from '../helpers/fixtures';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { isAlive, waitGone } from '../helpers/procs';
import { assertNoImageProcesses, closeOthers, crc32c, fixture, cleanupDirs, cryo, cryoBin, ensureBuilt, exited, inspectJson, lines, restoreWait, shellStatus, start, tmp, waitFor } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

/** Bare run: the reference output and status. */
function bare(prog: string, args: (out: string) => string[], dir: string): { out: string; status: number } {
  const out = join(dir, 'bare.txt');
  const r = spawnSync(prog, args(out), { timeout: 60_000 });
  return { out: readFileSync(out, 'utf8'), status: shellStatus(r) };
}

/** Starts prog, dumps it with --kill once its output has `atLines` lines, restores it and
 * waits (onRestored: called with the image as soon as the restored process runs). */
async function dumpKillRestore(prog: string, args: (out: string) => string[], atLines: number, onRestored?: (img: string) => void) {
  const dir = tmp();
  const ref = bare(prog, args, dir);
  const out = join(dir, 'out.txt');
  const img = join(dir, 'p.cryo');
  const p = start(prog, args(out));
  await waitFor(() => lines(out).length >= atLines, 20_000, `${atLines} lines of output`);
  const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
  assert.equal(d.status, 0, `dump failed: ${d.stderr}`);
  assert.match(d.stderr, /frozen [\d.]+ ms, total [\d.]+ ms/);
  const e = await exited(p);
  assert.equal(e.signal, 'SIGKILL');
  const atDump = readFileSync(out, 'utf8');
  assert.ok(atDump.length > 0 && atDump.length < ref.out.length, `dumped mid-run (${atDump.length} of ${ref.out.length} bytes; dump: ${d.stderr})`);
  const r = await restoreWait(img, 60_000, onRestored && (() => onRestored(img)));
  // the pid is free again: the process gets it back (glibc keeps it as its thread id)
  assert.match(r.stderr, new RegExp(`process ${p.pid} restored as ${p.pid}\\b`));
  const final = readFileSync(out, 'utf8');
  assert.equal(final, ref.out, `restored output differs (status ${r.status}); restore stderr: ${r.stderr}`);
  assert.equal(r.status, ref.status, `exit status; restore stderr: ${r.stderr}`);
  return { img, dir };
}


/** An image of img_counter killed mid-run (writing to a file), for restores that must fail. */
async function countingImage(): Promise<{ img: string; out: string; prog: string }> {
  const prog = fixture('img_counter.c', { name: 'img_counter' });
  const dir = tmp();
  const out = join(dir, 'out.txt');
  const p = start(prog, ['1000', out, '3000']);
  await waitFor(() => lines(out).length > 5, 20_000, 'output');
  const img = join(dir, 'p.cryo');
  assert.equal(cryo(['dump', String(p.pid), '-o', img, '--kill']).status, 0);
  await exited(p);
  return { img, out, prog };
}

describe('dump and restore', () => {
  test('a counter writing to a file continues with no gap and no repeat', async () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    await dumpKillRestore(prog, (o) => ['400', o, '2000'], 60);
  });

  test('a heap under malloc/free churn continues with the same checksums', async () => {
    const prog = fixture('img_heap.c', { name: 'img_heap' });
    await dumpKillRestore(prog, (o) => ['300', o], 80);
  });

  test('the image rewritten in place, truncated and deleted as soon as the process runs: it runs on to its correct end', async () => {
    // a restore reads every data page into the new process's own memory: nothing in it
    // depends on the image afterwards (a process mapping the image would get SIGBUS or
    // other bytes here)
    const prog = fixture('img_heap.c', { name: 'img_heap' });
    let size = 0;
    await dumpKillRestore(prog, (o) => ['300', o], 80, (img) => {
      size = statSync(img).size;
      const fd = openSync(img, 'r+');
      writeSync(fd, Buffer.alloc(size, 0x5a), 0, size, 0);
      ftruncateSync(fd, 0);
      closeSync(fd);
      unlinkSync(img);
    });
    assert.ok(size > 1 << 20, `an image with data pages (${size} bytes)`);
  });

  test('a damaged data page: restore refuses before the process runs a single instruction', async () => {
    const { img, out, prog } = await countingImage();
    // the PAGES checksum is verified while the process is built: a mismatch must still
    // end the restore, with the same message as reading the image
    const b = readFileSync(img);
    b[4096 + 123] ^= 0x40;
    writeFileSync(img, b);
    const before = readFileSync(out, 'utf8');
    const r = await restoreWait(img);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /p\.cryo: corrupt image: pages section checksum mismatch/);
    assert.doesNotMatch(r.stderr, /restored as/);
    assert.equal(readFileSync(out, 'utf8'), before, 'nothing ran');
    const cryoExe = realpathSync(cryoBin);
    const left = readdirSync('/proc').filter((d) => {
      if (!/^\d+$/.test(d)) return false;
      try {
        return readlinkSync(`/proc/${d}/exe`) === cryoExe || readlinkSync(`/proc/${d}/exe`) === prog;
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, [], 'the half-built process is gone');
  });

  test('a descriptor open at an offset reads on from there', async () => {
    const prog = fixture('img_fileoff.c', { name: 'img_fileoff' });
    const dir = tmp();
    const input = join(dir, 'input.txt');
    writeFileSync(input, Array.from({ length: 300 }, (_, i) => `line ${i} ${'x'.repeat(i % 17)}\n`).join(''));
    const { img } = await dumpKillRestore(prog, (o) => [input, o], 50);
    const j = inspectJson(img);
    const f = j.files.find((x) => x.path === input);
    assert.ok(f && f.pos > 0, 'the input descriptor and its offset are in the image');
  });

  test('a SIGUSR1 handler keeps counting after restore', async () => {
    const prog = fixture('img_signals.c', { name: 'img_signals' });
    const { img } = await dumpKillRestore(prog, (o) => ['300', o], 50);
    const j = inspectJson(img);
    const usr1 = j.signals.find((s) => s.name === 'SIGUSR1');
    assert.equal(usr1?.disposition, 'handler');
    assert.equal(j.signals.find((s) => s.name === 'SIGUSR2')?.disposition, 'ignore');
  });

  test('a program reading the clock through the vDSO keeps working', async () => {
    const prog = fixture('img_clock.c', { name: 'img_clock' });
    const { img } = await dumpKillRestore(prog, (o) => ['300', o], 50);
    const j = inspectJson(img);
    assert.ok(j.mappings.some((m) => m.kind === 'vdso'), 'the vDSO is recorded');
  });

  test('a multi-threaded program (mutex, pthread_join) continues with every thread', async () => {
    const prog = fixture('img_mt.c', { name: 'img_mt', flags: ['-O0', '-g', '-pthread'] });
    const { img } = await dumpKillRestore(prog, (o) => ['400', o], 60);
    assert.equal(inspectJson(img).threads.length, 4);
  });

  test('dump --leave-running, then restore a second copy: both finish correctly', async () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    const N = 300;
    const ref = spawnSync(prog, [String(N), '-', '3000'], { encoding: 'utf8', timeout: 60_000 });
    const p = start(prog, [String(N), '-', '3000']);
    let orig = '';
    p.stdout!.on('data', (d) => (orig += d));
    await waitFor(() => orig.split('\n').length > 40, 20_000, 'output');
    const img = join(dir, 'copy.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--leave-running']);
    assert.equal(d.status, 0, d.stderr);
    assert.ok(isAlive(p.pid!), 'the original runs on');
    const r = await restoreWait(img);
    const e = await exited(p);
    assert.equal(orig, ref.stdout, `the original finished as if nothing happened (status ${shellStatus(e)}; restore: ${r.stderr})`);
    assert.equal(shellStatus(e), ref.status);
    // the copy's stdout was a pipe that is gone: it writes to cryo's own stdout instead, and says so
    assert.match(r.stderr, /descriptor 1 .* connected to cryo's stdout/);
    assert.match(r.stderr, new RegExp(`pid ${p.pid} could not be reused \\(in use\\)`));
    assert.ok(r.stdout.length > 0 && ref.stdout.endsWith(r.stdout), `the copy continued the same run: ${r.stdout.slice(0, 200)}`);
    assert.ok(r.stdout.startsWith('iteration '), 'from a line boundary');
    assert.equal(r.status, ref.status);
  });

  test('memory of the restored process is byte-identical to the image', async () => {
    const prog = fixture('img_memory.c', { name: 'img_memory' });
    const dir = tmp();
    const p = start(prog, []);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 10_000, 'ready');
    const img = join(dir, 'm.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    await exited(p);
    // its stdout (a pipe at dump time) becomes cryo's: a file here, so nothing waits on it
    const outFd = openSync(join(dir, 'restore.out'), 'w+');
    const errFd = openSync(join(dir, 'restore.err'), 'w+');
    const r = spawnSync(cryoBin, ['restore', img], { encoding: 'utf8', stdio: ['ignore', outFd, errFd], timeout: 30_000 });
    closeSync(errFd);
    closeSync(outFd);
    assert.equal(r.status, 0, readFileSync(join(dir, 'restore.err'), 'utf8'));
    const pid = Number(readFileSync(join(dir, 'restore.out'), 'utf8').split('\n')[0]);
    assert.ok(pid > 0 && isAlive(pid), `restored pid ${r.stdout}`);
    try {
      const j = inspectJson(img);
      const imgFd = openSync(img, 'r');
      const mem = openSync(`/proc/${pid}/mem`, 'r');
      let compared = 0;
      try {
        for (const m of j.mappings) {
          if (m.kind === 'vdso' || m.kind.startsWith('vvar') || m.kind === 'vsyscall') continue;
          let addr = BigInt(m.start);
          for (const [kind, npages, off] of m.runs) {
            const len = npages * 4096;
            if (kind === 'data' || kind === 'zero' || kind === 'file') {
              const want = Buffer.alloc(len);
              if (kind === 'data') readSync(imgFd, want, 0, len, off);
              if (kind === 'file') {
                const ff = openSync(m.path, 'r');
                readSync(ff, want, 0, len, Number(BigInt(m.offset) + addr - BigInt(m.start)));
                closeSync(ff);
              }
              const got = Buffer.alloc(len);
              const n = readSync(mem, got, 0, len, addr);
              // the kernel owns the rseq area's cpu fields: they say where the new process runs
              const rs = j.threads[0].rseq;
              if (rs) {
                const ra = BigInt(rs.address);
                if (ra >= addr && ra < addr + BigInt(len)) {
                  const o = Number(ra - addr);
                  got.fill(0, o, o + rs.size);
                  want.fill(0, o, o + rs.size);
                }
              }
              assert.equal(n, len, `read ${len} bytes at 0x${addr.toString(16)}`);
              if (!got.equals(want)) {
                let i = 0;
                while (got[i] === want[i]) i++;
                assert.fail(`memory differs at 0x${(addr + BigInt(i)).toString(16)} in ${m.path || m.kind} (${m.perms})`);
              }
              compared += len;
            }
            addr += BigInt(len);
          }
        }
      } finally {
        closeSync(mem);
        closeSync(imgFd);
      }
      assert.ok(compared > 4 << 20, `compared ${compared} bytes`);
      const kinds = new Set(j.mappings.flatMap((m) => m.runs.map((r) => `${m.kind}:${r[0]}`)));
      for (const k of ['anon:data', 'anon:zero', 'file:file', 'file:data', 'heap:data']) assert.ok(kinds.has(k), `the image has ${k} pages`);
      assert.ok(j.mappings.some((m) => m.perms === 'rw-s' && m.content_stored && m.pages.data === 2), 'shared anonymous memory is stored');
      // restored by a read in the new process, which honours protection: mapped writable first
      assert.ok(j.mappings.some((m) => m.kind === 'anon' && m.perms === 'r--p' && m.pages.data === 1), 'read-only anonymous data');
      assert.ok(j.mappings.some((m) => m.kind === 'anon' && m.perms === '---p' && m.pages.data === 1 && m.pages.absent === 1), 'PROT_NONE anonymous data');
      assert.ok(j.mappings.some((m) => m.kind === 'anon' && m.perms === 'r-xp' && m.pages.data === 1), 'code written at run time');
      assert.ok(j.mappings.some((m) => m.path === prog && m.perms === 'rw-p' && m.pages.file === 1 && m.pages.data === 1), 'private file mapping: one clean page, one copied');
      // the layout: every recorded mapping is where it was, with its protection (the
      // kernel may merge neighbours that now look alike, e.g. RELRO after .rodata)
      const live = readFileSync(`/proc/${pid}/maps`, 'utf8')
        .split('\n')
        .filter((l) => l)
        .map((l) => {
          const [range, perms] = l.split(/\s+/);
          const [a, b] = range.split('-').map((x) => BigInt('0x' + x));
          return { a, b, perms };
        });
      for (const m of j.mappings) {
        const a = BigInt(m.start);
        const b = BigInt(m.end);
        const cover = live.find((l) => l.a <= a && b <= l.b);
        assert.ok(cover, `mapping ${m.start}-${m.end} (${m.path || m.kind}) is there`);
        assert.equal(cover.perms, m.perms, `protection of ${m.start} (${m.path || m.kind})`);
      }
    } finally {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid);
    }
  });

  test('the engine-side dump of a frozen copy (image_dump_target) restores like the original', async () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    const harness = join(dir, 'img_target_harness');
    const objs = readdirSync(join(repoRoot, 'native', 'build', 'obj')).map((o) => join(repoRoot, 'native', 'build', 'obj', o));
    execFileSync('gcc', ['-std=c11', '-D_GNU_SOURCE', '-O1', '-g', '-o', harness, join(repoRoot, 'test', 'fixtures', 'img_target_harness.c'), ...objs, '-lpthread']);
    const ref = bare(prog, (o) => ['300', o, '3000'], dir);
    const out = join(dir, 'out.txt');
    const img = join(dir, 'copy.cryo');
    const h = spawnSync('/bin/bash', ['-c', closeOthers, 'bash', harness, img, prog, '300', out, '3000'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(h.status, 0, h.stderr);
    const [pid, copy] = h.stdout.trim().split(' ').map(Number);
    assert.ok(pid > 0 && copy > 0 && copy !== pid);
    const j = inspectJson(img);
    assert.equal(j.process.pid, pid, "the program's own pid is recorded, not the copy's");
    assert.deepEqual(j.threads.map((t) => t.tid), [pid]);
    const atDump = readFileSync(out, 'utf8');
    assert.ok(atDump.length > 0 && atDump.length < ref.out.length);
    const r = await restoreWait(img);
    assert.equal(readFileSync(out, 'utf8'), ref.out, r.stderr);
    assert.equal(r.status, ref.status);
  });

  test("the restored process runs with the image's credentials, not the restorer's", async (t) => {
    if (process.getuid?.() !== 0) return t.skip('needs root to run a fixture as another user');
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    chmodSync(dir, 0o777);
    const out = join(dir, 'out.txt');
    const p = start(prog, ['100000', out, '3000'], dir, { uid: 65534, gid: 65534 });
    await waitFor(() => lines(out).length > 5, 20_000, 'output');
    const img = join(dir, 'n.cryo');
    assert.equal(cryo(['dump', String(p.pid), '-o', img, '--kill']).status, 0);
    await exited(p);
    const outFd = openSync(join(dir, 'restore.out'), 'w+');
    const errFd = openSync(join(dir, 'restore.err'), 'w+');
    const r = spawnSync(cryoBin, ['restore', img], { stdio: ['ignore', outFd, errFd], timeout: 30_000 });
    closeSync(outFd);
    closeSync(errFd);
    assert.equal(r.status, 0, readFileSync(join(dir, 'restore.err'), 'utf8'));
    const pid = Number(readFileSync(join(dir, 'restore.out'), 'utf8').split('\n')[0]);
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      assert.match(status, /\nUid:\s+65534\s+65534\s+65534\s+65534\n/);
      assert.match(status, /\nGid:\s+65534\s+65534\s+65534\s+65534\n/);
      assert.match(status, /\nCapEff:\s+0+\n/, 'no capabilities left');
    } finally {
      process.kill(pid, 'SIGKILL');
      await waitGone(pid);
    }
  });

  test('a restore that fails midway kills what it built', async () => {
    const { img, out } = await countingImage();
    // an image that passes every check but whose brk the kernel refuses (PR_SET_MM_MAP),
    // which happens after the memory has been rebuilt: its checksums are made right again
    const b = readFileSync(img);
    const tocOff = Number(b.readBigUInt64LE(32));
    let found = false;
    for (let i = 0; i < b.readUInt32LE(40); i++) {
      const e = tocOff + i * 32;
      if (b.readUInt32LE(e) !== 1) continue;
      const off = Number(b.readBigUInt64LE(e + 8));
      const len = Number(b.readBigUInt64LE(e + 16));
      for (let q = off; q < off + len; ) {
        const tag = b.readUInt16LE(q);
        const n = b.readUInt32LE(q + 4);
        if (tag === 12) {
          b.writeBigUInt64LE(0n, q + 8 + 6 * 8); // brk = 0
          found = true;
        }
        q += 8 + Math.ceil(n / 8) * 8;
      }
      b.writeUInt32LE(crc32c(b.subarray(off, off + len)), e + 24);
    }
    assert.ok(found, 'the mm field');
    b.writeUInt32LE(crc32c(b.subarray(tocOff, tocOff + b.readUInt32LE(40) * 32)), 44);
    b.writeUInt32LE(crc32c(b.subarray(0, 60)), 60);
    writeFileSync(img, b);
    assert.equal(cryo(['inspect', img]).status, 0, 'a valid image');
    const before = readFileSync(out, 'utf8');
    const r = await restoreWait(img);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /PR_SET_MM_MAP/);
    assert.equal(readFileSync(out, 'utf8'), before, 'nothing ran');
    // the half-built process (still running cryo's executable at that point) is gone
    const cryoExe = realpathSync(cryoBin);
    const left = readdirSync('/proc').filter((d) => {
      if (!/^\d+$/.test(d)) return false;
      try {
        return readlinkSync(`/proc/${d}/exe`) === cryoExe;
      } catch {
        return false;
      }
    });
    assert.deepEqual(left, []);
  });

  test('restore refuses, listing every problem, and leaves nothing behind', async () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    const copy = join(dir, 'prog');
    spawnSync('cp', [prog, copy]);
    const out = join(dir, 'out.txt');
    const wd = join(dir, 'wd');
    mkdirSync(wd);
    const p = start(copy, ['400', out, '3000'], wd);
    await waitFor(() => lines(out).length > 5, 20_000, 'output');
    const img = join(dir, 'p.cryo');
    assert.equal(cryo(['dump', String(p.pid), '-o', img, '--kill']).status, 0);
    await exited(p);
    // the program is rebuilt differently, and its working directory is gone
    spawnSync('gcc', ['-O1', '-o', copy, join(__dirname, '..', 'fixtures', 'img_counter.c')]);
    rmdirSync(wd);
    const before = readFileSync(out, 'utf8');
    const r = cryo(['restore', img, '--wait']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot be restored here \(2 problems\)/);
    assert.match(r.stderr, new RegExp(`${copy}.*build-id`));
    assert.match(r.stderr, new RegExp(`working directory ${wd} is gone`));
    assert.equal(readFileSync(out, 'utf8'), before, 'nothing ran');
  });
});
