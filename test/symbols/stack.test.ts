// Stacks, arguments and locals at a stop, compared with gdb on a core dumped at that stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { buildFixture } from '../helpers/fixtures';
import { checkAllThreads, checkPrints, checkStop, gdbRun, markerLine, parseBacktrace, stopAt, Stop } from './harness';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildDir } from '../helpers/fixtures';
import { CoreFile, Program } from '../../adapter/symbols';

function run(stop: Stop, f: (s: Stop) => void): void {
  try { f(stop); } finally { stop.close(); }
}

function expectSame(stop: Stop, opts?: Parameters<typeof checkStop>[1]): void {
  const diffs = checkStop(stop, opts);
  assert.deepEqual(diffs, [], `differences from gdb:\n${diffs.join('\n')}\n--- gdb bt:\n${stop.sections.get('BT')}`);
}

const at = (src: string, marker: string) => `${src}:${markerLine(src, marker)}`;

test('C, -O0, DWARF 5, PIE: nested calls, loop block locals', () => {
  const bin = buildFixture('sym_basic.c');
  const globals = ['counter', 'ratio', 'greeting', 'table'];
  run(stopAt(bin, at('sym_basic.c', 'add'), { prints: globals }), (s) => {
    assert.equal(s.stack[0].function, 'add');
    expectSame(s);
    // globals and file statics of the frame's unit, as `print NAME` shows them
    const ours = new Map(s.program.globalsOf(s.stack[0]).map((v) => [v.name, s.program.format(v.value, true)]));
    globals.forEach((g, i) => assert.equal(ours.get(g), s.sections.get(`PRINT ${i}`)!.trim().replace(/^\$\d+ = /, ''), g));
  });
});

test('C structs, unions, enums, bitfields, arrays, typedefs, pointers', () => {
  const bin = buildFixture('sym_types.c');
  run(stopAt(bin, at('sym_types.c', 'inspect')), (s) => expectSame(s));
});

test('recursion with structs by value (bt shows ... for aggregates)', () => {
  const bin = buildFixture('sym_recurse.c');
  run(stopAt(bin, at('sym_recurse.c', 'fact_base')), (s) => {
    assert.equal(s.frames.length, 6);
    expectSame(s);
  });
});

test('DWARF 4 (-gdwarf-4)', () => {
  const bin = buildFixture('sym_dwarf4.c', { flags: ['-O0', '-gdwarf-4'] });
  run(stopAt(bin, at('sym_dwarf4.c', 'weigh')), (s) => expectSame(s));
});

test('non-PIE executable', () => {
  const bin = buildFixture('sym_nopie.c', { flags: ['-O0', '-g', '-no-pie'] });
  run(stopAt(bin, at('sym_nopie.c', 'apply')), (s) => {
    assert.equal(s.program.exe.bias, 0n);
    expectSame(s);
  });
});

test('signal handler: the stack runs through the signal frame to the faulting frame', () => {
  const bin = buildFixture('sym_signal.c');
  run(stopAt(bin, at('sym_signal.c', 'handler'), { pre: ['handle SIGSEGV nostop noprint pass'] }), (s) => {
    assert.ok(s.stack[1].signalFrame, 'frame 1 is the signal frame');
    assert.equal(s.stack[2].function, 'crash');
    expectSame(s);
  });
});

test('stack through libc (qsort callback) with libc6-dbg debug info', () => {
  const bin = buildFixture('sym_libc.c');
  run(stopAt(bin, at('sym_libc.c', 'by_key')), (s) => {
    const libc = s.program.modules.find((m) => basename(m.path).startsWith('libc.so'));
    assert.ok(libc, 'libc is among the modules');
    expectSame(s);
  });
});

test('C++: class hierarchy, references, std::string, std::vector, std::map', () => {
  const bin = buildFixture('sym_cpp.cc');
  run(stopAt(bin, at('sym_cpp.cc', 'rect_area')), (s) => {
    assert.equal(s.stack[0].function, 'geo::Rect::area');
    expectSame(s);
  });
});

test('C++ template instances', () => {
  const bin = buildFixture('sym_templates.cc');
  run(stopAt(bin, at('sym_templates.cc', 'twice')), (s) => expectSame(s));
});

test('-O2: inlined frames, location lists, entry values, optimized out', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-g'] });
  run(stopAt(bin, at('sym_opt.c', 'scale')), (s) => {
    assert.ok(s.stack[0].inlined && s.stack[1].inlined, 'scale and accumulate are inline frames');
    expectSame(s);
  });
  run(stopAt(bin, at('sym_opt.c', 'leaf')), (s) => expectSame(s));
});

test('-O2 with DWARF 4 location lists (.debug_loc)', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-gdwarf-4'], name: 'sym_opt_dw4' });
  run(stopAt(bin, at('sym_opt.c', 'scale')), (s) => expectSame(s));
});

