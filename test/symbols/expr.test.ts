// Expressions (watch, hover, conditions) compared with gdb's `print` at the same stop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { ExpressionError, hasChildren, valueChildren } from '../../adapter/symbols';
import { checkPrints, markerLine, stopAt } from './harness';

const C_EXPRS = [
  "counts",
  "long_text",
  "&long_text[10]",
  "*counts@3",
  "long_text[5]@30",
  "/x u",
  "/x big",
  "/x small",
  "/x c",
  "/x flag",
  "/x col",
  "/x f",
  "/x d",
  "/x *m",
  "/x buf",
  "/x local_arr",
  "/x pp",
  "/x p",
  "/x m->b",
  "/x -1",
  "m->as_int",
  "m->as_bytes",
  "global_mixed.names",
  "global_mixed.names[1]",
  "m->ok",
  "*m->weights@2",
  "m->weights[1]@2",
  "points[0]@3",
  "*points@2",
  "p.x@2",
  "u@0",
  "5@2",
  "zeros[1] + 1@2",
  "tls_value",
  "tls_value * 2",
  "&tls_value == &tls_value",
  "*m",
  "m->pos",
  "m->pos.x + 1",
  "m->weights",
  "m->weights[1]",
  "m->num",
  "m->num.bytes",
  "m->b",
  "m->b.b",
  "m->name",
  "m->op",
  "m->range",
  "m->range.hi",
  "m->tag",
  "list",
  "*list",
  "list->next->next->value",
  "*list->next",
  "list->next->next->next",
  "p",
  "p.x + p.y * 2",
  "local_arr",
  "local_arr[2]",
  "local_arr[1][1]",
  "&local_arr[1][1]",
  "&local_arr[1]",
  "buf",
  "buf[0]",
  "&buf",
  "zeros",
  "u",
  "u > 10 && c == 'Q'",
  "u * 2 - 100",
  "-small",
  "~small",
  "small / 3",
  "small % 7",
  "small << 2",
  "big",
  "big * 2",
  "(long)big / 3",
  "big < 0",
  "f",
  "f * 2",
  "d",
  "d + f",
  "f > 3",
  "flag",
  "!flag",
  "c",
  "c + 1",
  "(char)65",
  "(unsigned char)300",
  "col",
  "col == BLUE",
  "(enum color)1",
  "(enum color)5",
  "fl",
  "(enum flags)2",
  "(enum flags)3",
  "(enum flags)8",
  "BLUE",
  "GREEN + 1",
  "pp",
  "*pp",
  "pp->y",
  "pl",
  "*pl",
  "(*pl)->next",
  "**pl",
  "vp",
  "(struct mixed *)vp",
  "((struct mixed *)vp)->name",
  "*(struct mixed *)vp",
  "empty",
  "*empty",
  "sizeof(struct mixed)",
  "sizeof(point_t)",
  "sizeof m->weights",
  "sizeof(int)",
  "(point_t *)m",
  "global_mixed",
  "global_mixed.name",
  "points",
  "points[1]",
  "points[1].y * points[2].x",
  "&points[2]",
  "&points[0].y",
  "message",
  "long_array",
  "plus",
  "&plus",
  "*plus",
  "m->op == plus",
  "10 / 3",
  "10 % 4",
  "10.0 / 4",
  "1.5e3",
  "'A'",
  "\"str\"",
  "1 == 1",
  "3 > 4",
  "-5 / 2",
  "0x10 + 010",
  "4294967295",
  "4294967296",
  "-1U",
  "1 << 40",
  "1L << 40",
  "2147483647 + 1",
  "nosuch",
  "m->nosuch",
  "p->x",
  "m.tag",
  "*u",
  "&u",
  "&*pp",
  "&m->pos",
  "m + 1",
  "&points[1] - &points[0]",
  "local_arr + 1",
  "*local_arr",
  "1 +",
  "(1",
  "1 / 0",
  "$rip == $pc",
  "$sp",
  "buf[1] == 'b'",
  "m->weights[0] == 0.5",
];

