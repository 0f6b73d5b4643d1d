// The unwinder at every instruction: single-step through prologues, bodies, epilogues and
// returns, comparing the whole stack with gdb's at each step.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { checkStepping } from './harness';

function same(diffs: string[]): void {
  assert.deepEqual(diffs.slice(0, 30), [], diffs.slice(0, 30).join('\n'));
}

test('-O0: stepping through add and back into compute', () => {
  same(checkStepping(buildFixture('sym_basic.c'), '*add', 40));
});

test('-O2: stepping through frameless leaf code and inlined functions', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-g'] });
  same(checkStepping(bin, '*work', 45));
  same(checkStepping(bin, '*leaf', 25));
});

test('C++: stepping through a virtual method and its caller', () => {
  same(checkStepping(buildFixture('sym_cpp.cc'), '*total_area', 40));
});

test('C++ through PLT stubs into libstdc++ (name@plt, functions without debug information)', () => {
  same(checkStepping(buildFixture('sym_crash.cc'), '*withdraw', 60));
});

test('signal handler: stepping inside the handler (stack through the signal frame)', () => {
  same(checkStepping(buildFixture('sym_signal.c'), '*handler', 20));
});

test('.debug_frame only (no .eh_frame): stepping with CFI from the debug sections', () => {
  const bin = buildFixture('sym_recurse.c', { flags: ['-O1', '-g', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-fomit-frame-pointer'], name: 'sym_recurse_dbgframe' });
  same(checkStepping(bin, '*fact', 40));
});

test('-O2 C++ templates (constants kept as bytes) and a callback called from libc', () => {
  same(checkStepping(buildFixture('sym_templates.cc', { flags: ['-O2', '-g'], name: 'sym_templates_O2' }), '*main', 40));
  same(checkStepping(buildFixture('sym_libc.c'), '*by_key', 30));
});
