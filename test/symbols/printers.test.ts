// libstdc++ pretty printers beyond the basics (variant, any, function, array, set/multiset,
// multimap, string_view) and entry values (`x@entry=`), compared with gdb 13 at the same stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { valueChildren } from '../../adapter/symbols';
import { checkPrints, checkStop, markerLine, stopAt, Stop } from './harness';

function run(stop: Stop, f: (s: Stop) => void): void {
  try { f(stop); } finally { stop.close(); }
}

const at = (src: string, marker: string) => `${src}:${markerLine(src, marker)}`;

const STL_VARS = ['v_int', 'v_str', 'v_vec', 'v_bad', 'a_int', 'a_str', 'a_vec', 'a_none', 'f_empty', 'f_ptr',
  'arr', 'arr0', 'sarr', 'st', 'sst', 'mm', 'mm_empty', 'ms', 'sv', 'sv_empty', 'sv_long'];

test('libstdc++ printers: variant, any, function, array, set, multimap, multiset, string_view (print and info locals)', () => {
  const bin = buildFixture('sym_stl.cc');
  run(stopAt(bin, at('sym_stl.cc', 'use'), { prints: STL_VARS, frames: 2 }), (s) => {
    // main's locals are followed by the source line of the `frame 0` before the prints: not compared
    const diffs = [...checkStop(s, { skipVars: [1] }), ...checkPrints(s, STL_VARS)];
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
});

test('std::function holding a lambda: its handlers by the names gdb builds from DWARF', () => {
  const bin = buildFixture('sym_stl.cc');
  run(stopAt(bin, at('sym_stl.cc', 'use'), { prints: ['g_lam', 'f_ptr'], frames: 0 }), (s) => {
    assert.match(s.sections.get('PRINT 0')!, /_M_manager = 0x[0-9a-f]+ <std::_Function_handler<int\(int\), use\(int\)::<lambda\(int\)> >::_M_manager\(/);
    const diffs = checkPrints(s, ['g_lam', 'f_ptr']);
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
});

test('libstdc++ printers: children for a variables view are what gdb prints for each part', () => {
  const bin = buildFixture('sym_stl.cc');
  // what gdb prints for the parts a printer's children show
  const prints = ['*(int*)&v_int._M_u._M_first._M_storage', '*(std::string*)&v_str._M_u._M_rest._M_first._M_storage', 'std::get<1>(v_vec)[1]',
    '*(int*)&a_int._M_storage._M_buffer', '*(std::string*)a_str._M_storage._M_ptr', '((std::vector<int>*)a_vec._M_storage._M_ptr)->size()'];
  run(stopAt(bin, at('sym_stl.cc', 'use'), { prints, frames: 0 }), (s) => {
    const f = s.stack[0];
    const want = (i: number) => s.sections.get(`PRINT ${i}`)!.trim().replace(/^\$\d+ = /, '');
    const kids = (expr: string) => valueChildren(s.program.evaluate(expr, f, s.stack)).map((c) => `${c.name}=${s.program.format(c.value)}`);
    assert.deepEqual(kids('v_int'), [`[contained value]=${want(0)}`]);
    assert.deepEqual(kids('v_str'), [`[contained value]=${want(1)}`]);
    // a contained value with a printer of its own shows that printer's children (the vector's elements)
    assert.deepEqual(kids('v_vec'), ['[0]=1', '[1]=2']);
    assert.deepEqual(kids('v_bad'), []);
    assert.deepEqual(kids('a_int'), [`[contained value]=${want(3)}`]);
    assert.deepEqual(kids('a_str'), [`[contained value]=${want(4)}`]);
    assert.deepEqual(kids('a_vec'), ['[0]=5', '[1]=6']);
    assert.deepEqual(kids('a_none'), []);
  });
});

test('entry values at -O2: bt shows x=x@entry=V as gdb does, and x@entry evaluates', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-g'] });
  const prints = ['a@entry', 'b@entry', 'a@entry + b@entry', 'c@entry'];
  run(stopAt(bin, at('sym_opt.c', 'leaf'), { prints }), (s) => {
    assert.match(s.frames[0].args, /a=a@entry=/, 'gdb shows entry values here');
    const diffs = [...checkStop(s), ...checkPrints(s, prints)];
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
  run(stopAt(bin, at('sym_opt.c', 'scale')), (s) => {
    assert.match(s.frames[1].args, /n=n@entry=/);
    const diffs = checkStop(s);
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
});
