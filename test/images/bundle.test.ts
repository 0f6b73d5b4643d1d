// Field bundles: `cryo run --checkpoint-every MS --keep N` keeps the last N checkpoints
// and the record log; the crash image carries them. The oracle is the crash itself:
// reviving the oldest checkpoint and replaying the log must reach the same signal at
// the same pc with the same registers and the same program memory, printing nothing
// the program had printed already.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { Image, Session } from '../../adapter/engine';
import { withTimeout } from '../helpers/elf';
import { sessionPool } from '../helpers/sessions';
import { assertNoImageProcesses, cleanupDirs, cryo, cryoBin, ensureBuilt, fixChecksums, fixture, inspectJson, shellStatus, tmp } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

const session = sessionPool();
// long enough (about 0.3 s recorded) for more than --keep checkpoints at --checkpoint-every 20
const ROUNDS = 200;
const input = Array.from({ length: ROUNDS }, (_, i) => `input line ${i}`).join('\n') + '\n';

interface HistoryJson {
  checkpoints: { index: number; position: number; time_ns: number; time: string; pc: string; offset: number; length: number }[];
  log: { base: number; entries: number; data_bytes: number; bytes: number };
}

/** A crash under `cryo run` with checkpoints: stdin from a pipe, a regular file as argv[1]. */
function bundleRun(extra: string[] = ['--checkpoint-every', '20', '--keep', '3']) {
  const prog = fixture('img_bundle.c', { name: 'img_bundle' });
  const dir = tmp();
  const data = join(dir, 'data.bin');
  writeFileSync(data, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37 + 11) & 0xff)));
  const crashDir = join(dir, 'crash');
  mkdirSync(crashDir);
  const r = spawnSync(cryoBin, ['run', '--on-crash', crashDir, ...extra, '--', prog, data, String(ROUNDS)], {
    encoding: 'utf8',
    input,
    timeout: 120_000,
  });
  const files = readdirSync(crashDir);
  return { prog, r, crashDir, files, image: files.length === 1 ? join(crashDir, files[0]) : '' };
}