const CXX_METHOD_EXPRS = [
  "*this",
  "this",
  "this->w_",
  "w_",
  "w_ * h_",
  "h_ > w_",
  "name_",
  "id_",
  "next_id",
  "geo::Shape::next_id",
  "this->name_",
  "a",
  "a > 1.0",
  "1 == 1",
  "*(geo::Shape *)this",
  "(geo::Rect *)this",
  "sizeof(geo::Rect)",
  "nosuch",
  "this->nosuch",
];

const CXX_STL_EXPRS = [
  "shapes",
  "shapes[0]",
  "inv",
  "inv.counts",
  "inv.names",
  "inv.owner",
  "inv.ratios",
  "hits",
  "hits + 1",
  "sum",
  "*shapes._M_impl._M_start",
  "shapes._M_impl._M_start[1]",
  "inv.owner._M_string_length",
  "&hits",
];

function same(bin: string, spec: string, exprs: string[], args: string[] = []): void {
  const s = stopAt(bin, spec, { prints: exprs, frames: 0, args });
  try {
    const diffs = checkPrints(s, exprs);
    assert.deepEqual(diffs, [], diffs.join('\n'));
  } finally { s.close(); }
}

test('C expressions: members, indexing, pointers, casts, arithmetic, comparisons, errors', () => {
  const bin = buildFixture('sym_types.c');
  same(bin, `sym_types.c:${markerLine('sym_types.c', 'inspect')}`, C_EXPRS);
});

test('C expressions at -O2 (registers, location lists)', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-g'] });
  same(bin, `sym_opt.c:${markerLine('sym_opt.c', 'leaf')}`, ['a', 'b', 'c', 'a * b', 'a + b > 100', 'sink', '$rip == $pc', 'nosuch']);
});

test('C++ expressions in a method: this, implicit members, statics, casts', () => {
  const bin = buildFixture('sym_cpp.cc');
  same(bin, `sym_cpp.cc:${markerLine('sym_cpp.cc', 'rect_area')}`, CXX_METHOD_EXPRS);
});

test('C++ expressions on references and libstdc++ containers', () => {
  const bin = buildFixture('sym_cpp.cc');
  same(bin, 'total_area', CXX_STL_EXPRS);
});

test('expression errors say what is wrong and where', () => {
  const bin = buildFixture('sym_types.c');
  const s = stopAt(bin, `sym_types.c:${markerLine('sym_types.c', 'inspect')}`, { frames: 0 });
  try {
    const f = s.stack[0];
    const err = (e: string): ExpressionError => {
      try { s.program.evaluate(e, f, s.stack); } catch (x) { assert.ok(x instanceof ExpressionError, `${e}: ${(x as Error).message}`); return x; }
      assert.fail(`${e} evaluated without error`);
    };
    assert.equal(err('p.x + nosuch').column, 6);
    assert.match(err('p.x + nosuch').message, /No symbol "nosuch"/);
    assert.equal(err('m->pos.zz').column, 7);
    assert.equal(err('1 + (2').column, 6);
    assert.match(err('u = 3').message, /Assignment is not supported/);
    assert.match(err('plus(1, 2)').message, /Calling functions is not supported/);
    assert.match(err('*u').message, /Cannot access memory at address 0x2a/);
    assert.match(err('u / 0').message, /Division by zero/);
  } finally { s.close(); }
});

test('expressions in outer frames (registers and CFA unwound)', () => {
  const bin = buildFixture('sym_basic.c');
  const spec = `sym_basic.c:${markerLine('sym_basic.c', 'add')}`;
  const f1 = ['n', 'label', 'total', 'i', 'sq', 'calls', 'label[0]', 'n * 2 + total', '$pc', '$sp', 'add', 'counter'];
  const s1 = stopAt(bin, spec, { prints: f1, frames: 0, printFrame: 1 });
  try { const d = checkPrints(s1, f1, 1); assert.deepEqual(d, [], d.join('\n')); } finally { s1.close(); }
  const f2 = ['name', 'argc', 'argv[0]', '*argv@argc', 'result', 'sizeof name', 'name[0] == \'b\''];
  const s2 = stopAt(bin, spec, { prints: f2, frames: 0, printFrame: 2 });
  try { const d = checkPrints(s2, f2, 2); assert.deepEqual(d, [], d.join('\n')); } finally { s2.close(); }
});

