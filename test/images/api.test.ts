// The image reader through libcryo's C ABI, as the adapter will call it (koffi): the
// JSON description, thread registers and xsave, memory as the image holds it, and a
// clear status and message for a damaged file.
import assert from 'node:assert/strict';
import { openSync, readFileSync, readSync, writeFileSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import koffi from 'koffi';
import { repoRoot } from '../helpers/fixtures';
import { assertNoImageProcesses, cleanupDirs, cryo, ensureBuilt, exited, fixture, imageLib, inspectJson, start, tmp, waitFor } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

const lib = imageLib;

describe('image reader ABI', () => {
  test('open, describe, registers, xsave and memory', async () => {
    const prog = fixture('img_memory.c', { name: 'img_memory' });
    const p = start(prog, []);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 10_000, 'ready');
    const img = join(tmp(), 'a.cryo');
    assert.equal(cryo(['dump', String(p.pid), '-o', img, '--kill']).status, 0);
    await exited(p);
    const cli = inspectJson(img);

    const L = lib();
    const h = [null];
    assert.equal(L.open(img, h), 0, L.lastError());
    try {
      const s = [null];
      assert.equal(L.json(h[0], s), 0);
      const text = koffi.decode(s[0], 'char', -1) as string;
      L.free(s[0]);
      assert.deepEqual(JSON.parse(text), cli, 'the same description as cryo inspect --json');

      const regs = new BigUint64Array(27);
      assert.equal(L.regs(h[0], p.pid, regs), 0);
      assert.equal('0x' + regs[16].toString(16), cli.threads[0].pc);
      assert.equal(L.regs(h[0], 1, regs), -5, 'no such thread');

      const len = [0];
      const xs = Buffer.alloc(16384);
      assert.equal(L.xstate(h[0], p.pid, xs, xs.length, len), 0);
      assert.ok(Number(len[0]) >= 576);

      // memory: a data run, a zero run, and a clean file page read back from the file
      const fd = openSync(img, 'r');
      try {
        for (const m of cli.mappings) {
          let addr = BigInt(m.start);
          for (const [kind, n, off] of m.runs) {
            if (kind === 'data' || kind === 'zero') {
              const want = Buffer.alloc(4096);
              if (kind === 'data') readSync(fd, want, 0, 4096, off);
              const got = Buffer.alloc(4096);
              const nread = [0];
              assert.equal(L.read(h[0], addr, got, 4096, nread), 0);
              assert.equal(Number(nread[0]), 4096);
              assert.ok(got.equals(want), `${kind} page at 0x${addr.toString(16)}`);
            }
            addr += BigInt(n * 4096);
          }
        }
      } finally {
        closeSync(fd);
      }
      const text0 = cli.mappings.find((m) => m.path === prog && m.perms === 'r--p' && m.offset === '0x0')!;
      const elf = Buffer.alloc(4);
      const nread = [0];
      assert.equal(L.read(h[0], BigInt(text0.start), elf, 4, nread), 0);
      assert.deepEqual(elf, readFileSync(prog).subarray(0, 4), 'a clean file page comes from the file');
      // unmapped memory: a short read, not an error
      assert.equal(L.read(h[0], 0x1000n, elf, 4, nread), 0);
      assert.equal(Number(nread[0]), 0);
    } finally {
      L.close(h[0]);
    }
  });

  test('a damaged image: a status and a message, no handle', () => {
    const L = lib();
    const f = join(tmp(), 'bad.cryo');
    const bad = Buffer.concat([Buffer.from('CRYOIMG\0'), Buffer.alloc(100)]);
    bad.writeUInt32LE(1, 8);
    writeFileSync(f, bad);
    const h = [null];
    assert.equal(L.open(f, h), -2);
    assert.match(L.lastError() as string, /bad\.cryo: corrupt image: header checksum mismatch/);
    assert.equal(h[0], null);
  });
});
