// Address -> file, line and line range, compared with gdb's `info line *ADDR` on every
// byte of the fixture's own code (before the program runs: link-time addresses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { buildFixture, BuildOptions } from '../helpers/fixtures';
import { ElfFile, executableTarget, Program } from '../../adapter/symbols';
import { gdbRun } from './harness';

function compareLines(src: string, opts: BuildOptions, funcs: string[]): void {
  const bin = buildFixture(src, opts);
  const elf = new ElfFile(bin);
  const addrs: bigint[] = [];
  for (const f of funcs) {
    const s = elf.symbolsByName(f)[0];
    assert.ok(s, `symbol ${f}`);
    for (let a = s.value; a < s.value + BigInt(s.size); a++) addrs.push(a);
  }
  const out = gdbRun(bin, addrs.map((a) => `info line *0x${a.toString(16)}`));
  const lines = out.split('\n').filter((l) => /^(Line|No line)/.test(l));
  assert.equal(lines.length, addrs.length, 'one answer per address');
  const prog = new Program(executableTarget(bin));
  const diffs: string[] = [];
  lines.forEach((l, i) => {
    const a = addrs[i];
    const ours = prog.lineRange(a);
    const m = /^Line (\d+) of "([^"]+)"\s+starts at address (0x[0-9a-f]+).*? and ends at (0x[0-9a-f]+)/.exec(l);
    if (!m) {
      if (/^No line/.test(l) && ours) diffs.push(`0x${a.toString(16)}: gdb "${l}" ours line ${ours.line}`);
      return;
    }
    const want = `${m[1]} ${basename(m[2])} ${m[3]} ${m[4]}`;
    const got = ours ? `${ours.line} ${basename(ours.file)} 0x${ours.start.toString(16)} 0x${ours.end.toString(16)}` : 'none';
    if (want !== got) diffs.push(`0x${a.toString(16)}: ours ${got} gdb ${want}`);
  });
  assert.deepEqual(diffs.slice(0, 20), [], diffs.slice(0, 20).join('\n'));
}

test('address -> line on every byte (-O0, DWARF 5)', () => {
  compareLines('sym_basic.c', {}, ['add', 'compute', 'main']);
});

test('address -> line on every byte (-O2: is_stmt, inlined code)', () => {
  compareLines('sym_opt.c', { flags: ['-O2', '-g'] }, ['work', 'leaf', 'main']);
});

test('address -> line on every byte (DWARF 4, C++)', () => {
  compareLines('sym_templates.cc', { flags: ['-O0', '-gdwarf-4'], name: 'sym_templates_dw4' }, ['main', '_ZNK3BoxIiE5twiceEv']);
});

test('function bounds, sections and source files', () => {
  const bin = buildFixture('sym_basic.c');
  const prog = new Program(executableTarget(bin));
  const elf = new ElfFile(bin);
  for (const name of ['add', 'compute', 'main']) {
    const s = elf.symbolsByName(name)[0];
    const b = prog.functionBounds(s.value + 3n)!;
    assert.deepEqual([b.name, b.start, b.end, b.hasDebugInfo], [name, s.value, s.value + BigInt(s.size), true]);
    assert.equal(prog.sectionAt(s.value), '.text');
  }
  const start = elf.symbolsByName('_start')[0];
  assert.equal(prog.functionBounds(start.value)?.hasDebugInfo, false);
  const plt = elf.section('.plt');
  if (plt) assert.equal(prog.sectionAt(plt.addr), '.plt');
  assert.ok(prog.sourceFiles().some((f) => f.endsWith('/sym_basic.c')));
});
