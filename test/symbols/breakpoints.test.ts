// Breakpoint addresses (`break FILE:LINE` for every line, `break FUNC` for every function),
// compared with gdb on the binary before it runs (link-time addresses).
import { test } from 'node:test';
import { buildFixture, BuildOptions } from '../helpers/fixtures';
import { compareBreakpoints, markerLine, stopAt } from './harness';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import { executableTarget, Program } from '../../adapter/symbols';

function compareFixture(sources: string[], build: BuildOptions & { main: string }, functions: string[]): void {
  compareBreakpoints(buildFixture(build.main, build), sources, functions);
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
  compareFixture(['sym_cpp.cc'], { main: 'sym_cpp.cc' }, ['total_area', 'biggest', 'geo::Rect::area', 'geo::Rect::Rect', 'geo::Shape::~Shape', 'Inventory::~Inventory', 'main']);
});

test('-O2: inlined functions get a location per inlined instance', () => {
  compareFixture(['sym_opt.c'], { main: 'sym_opt.c', flags: ['-O2', '-g'] }, ['work', 'leaf', 'main', 'scale', 'accumulate']);
  compareFixture(['sym_types.c'], { main: 'sym_types.c', flags: ['-O2', '-g'] }, ['inspect', 'plus', 'main']);
});

/** A copy of a fixture binary with an accelerator table added by gdb-add-index. */
function withIndex(bin: string, dwarf5: boolean): string {
  const out = `${bin}.${dwarf5 ? 'names' : 'gdbindex'}`;
  if (!existsSync(out)) {
    const tmp = `${out}.tmp${process.pid}`;
    copyFileSync(bin, tmp);
    execFileSync('gdb-add-index', [...(dwarf5 ? ['-dwarf-5'] : []), tmp], { stdio: ['ignore', 'ignore', 'inherit'] });
    renameSync(tmp, out);
  }
  return out;
}

test('.gdb_index and .debug_names: lookups skim only the units the index names', () => {
  for (const dwarf5 of [false, true]) {
    const bin = withIndex(buildFixture('sym_lines.c', { extra: ['sym_lines_util.c'] }), dwarf5);
    const prog = compareBreakpoints(bin, ['sym_lines.c', 'sym_lines_util.c'], ['helper', 'step', 'util_scale', 'main']);
    assert.equal(prog.exe.names.accel?.kind, dwarf5 ? 'debug_names' : 'gdb_index');
    const fresh = new Program(executableTarget(bin));
    assert.equal(fresh.functionBreakpoints('util_scale').length, 1);
    assert.equal(fresh.exe.names.skimmedUnits, 1, 'one unit skimmed for util_scale');
    const cpp = withIndex(buildFixture('sym_cpp.cc'), dwarf5);
    compareBreakpoints(cpp, ['sym_cpp.cc'], ['total_area', 'biggest', 'geo::Rect::area', 'area', 'main']);
  }
});

test('compressed debug sections (-gz) and a separate debug file found through .gnu_debuglink', () => {
  compareBreakpoints(buildFixture('sym_basic.c', { flags: ['-O0', '-g', '-gz'], name: 'sym_basic_gz' }), ['sym_basic.c'], ['add', 'compute', 'main']);
  // strip the debug information into prog.debug beside the stripped program
  const full = buildFixture('sym_lines.c', { extra: ['sym_lines_util.c'], name: 'sym_lines_split' });
  const stripped = `${full}.stripped`;
  if (!existsSync(stripped)) {
    execFileSync('objcopy', ['--only-keep-debug', full, `${full}.debug`]);
    execFileSync('objcopy', ['--strip-debug', `--add-gnu-debuglink=${full}.debug`, full, `${stripped}.tmp`]);
    renameSync(`${stripped}.tmp`, stripped);
  }
  const prog = compareBreakpoints(stripped, ['sym_lines.c', 'sym_lines_util.c'], ['helper', 'step', 'util_scale', 'main']);
  assert.equal(prog.exe.debugElf?.path, `${full}.debug`);
});

test('break FUNC in shared libraries of a running program (libc with separate debug info)', () => {
  const bin = buildFixture('sym_libc.c');
  const funcs = ['qsort', 'malloc', 'printf', 'abort', 'by_key'];
  const s = stopAt(bin, `sym_libc.c:${markerLine('sym_libc.c', 'by_key')}`, {
    frames: 0, extra: [...funcs.map((f) => `break ${f}`), 'info breakpoints'],
  });
  try {
    const info = s.sections.get(`EXTRA ${funcs.length}`)!;
    const byNum = new Map<number, bigint[]>();
    for (const line of info.split('\n')) {
      const m = /^(\d+)(?:\.\d+)?\s.*?\s(0x[0-9a-f]+)\s+in\s/.exec(line);
      if (m) byNum.set(Number(m[1]), [...(byNum.get(Number(m[1])) ?? []), BigInt(m[2])]);
    }
    funcs.forEach((f, i) => {
      const want = (byNum.get(i + 2) ?? []).sort();
      const got = s.program.functionBreakpoints(f).map((b) => b.addr).sort();
      assert.deepEqual(got.map((x) => x.toString(16)), want.map((x) => x.toString(16)), f);
    });
  } finally { s.close(); }
});

test('split DWARF (-gsplit-dwarf: skeleton units and .dwo files)', () => {
  compareFixture(['sym_basic.c'], { main: 'sym_basic.c', flags: ['-O0', '-g', '-gsplit-dwarf'], name: 'sym_basic_split' }, ['add', 'compute', 'main']);
  compareFixture(['sym_opt.c'], { main: 'sym_opt.c', flags: ['-O2', '-g', '-gsplit-dwarf'], name: 'sym_opt_split' }, ['work', 'leaf', 'main', 'scale', 'accumulate']);
});