test('-O2 expressions in inlined and outer frames (entry values, location lists)', () => {
  const bin = buildFixture('sym_opt.c', { flags: ['-O2', '-g'] });
  const spec = `sym_opt.c:${markerLine('sym_opt.c', 'scale')}`;
  for (const [frame, exprs] of [[1, ['v', 'n', 's', 'i', 'v[0]', 'v[1] + n', 'sink']], [2, ['v', 'n', 'out', 'r', '*v@n', 'sink']], [3, ['data', 'v', 'n', 'r', 'argc', 'data[5]']]] as [number, string[]][]) {
    const s = stopAt(bin, spec, { prints: exprs, frames: 0, printFrame: frame });
    try { const d = checkPrints(s, exprs, frame); assert.deepEqual(d, [], `frame ${frame}:\n${d.join('\n')}`); } finally { s.close(); }
  }
});

test('less common C values: long double, complex, __int128, wide characters, flexible arrays, qualifiers', () => {
  const exprs = ["ld", "z", "big", "ubig", "wc", "ws", "c16", "c32", "sg", "unknown", "w", "fp->items[2]", "*fp", "grid", "grid[1]", "sh", "names", "arr", "parr", "*parr", "mtx", "mtx[1]", "ci", "cp", "*cp", "handlers", "pp", "*pp", "fnp", "ld * 2", "big >> 90", "sizeof(matrix)", "(long)ld"];
  same(buildFixture('sym_values.c'), `sym_values.c:${markerLine('sym_values.c', 'show')}`, exprs);
});

test('C++ values: enum class, multiple and virtual inheritance, smart pointers, list, unordered_map, optional, pair, member pointers', () => {
  const exprs = ["dq", "stk", "q", "tup", "wstr", "mode", "mode == outer::inner::Mode::Auto", "(int)mode", "multi", "multi.b1 + multi.b2 + multi.m", "dia", "dia.v", "dia.l + dia.r", "up", "sp", "wp", "lst", "umap", "st", "arr", "arr._M_elems[2]", "pr", "pr.first", "pr.second", "opt", "none", "bits", "nested", "nested[1]", "nested[1][1]", "mv", "pm", "pt", "ppt->x", "rppt", "*rppt", "rr", "rr + 1", "lam", "sizeof(Point)"];
  same(buildFixture('sym_cppvalues.cc'), `sym_cppvalues.cc:${markerLine('sym_cppvalues.cc', 'use')}`, exprs);
});

test('children for a variables view match gdb printing each part', () => {
  const bin = buildFixture('sym_types.c');
  const parts = ['p.x', 'p.y', 'local_arr[0]', 'local_arr[2]', '*m', 'm->pos', 'm->b', 'm->num', '*list', 'list->next'];
  const s = stopAt(bin, `sym_types.c:${markerLine('sym_types.c', 'inspect')}`, { prints: parts, frames: 0 });
  try {
    const f = s.stack[0];
    const want = (i: number) => s.sections.get(`PRINT ${i}`)!.trim().replace(/^\$\d+ = /, '');
    const child = (expr: string, name: string) => {
      const c = valueChildren(s.program.evaluate(expr, f, s.stack)).find((x) => x.name === name);
      assert.ok(c, `${expr} has a child ${name}`);
      return s.program.format(c.value, true);
    };
    assert.equal(child('p', 'x'), want(0));
    assert.equal(child('p', 'y'), want(1));
    assert.equal(child('local_arr', '[0]'), want(2));
    assert.equal(child('local_arr', '[2]'), want(3));
    assert.equal(child('m', '*'), want(4));
    assert.equal(child('*m', 'pos'), want(5));
    assert.equal(child('*m', 'b'), want(6));
    assert.equal(child('*m', 'num'), want(7));
    assert.equal(child('list', '*'), want(8));
    assert.equal(child('*list', 'next'), want(9));
    assert.ok(hasChildren(s.program.evaluate('m', f)) && !hasChildren(s.program.evaluate('u', f)));
  } finally { s.close(); }
});

test('libc globals: TLS errno, extern declarations resolved through the symbol table', () => {
  same(buildFixture('sym_libc.c'), `sym_libc.c:${markerLine('sym_libc.c', 'by_key')}`, ['errno', '&errno', 'environ', 'environ[0] != 0', 'program_invocation_short_name']);
});
