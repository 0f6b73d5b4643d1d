// The reader against damaged images: flipped, truncated, inserted bytes, and (to get
// past the checksums into the parser) mutations whose checksums are recomputed.
// `cryo inspect` must exit 1 with a message, or 0 when the damage is harmless, and
// never die of a signal or hang. Any input that breaks it is kept under regressions/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { assertNoImageProcesses, crc32c, fixture, cleanupDirs, cryo, cryoBin, ensureBuilt, exited, fixChecksums, lines, start, tmp, waitFor } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

const regressions = join(__dirname, 'regressions');

let seed = 12345;
function rand(n: number): number {
  seed = (seed * 1103515245 + 12345) & 0x7fffffff;
  return seed % n;
}

/** The metadata part of the image (after the page data), where the parser's input is. */
function metaStart(img: Buffer): number {
  const tocOff = Number(img.readBigUInt64LE(32));
  const n = img.readUInt32LE(40);
  let lo = tocOff;
  for (let i = 0; i < n; i++) {
    const e = tocOff + i * 32;
    if (img.readUInt32LE(e) !== 6) lo = Math.min(lo, Number(img.readBigUInt64LE(e + 8)));
  }
  return lo;
}

function mutate(base: Buffer, fix: boolean): Buffer {
  let b = Buffer.from(base);
  const lo = fix ? metaStart(b) : 0;
  const span = b.length - lo;
  const kind = rand(fix ? 4 : 5);
  if (kind === 0 || kind === 4) {
    const k = 1 + rand(8);
    for (let i = 0; i < k; i++) b[lo + rand(span)] ^= 1 << rand(8);
  } else if (kind === 1) {
    // a plausible-looking big number: an absurd length or count
    const at = lo + rand(span - 8);
    const vals = [0xffffffff, 0x7fffffff, 0x10000, 0, 1, 0xfffffff0];
    b.writeUInt32LE(vals[rand(vals.length)], at - (at % 4));
  } else if (kind === 2) {
    const at = lo + rand(span);
    const ins = Buffer.alloc(1 + rand(24), rand(256));
    b = Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
  } else {
    b = b.subarray(0, fix ? lo + rand(span) : rand(b.length));
  }
  if (fix && b.length >= 64) {
    try {
      fixChecksums(b);
    } catch {
      /* a TOC made unusable by the mutation: leave it as it is */
    }
  }
  return b;
}

function runInspect(path: string) {
  return spawnSync(cryoBin, ['inspect', path, '--json'], { encoding: 'utf8', timeout: 10_000, maxBuffer: 64 << 20 });
}

function judge(path: string, bytes: Buffer, what: string): void {
  const r = runInspect(path);
  const broken = r.signal !== null || r.error !== undefined || (r.status !== 0 && r.status !== 1) || (r.status === 1 && !r.stderr.trim());
  if (broken) {
    mkdirSync(regressions, { recursive: true });
    const keep = join(regressions, `crash-${Date.now()}-${rand(1e6)}.cryo`);
    writeFileSync(keep, bytes);
    assert.fail(`${what}: cryo inspect ${r.signal ? `died of ${r.signal}` : r.error ? `failed: ${r.error.message}` : `exited ${r.status} without a message`}; input kept as ${keep}`);
  }
  if (r.status === 0) JSON.parse(r.stdout); // harmless damage still gives valid JSON
}

async function smallImage(): Promise<string> {
  const prog = fixture('img_counter.c', { name: 'img_counter' });
  const dir = tmp('cryo-fuzz-');
  const out = join(dir, 'out.txt');
  const p = start(prog, ['1000', out, '3000']);
  await waitFor(() => lines(out).length > 3, 10_000, 'output');
  const img = join(dir, 'base.cryo');
  const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
  assert.equal(d.status, 0, d.stderr);
  await exited(p);
  return img;
}

describe('damaged images', () => {
  test('specific damage gives specific messages', async () => {
    const img = await smallImage();
    const base = readFileSync(img);
    const dir = tmp('cryo-fuzz-');
    const f = join(dir, 'x.cryo');
    const check = (b: Buffer, re: RegExp) => {
      writeFileSync(f, b);
      const r = runInspect(f);
      assert.equal(r.status, 1, `expected failure for ${re}`);
      assert.match(r.stderr, re);
    };
    check(base.subarray(0, base.length - 100), /truncated image/);
    check(base.subarray(0, 10), /too short/);
    const v2 = Buffer.from(base);
    v2.writeUInt32LE(2, 8);
    check(v2, /version 2; this cryo reads version 1/);
    const magic = Buffer.from(base);
    magic[0] = 0x7f;
    check(magic, /not a cryo image/);
    const flip = Buffer.from(base);
    flip[metaStart(flip) + 40] ^= 0x10;
    check(flip, /checksum mismatch/);
    const data = Buffer.from(base);
    data[4096 + 100] ^= 1;
    check(data, /pages section checksum mismatch/);
    writeFileSync(f, '');
    assert.equal(runInspect(f).status, 1);
    assert.equal(runInspect(join(dir, 'missing.cryo')).status, 1);
    assert.match(runInspect(join(dir, 'missing.cryo')).stderr, /No such file/);
  });

  test('CRC32C as documented: the check value, and images re-checksummed here are accepted (hardware and table code)', async () => {
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    const img = await smallImage();
    const b = readFileSync(img);
    const again = Buffer.from(b);
    fixChecksums(again);
    assert.ok(again.equals(b), 'the checksums this test computes are the ones cryo wrote');
    for (const soft of ['0', '1']) {
      const r = spawnSync(cryoBin, ['inspect', img], { encoding: 'utf8', env: { ...process.env, CRYO_CRC_SOFT: soft } });
      assert.equal(r.status, 0, `CRYO_CRC_SOFT=${soft}: ${r.stderr}`);
    }
  });

  test('mutation loop: never a crash, never a hang', async () => {
    const img = await smallImage();
    const base = readFileSync(img);
    const dir = tmp('cryo-fuzz-');
    const f = join(dir, 'm.cryo');
    const rounds = Number(process.env.CRYO_FUZZ_ROUNDS ?? 1500);
    let failures = 0;
    for (let i = 0; i < rounds; i++) {
      const m = mutate(base, i % 2 === 1);
      writeFileSync(f, m);
      const r = runInspect(f);
      if (r.status === 1) failures++;
      judge(f, m, `round ${i}`);
    }
    assert.ok(failures > rounds / 2, `most mutations are detected (${failures}/${rounds})`);
  });

  test('kept regression inputs still fail cleanly', () => {
    if (!existsSync(regressions)) return;
    for (const name of readdirSync(regressions)) {
      if (!name.endsWith('.cryo')) continue;
      const dir = tmp('cryo-fuzz-');
      const f = join(dir, name);
      copyFileSync(join(regressions, name), f);
      judge(f, readFileSync(f), name);
    }
  });
});
