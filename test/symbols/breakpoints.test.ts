// Breakpoint addresses (`break FILE:LINE` for every line, `break FUNC` for every function),
// compared with gdb on the binary before it runs (link-time addresses).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildFixture, BuildOptions, fixturesDir } from '../helpers/fixtures';
import { executableTarget, Program } from '../../adapter/symbols';
import { gdbRun } from './harness';

/** Runs gdb's `break` for each spec; returns spec -> sorted addresses ([] when gdb refused). */
function gdbBreaks(bin: string, specs: string[]): Map<string, bigint[]> {
  const cmds: string[] = [];
  specs.forEach((s, i) => cmds.push(`echo \\n@@B ${i}\\n`, `break ${s}`));
  cmds.push('echo \\n@@INFO\\n', 'info breakpoints');
  const out = gdbRun(bin, cmds);
  const secs = out.split(/\n@@/).slice(1);
  const num = new Map<number, number>(); // bp number -> spec index
  let info = '';
  for (const sec of secs) {
    const m = /^B (\d+)\n([\s\S]*)$/.exec(sec);
    if (m) { const b = /Breakpoint (\d+) at/.exec(m[2]); if (b) num.set(Number(b[1]), Number(m[1])); }
    else if (sec.startsWith('INFO')) info = sec;
  }
  const res = new Map<string, bigint[]>(specs.map((s) => [s, []]));
  for (const line of info.split('\n')) {
    const m = /^(\d+)(?:\.\d+)?\s.*?\s(0x[0-9a-f]+)\s+in\s/.exec(line);
    if (!m) continue;
    const idx = num.get(Number(m[1]));
    if (idx === undefined) continue;
    res.get(specs[idx])!.push(BigInt(m[2]));
  }
  for (const v of res.values()) v.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return res;
}

function hexes(a: bigint[]): string { return a.map((x) => '0x' + x.toString(16)).join(' '); }

function compareFixture(sources: string[], build: BuildOptions & { main: string }, functions: string[]): void {
  const bin = buildFixture(build.main, build);
  const specs: string[] = [];
  for (const src of sources) {
    const n = readFileSync(join(fixturesDir, src), 'utf8').split('\n').length;
    for (let l = 1; l <= n; l++) specs.push(`${src}:${l}`);
  }
  specs.push(...functions);
  const gdb = gdbBreaks(bin, specs);
  const prog = new Program(executableTarget(bin));
  const diffs: string[] = [];
  let compared = 0;
  for (const s of specs) {
    const colon = s.lastIndexOf(':');
    const isLine = colon > 0 && /^\d+$/.test(s.slice(colon + 1));
    const ours = (isLine ? prog.lineBreakpoints(s.slice(0, colon), Number(s.slice(colon + 1))) : prog.functionBreakpoints(s)).map((b) => b.addr).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const theirs = gdb.get(s)!;
    if (!theirs.length) continue; // gdb refused (no code at or after the line)
    compared++;
    if (hexes(ours) !== hexes(theirs)) diffs.push(`${s}: ours [${hexes(ours)}] gdb [${hexes(theirs)}]`);
  }
  assert.ok(compared > 10, `compared ${compared} breakpoints`);
  assert.deepEqual(diffs, [], diffs.join('\n'));
}

test('C -O0 PIE: every line and function of sym_basic.c', () => {
  compareFixture(['sym_basic.c'], { main: 'sym_basic.c' }, ['add', 'compute', 'main']);
});

test('two files, static functions of the same name: sym_lines.c + sym_lines_util.c', () => {
  compareFixture(['sym_lines.c', 'sym_lines_util.c'], { main: 'sym_lines.c', extra: ['sym_lines_util.c'] }, ['helper', 'step', 'util_scale', 'main']);
});

test('DWARF 4 and non-PIE', () => {
  compareFixture(['sym_dwarf4.c'], { main: 'sym_dwarf4.c', flags: ['-O0', '-gdwarf-4'] }, ['weigh', 'main']);
  compareFixture(['sym_nopie.c'], { main: 'sym_nopie.c', flags: ['-O0', '-g', '-no-pie'] }, ['apply', 'mul', 'sub', 'main']);
});

test('C++ templates and methods: every instance is a location', () => {
  compareFixture(['sym_templates.cc'], { main: 'sym_templates.cc' }, ['clampv', 'Box<int>::twice', 'main']);
  compareFixture(['sym_cpp.cc'], { main: 'sym_cpp.cc' }, ['total_area', 'biggest', 'geo::Rect::area', 'main']);
});

test('-O2: inlined functions get a location per inlined instance', () => {
  compareFixture(['sym_opt.c'], { main: 'sym_opt.c', flags: ['-O2', '-g'] }, ['work', 'leaf', 'main', 'scale', 'accumulate']);
  compareFixture(['sym_types.c'], { main: 'sym_types.c', flags: ['-O2', '-g'] }, ['inspect', 'plus', 'main']);
});
