// cryo run --on-crash: the image of a crash says what gdb says about the same crash
// (signal, code, faulting address, pc), and the program exits exactly as it would.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { gdbBatch } from '../helpers/gdb';
import { assertNoImageProcesses, fixture, cleanupDirs, cryo, ensureBuilt, inspectJson, shellStatus, tmp } from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

interface Region {
  start: bigint;
  end: bigint;
  offset: bigint;
  path: string;
}

/** An address as "file+offset", comparable across runs whatever ASLR did. */
function where(addr: bigint, regions: Region[]): string {
  const r = regions.find((x) => x.start <= addr && addr < x.end);
  if (!r) return `0x${addr.toString(16)} (unmapped)`;
  return `${r.path.startsWith('[') ? r.path : basename(r.path)}+0x${(addr - r.start + r.offset).toString(16)}`;
}

function gdbCrash(prog: string, mode: string) {
  const out = gdbBatch(
    prog,
    ['run', 'p/x $pc', 'p $_siginfo.si_signo', 'p $_siginfo.si_code', 'p/x $_siginfo._sifields._sigfault.si_addr', 'info proc mappings'],
    [mode],
  );
  const vals = [...out.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);
  const regions: Region[] = [];
  for (const m of out.matchAll(/^\s*0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)\s+(?:[-rwxsp]{4}\s+)?(\S*)\s*$/gm))
    regions.push({ start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), offset: BigInt('0x' + m[3]), path: m[4] });
  assert.ok(regions.length > 5, `gdb listed the mappings:\n${out}`);
  return { pc: BigInt(vals[0]), signo: Number(vals[1]), code: Number(vals[2]), addr: BigInt(vals[3]), regions };
}

const cases = [
  { mode: 'null', signal: 'SIGSEGV', signo: 11, addrIsPc: false },
  { mode: 'abort', signal: 'SIGABRT', signo: 6, addrIsPc: false },
  { mode: 'div', signal: 'SIGFPE', signo: 8, addrIsPc: true },
];

describe('cryo run --on-crash', () => {
  for (const c of cases) {
    test(`${c.mode}: ${c.signal} image matches gdb's view of the crash`, () => {
      const prog = fixture('img_crash.c', { name: 'img_crash' });
      const dir = tmp();
      const bare = spawnSync(prog, [c.mode], { encoding: 'utf8' });
      const r = spawnSync(join(__dirname, '..', '..', 'native', 'build', 'cryo'), ['run', '--on-crash', dir, '--', prog, c.mode], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(shellStatus(r), shellStatus(bare), `same exit status as a bare run; stderr: ${r.stderr}`);
      assert.equal(shellStatus(r), 128 + c.signo);
      assert.equal(r.stdout, bare.stdout, 'stdio untouched');
      const files = readdirSync(dir);
      assert.equal(files.length, 1, `one image: ${files}`);
      assert.match(files[0], new RegExp(`^${basename(prog)}\\.\\d+\\.\\d{8}T\\d{6}Z\\.cryo$`));
      const j = inspectJson(join(dir, files[0]));
      assert.equal(j.reason.kind, 'crash');
      assert.equal(j.reason.signal, c.signo);
      assert.equal(j.reason.signal_name, c.signal);

      const g = gdbCrash(prog, c.mode);
      assert.equal(g.signo, c.signo);
      assert.equal(j.reason.code, g.code, 'si_code');
      const regions: Region[] = j.mappings.map((m) => ({ start: BigInt(m.start), end: BigInt(m.end), offset: BigInt(m.offset), path: m.path }));
      assert.equal(where(BigInt(j.reason.pc!), regions), where(g.pc, g.regions), 'pc');
      if (c.signo === 6) {
        assert.equal(j.reason.address, null, 'abort has no fault address');
      } else if (c.addrIsPc) {
        assert.equal(where(BigInt(j.reason.address!), regions), where(g.addr, g.regions), 'fault address');
      } else {
        assert.equal(BigInt(j.reason.address!), g.addr, 'fault address');
      }
      const text = cryo(['inspect', join(dir, files[0])]);
      assert.match(text.stdout, new RegExp(`reason: crash in thread \\d+: ${c.signal}`));
    });
  }

  test('a program that exits normally writes nothing and keeps its exit code', () => {
    const prog = fixture('img_counter.c', { name: 'img_counter' });
    const dir = tmp();
    const r = spawnSync(join(__dirname, '..', '..', 'native', 'build', 'cryo'), ['run', '--on-crash', dir, '--', prog, '20', '-', '0'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(r.status, (190 % 256));
    assert.match(r.stdout, /^iteration 0 total 0\n/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('usage errors exit 2', () => {
    assert.equal(cryo(['run']).status, 2);
    assert.equal(cryo(['run', '--on-crash']).status, 2);
    assert.equal(cryo(['run', '--on-crash', '/nonexistent-dir', '--', 'true']).status, 2);
  });
});