test('shared library linked at start', () => {
  const lib = buildFixture('sym_libshape.c', { shared: true });
  const bin = buildFixture('sym_libmain.c', { libs: [lib] });
  const exprs = ['lib_tls', '&lib_tls', 'lib_counter', 'r->w * r->h'];
  run(stopAt(bin, at('sym_libshape.c', 'lib_area'), { extra: ['info sharedlibrary'], prints: exprs }), (s) => {
    const d = checkPrints(s, exprs);
    assert.deepEqual(d, [], d.join('\n'));
    assert.ok(s.program.modules.some((m) => m.path === lib), 'library found through link_map');
    expectSame(s);
    // every library gdb lists is one of ours
    const listed = s.sections.get('EXTRA 0')!.split('\n').map((l) => /(\/\S+)$/.exec(l)?.[1]).filter((x): x is string => !!x && !x.endsWith(':'));
    for (const p of listed) assert.ok(s.program.modules.some((m) => m.path === p), `module ${p}`);
  });
});

test('library loaded with dlopen (stop inside it), loader breakpoint address', () => {
  const plugin = buildFixture('sym_plugin.c', { shared: true });
  const bin = buildFixture('sym_dlopen.c', { libs: ['-ldl'] });
  run(stopAt(bin, at('sym_plugin.c', 'plugin_run'), { args: [plugin], prints: ['&_dl_debug_state', 'plugin_state'] }), (s) => {
    assert.ok(s.program.modules.some((m) => m.path === plugin), 'plugin found through link_map');
    expectSame(s);
    const addr = /0x[0-9a-f]+/.exec(s.sections.get('PRINT 0')!)![0];
    assert.equal(s.program.loaderBreakAddress(), BigInt(addr));
  });
});