describe('field bundles: cryo run --checkpoint-every', () => {
  test('the crash image carries the last N checkpoints, each a valid image, and the log', () => {
    const { prog, r, files, image } = bundleRun();
    const bare = spawnSync(prog, [join(__dirname, '..', 'fixtures', 'img_bundle.c'), String(ROUNDS)], { encoding: 'utf8', input });
    assert.equal(shellStatus(r), 128 + 11, `the program's own status; stderr: ${r.stderr}`);
    assert.equal(shellStatus(r), shellStatus(bare));
    const out = r.stdout.split('\n').filter(Boolean);
    assert.equal(out.length, ROUNDS, 'stdout is the program\'s: one line per round');
    out.forEach((l, i) => assert.match(l, new RegExp(`^round ${i} line=input line ${i} rand=[0-9a-f]{16} `)));
    assert.equal(files.length, 1, `one image and no temporary file left: ${files}`);
    assert.match(r.stderr, /image written to .* with its recent history/);
    assert.equal(statSync(image).mode & 0o777, 0o600);

    const j = inspectJson(image) as ReturnType<typeof inspectJson> & { history: HistoryJson | null };
    assert.equal(j.reason.kind, 'crash');
    assert.equal(j.reason.signal, 11);
    const h = j.history!;
    assert.ok(h, 'a history');
    assert.equal(h.checkpoints.length, 3);
    assert.equal(h.checkpoints[0].position, 0, 'positions count from the oldest checkpoint');
    for (let i = 1; i < 3; i++) {
      // equal when no syscall completed between two periodic checkpoints (a slow machine)
      assert.ok(h.checkpoints[i].position >= h.checkpoints[i - 1].position, `positions never go back: ${JSON.stringify(h.checkpoints)}`);
      assert.ok(h.checkpoints[i].time_ns > h.checkpoints[i - 1].time_ns, 'times increase');
    }
    // the newest checkpoint may stand after the last syscall (stopped at that syscall's exit)
    assert.ok(h.log.entries >= h.checkpoints[2].position, 'the log goes on to the crash');
    assert.ok(h.log.base > 0, 'the oldest checkpoint was not at the start of the recording');
    for (const c of h.checkpoints) {
      assert.equal(c.offset % 4096, 0, 'embedded images are page-aligned');
      const e = cryo(['inspect', image, '--checkpoint', String(c.index), '--json']);
      assert.equal(e.status, 0, e.stderr);
      const ej = JSON.parse(e.stdout);
      assert.equal(ej.reason.kind, 'snapshot');
      assert.equal(ej.format.file_size, c.length);
      assert.equal(ej.threads[0].pc, c.pc);
      assert.equal(ej.process.time_ns, c.time_ns, 'an embedded image is dated when its checkpoint was taken');
      assert.equal(ej.history, null);
    }
    const text = cryo(['inspect', image]).stdout;
    assert.match(text, new RegExp(`history: 3 checkpoints, record log of ${h.log.entries} syscalls`));
    assert.match(text, /checkpoint 2 {2}position \d+ {2}\d{4}-\d\d-\d\dT[\d:.]+Z \([\d.]+ ms before\) {2}pc 0x[0-9a-f]+/);
    assert.equal(cryo(['inspect', image, '--checkpoint', '3']).status, 1, 'no checkpoint 3');
    assert.match(cryo(['inspect', image, '--checkpoint', '3']).stderr, /has no checkpoint 3 \(its history has 3\)/);
  });

  test('replaying the log from a checkpoint reaches the same crash: signal, pc, registers, memory; nothing printed twice', async () => {
    const { prog, r, image } = bundleRun();
    assert.equal(shellStatus(r), 139, r.stderr);
    const crash = new Image(image);
    try {
      const d = crash.describe();
      assert.equal(d.reason.kind, 'crash');
      const crashTid = (d.reason as { tid: number }).tid;
      const crashRegs = crash.registers(crashTid);
      const hist = crash.history();
      assert.equal(hist.length, 3);
      assert.equal(hist[0].position, 0n);
      const log = crash.log();
      const h0 = d.history!;
      assert.equal(log.length, h0.log.bytes);
      // the program's own data: its writable mappings and the heap, as the crash left them
      const regions = d.mappings.filter((m) => (m.path === prog && m.perms.startsWith('rw')) || m.kind === 'heap');
      assert.ok(regions.length >= 2, `data and heap: ${JSON.stringify(regions.map((m) => m.path))}`);

      for (const i of [0, hist.length - 1]) {
        const cp = crash.openCheckpoint(i);
        const s: Session = session();
        try {
          assert.equal(cp.history().length, 0);
          const l = s.revive(cp, { stdin: { mode: 'pipe' }, stdout: { mode: 'pipe' }, stderr: { mode: 'pipe' } });
          let printed = '';
          createReadStream('', { fd: l.stdout!, autoClose: true }).on('data', (c) => (printed += c)).on('error', () => {});
          assert.throws(() => s.replayLog(Buffer.from('not a log')), /corrupt/, 'a damaged log is refused');
          s.replayLog(log);
          if (hist[i].position) s.replayFrom(hist[i].position);
          assert.equal(s.recordStats().mode, hist[i].position < BigInt(h0.log.entries) ? 'replaying' : 'recording');
          s.continue();
          const ev = await withTimeout(s.waitStop(), 30_000, 'the crash');
          assert.equal(ev.kind, 'stopped', JSON.stringify(ev, (_, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v)));
          if (ev.kind !== 'stopped') return;
          assert.equal(ev.reason, 'signal', `checkpoint ${i}: ${ev.reason} at 0x${ev.addr.toString(16)} (a divergence?)`);
          assert.equal(ev.signo, 11);
          const regs = s.registers(ev.tid);
          assert.equal(regs.rip, crashRegs.rip, 'the same pc');
          assert.deepEqual(regs, crashRegs, 'the same registers');
          for (const m of regions) {
            const start = BigInt(m.start);
            const len = Number(BigInt(m.end) - start);
            const want = crash.readMemory(start, len);
            const got = s.readMemory(start, len);
            assert.equal(got.length, len);
            assert.ok(got.equals(want), `checkpoint ${i}: memory of ${m.path || m.kind} at ${m.start} is the crash's`);
          }
          const st = s.recordStats();
          assert.equal(st.cursor, st.entries, 'every entry of the log was replayed');
          assert.equal(st.mode, 'recording', 'the log is exhausted: live from here');
          if (hist[i].position < BigInt(h0.log.entries)) assert.ok(st.replayed > 0, 'syscalls were given back, not run');
          await new Promise((res) => setTimeout(res, 100));
          assert.equal(printed, '', 'the replayed writes were not written again');
        } finally {
          await s.close();
          cp.close();
        }
      }
    } finally {
      crash.close();
    }
  });

  test('a damaged history is refused with a clear message', () => {
    const { image } = bundleRun();
    const j = inspectJson(image) as ReturnType<typeof inspectJson> & { history: HistoryJson };
    const orig = readFileSync(image);
    const toc = Number(orig.readBigUInt64LE(32));
    const sections = Array.from({ length: orig.readUInt32LE(40) }, (_, i) => ({
      type: orig.readUInt32LE(toc + i * 32),
      off: Number(orig.readBigUInt64LE(toc + i * 32 + 8)),
      len: Number(orig.readBigUInt64LE(toc + i * 32 + 16)),
    }));
    const hist = sections.find((x) => x.type === 7)!;
    const logs = sections.find((x) => x.type === 8)!;
    assert.ok(hist && logs, 'HISTORY (7) and LOG (8) sections');
    const bad = join(tmp(), 'bad.cryo');
    const expectError = (b: Buffer, re: RegExp, what: string) => {
      writeFileSync(bad, b);
      const r = cryo(['inspect', bad]);
      assert.equal(r.status, 1, `${what}: exit 1 (${r.stderr})`);
      assert.equal(r.signal, null);
      assert.match(r.stderr, re, what);
    };

    let b = Buffer.from(orig);
    b[hist.off + 20] ^= 0x40;
    expectError(b, /corrupt image: history section checksum mismatch/, 'a flipped byte');

    // an embedded image moved off its page (checksums recomputed: the parser must catch it)
    b = Buffer.from(orig);
    const item = Buffer.alloc(16);
    item.writeUInt16LE(4, 0); // HC_OFFSET
    item[2] = 1; // u64
    item.writeUInt32LE(8, 4);
    item.writeBigUInt64LE(BigInt(j.history.checkpoints[1].offset), 8);
    const at = b.subarray(hist.off, hist.off + hist.len).indexOf(item);
    assert.ok(at >= 0);
    b.writeBigUInt64LE(BigInt(j.history.checkpoints[1].offset + 8), hist.off + at + 8);
    fixChecksums(b);
    expectError(b, /history checkpoint 1: its image .* is not a page-aligned part of the file/, 'an unaligned image');

    // two checkpoints on the same bytes
    b = Buffer.from(orig);
    b.writeBigUInt64LE(BigInt(j.history.checkpoints[0].offset), hist.off + at + 8);
    fixChecksums(b);
    expectError(b, /history checkpoints 0 and 1 overlap/, 'overlapping images');

    // inside an embedded image: its own checksums catch it
    b = Buffer.from(orig);
    b[j.history.checkpoints[2].offset + 4096 + 100] ^= 1;
    expectError(b, /\(checkpoint 2\): corrupt image: pages section checksum mismatch/, 'a flipped page of checkpoint 2');

    // the log: an entry whose data lies past the end
    b = Buffer.from(orig);
    const lg = b.subarray(logs.off, logs.off + logs.len);
    const entries = lg.indexOf(Buffer.from([3, 0, 3, 0])); // LG_ENTRIES, bytes
    assert.ok(entries >= 0);
    lg.writeBigUInt64LE(1n << 40n, entries + 8 + 64);
    fixChecksums(b);
    expectError(b, /log entry 0: its data .* lies outside the log/, 'a log entry out of bounds');

    // a history whose log is gone (the LOG entry of the TOC turned into an unknown type)
    b = Buffer.from(orig);
    const li = sections.indexOf(logs);
    b.writeUInt32LE(99, toc + li * 32);
    fixChecksums(b);
    expectError(b, /a history without its log section/, 'no log');
  });

  test('usage: --keep 0, --checkpoint-every 0 and options without what they need exit 2', () => {
    const dir = tmp();
    for (const args of [
      ['--on-crash', dir, '--checkpoint-every', '0', '--', 'true'],
      ['--on-crash', dir, '--checkpoint-every', '20', '--keep', '0', '--', 'true'],
      ['--on-crash', dir, '--checkpoint-every', 'x', '--', 'true'],
      ['--on-crash', dir, '--checkpoint-every', '20', '--keep', '65', '--', 'true'],
      ['--on-crash', dir, '--keep', '2', '--', 'true'],
      ['--checkpoint-every', '20', '--', 'true'],
      ['--on-crash', dir, '--checkpoint-every'],
    ]) {
      const r = cryo(['run', ...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /cryo: run: /);
    }
    const help = cryo(['help']).stdout;
    assert.match(help, /--checkpoint-every MS/);
    assert.match(help, /--keep/);
    assert.match(help, /inspect FILE \[--json\] \[--checkpoint I\]/);
  });

  test('a program that exits normally under checkpoints keeps its status and output, and writes nothing', () => {
    const prog = fixture('img_bundle.c', { name: 'img_bundle' });
    const dir = tmp();
    const r = spawnSync(cryoBin, ['run', '--on-crash', dir, '--checkpoint-every', '5', '--', prog, prog, '20', 'exit'], {
      encoding: 'utf8',
      input,
      timeout: 60_000,
    });
    assert.equal(r.status, 7, `the program's exit code; stderr: ${r.stderr}`);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 20);
    assert.deepEqual(readdirSync(dir), []);
  });
});