test('dlopen: libraries re-read from link_map before and after the load', () => {
  const plugin = buildFixture('sym_plugin.c', { shared: true });
  const bin = buildFixture('sym_dlopen.c', { libs: ['-ldl'] });
  run(stopAt(bin, at('sym_dlopen.c', 'before_dlopen'), { args: [plugin] }), (s) => {
    assert.ok(!s.program.modules.some((m) => m.path === plugin), 'plugin not loaded yet');
    assert.ok(s.program.loaderBreakAddress() !== undefined);
    expectSame(s);
  });
  const exprs = ['run', '*run', 'h != 0', 'argv[1][0]'];
  run(stopAt(bin, at('sym_dlopen.c', 'after_dlsym'), { args: [plugin], prints: exprs }), (s) => {
    assert.ok(s.program.refreshLibraries().some((m) => m.path === plugin), 'plugin found after dlopen');
    expectSame(s);
    const diffs = checkPrints(s, exprs);
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
});

test('threads: every thread of the core unwinds like gdb (through start_thread and clone3)', () => {
  const bin = buildFixture('sym_threads.c', { libs: ['-lpthread'] });
  run(stopAt(bin, at('sym_threads.c', 'worker'), { extra: ['thread apply all bt'] }), (s) => {
    assert.ok(s.core.threads.length >= 2, 'several threads in the core');
    expectSame(s);
    const diffs = checkAllThreads(s, 'EXTRA 0');
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
});

test('C++ at -O2: inlined STL, values in xmm registers, location lists', () => {
  const bin = buildFixture('sym_cpp.cc', { flags: ['-O2', '-g'], name: 'sym_cpp_O2' });
  run(stopAt(bin, at('sym_cpp.cc', 'rect_area')), (s) => expectSame(s));
  const b2 = buildFixture('sym_basic.c', { flags: ['-O2', '-g'], name: 'sym_basic_O2' });
  run(stopAt(b2, at('sym_basic.c', 'add')), (s) => expectSame(s));
});

test('post-mortem: uncaught C++ exception (SIGABRT through libc and libstdc++ without debug info)', () => {
  const bin = buildFixture('sym_crash.cc');
  run(stopAt(bin, ''), (s) => {
    assert.equal(s.core.signal, 6, 'the core records SIGABRT');
    assert.ok(s.stack.some((f) => f.function === 'withdraw'));
    expectSame(s);
  });
});

test('at the first instruction (before the loader ran): ld.so from the mappings, loader break address', () => {
  const bin = buildFixture('sym_basic.c');
  const dir = join(buildDir, `sym-cores-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const core = join(dir, 'starti.core');
  const out = gdbRun(bin, ['starti', 'echo \\n@@P\\n', 'print &_dl_debug_state', 'echo \\n@@BT\\n', 'bt 1', `gcore ${core}`, 'kill']);
  const c = new CoreFile(core);
  try {
    const p = new Program(c.target(bin));
    const want = BigInt(/0x[0-9a-f]+/.exec(out.split('@@P\n')[1])![0]);
    assert.equal(p.loaderBreakAddress(), want);
    assert.ok(p.modules.some((m) => m.path.includes('ld-linux')), 'ld.so among the modules');
    const top = parseBacktrace(out.split('@@BT\n')[1])[0];
    const f = p.backtrace(c.threads[0].regs)[0];
    assert.equal(f.pc, top.pc);
    assert.equal(f.function, top.func);
  } finally { c.close(); rmSync(core, { force: true }); }
});

test('locals of less common C types (long double, complex, wide strings, bitfields over 32 bits)', () => {
  const bin = buildFixture('sym_values.c');
  run(stopAt(bin, at('sym_values.c', 'show')), (s) => expectSame(s));
});

test('C++ locals: enum class, virtual bases, shared_ptr, list, unordered_map, optional, vector<bool>, lambdas', () => {
  const bin = buildFixture('sym_cppvalues.cc');
  run(stopAt(bin, at('sym_cppvalues.cc', 'use')), (s) => expectSame(s));
});

test('vDSO: the stack passes through clock_gettime in the vDSO (read from memory)', () => {
  const bin = buildFixture('sym_vdso.c');
  run(stopAt(bin, 'elapsed_ns', { after: ['break __vdso_clock_gettime', 'continue'] }), (s) => {
    assert.ok(s.program.modules.some((m) => m.path === '[vdso]'), 'vDSO module');
    expectSame(s);
  });
});

test('two Programs side by side keep their own declarations and static members', () => {
  const a = stopAt(buildFixture('sym_cpp.cc'), at('sym_cpp.cc', 'rect_area'), { frames: 0 });
  const b = stopAt(buildFixture('sym_cpp.cc', { flags: ['-O2', '-g'], name: 'sym_cpp_O2' }), at('sym_cpp.cc', 'rect_area'), { frames: 0 });
  try {
    // format a's values after b was created: statics come from a's own memory
    const va = a.program.format(a.program.evaluate('*this', a.stack[0], a.stack), true);
    const vb = b.program.format(b.program.evaluate('*this', b.stack[0], b.stack), true);
    assert.match(va, /static next_id = 3/);
    assert.match(vb, /static next_id = 3/);
    assert.equal(a.program.format(a.program.evaluate('*this', a.stack[0], a.stack), true), va);
  } finally { a.close(); b.close(); }
});

test('DWARF 5 type units (-fdebug-types-section): C and C++', () => {
  run(stopAt(buildFixture('sym_types.c', { flags: ['-O0', '-g', '-fdebug-types-section'], name: 'sym_types_tu' }), at('sym_types.c', 'inspect')), (s) => expectSame(s));
  const exprs = ['*this', '(geo::Shape *)this', 'sizeof(geo::Rect)', 'name_', 'geo::Shape::next_id'];
  run(stopAt(buildFixture('sym_cpp.cc', { flags: ['-O0', '-g', '-fdebug-types-section'], name: 'sym_cpp_tu' }), at('sym_cpp.cc', 'rect_area'), { prints: exprs }), (s) => {
    expectSame(s);
    const d = checkPrints(s, exprs);
    assert.deepEqual(d, [], d.join('\n'));
  });
});

test('DWARF 4 type units (.debug_types)', () => {
  run(stopAt(buildFixture('sym_types.c', { flags: ['-O0', '-gdwarf-4', '-fdebug-types-section'], name: 'sym_types_tu4' }), at('sym_types.c', 'inspect')), (s) => expectSame(s));
  const exprs = ['*this', '(geo::Shape *)this', 'sizeof(geo::Rect)', 'name_'];
  run(stopAt(buildFixture('sym_cpp.cc', { flags: ['-O0', '-gdwarf-4', '-fdebug-types-section'], name: 'sym_cpp_tu4' }), at('sym_cpp.cc', 'rect_area'), { prints: exprs }), (s) => {
    expectSame(s);
    const d = checkPrints(s, exprs);
    assert.deepEqual(d, [], d.join('\n'));
  });
});

test('split DWARF: stacks, locals and expressions from .dwo files', () => {
  run(stopAt(buildFixture('sym_basic.c', { flags: ['-O0', '-g', '-gsplit-dwarf'], name: 'sym_basic_split' }), at('sym_basic.c', 'add'), { prints: ['counter', 'table', 'ratio'] }), (s) => {
    expectSame(s);
    const d = checkPrints(s, ['counter', 'table', 'ratio']);
    assert.deepEqual(d, [], d.join('\n'));
  });
  run(stopAt(buildFixture('sym_opt.c', { flags: ['-O2', '-g', '-gsplit-dwarf'], name: 'sym_opt_split' }), at('sym_opt.c', 'scale')), (s) => expectSame(s));
});
