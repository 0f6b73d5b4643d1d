// The shortcuts a cold lookup takes must not change what later questions see: DIEs read one at a
// time (name index offsets) stay the same objects once the unit's tree is built, with their
// children linked once; functionAt's walk without the tree finds what the tree walk finds; line
// tables keep exact addresses of sequences placed above 2^53 (tombstones).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { executableTarget, Program } from '../../adapter/symbols';
import { Die, DW } from '../../adapter/symbols/dwarf';
import { parseLineTable } from '../../adapter/symbols/line';
import { inRanges } from '../../adapter/symbols/module';
import type { DwarfSections } from '../../adapter/symbols/dwarf';

test('DIEs read alone, subtrees, then the whole tree: one Die per offset, children linked once', () => {
  for (const [src, fn, flags] of [['sym_cpp.cc', 'geo::Rect::area', ['-O0', '-g']], ['sym_opt.c', 'work', ['-O2', '-g']]] as [string, string, string[]][]) {
    const p = new Program(executableTarget(buildFixture(src, { flags })));
    const m = p.exe;
    const [d] = m.functionsNamed(fn);
    assert.ok(d, fn);
    assert.equal(d.cu.treeBuilt, false, 'the lookup did not build the tree');
    const kids = d.children;                    // builds the function's subtree only
    assert.ok(kids.length > 0, `${fn} has children`);
    const grandKids = kids.map((k) => k.children.map((g) => g.offset));
    for (const k of kids) assert.equal(k.parent, d);
    const inTree = d.cu.allDies();              // now the whole unit
    assert.equal(d.cu.dieAt(d.offset), d, 'same Die object after the tree is built');
    assert.deepEqual(d.children.map((k) => k.offset), kids.map((k) => k.offset), 'children not duplicated');
    assert.deepEqual(d.children.map((k) => k.children.map((g) => g.offset)), grandKids);
    assert.equal(new Set(inTree).size, inTree.length);
    assert.ok(d.parent, 'parent known from the tree');
    assert.ok(d.parent!.children.includes(d));
  }
});

test('functionAt without the DIE tree finds the last covering subprogram of the tree walk', () => {
  for (const [src, flags] of [['sym_cpp.cc', ['-O0', '-g']], ['sym_names.cc', ['-O0', '-g']], ['sym_opt.c', ['-O2', '-g']], ['sym_templates.cc', ['-O2', '-g']]] as [string, string[]][]) {
    const bin = buildFixture(src, { flags });
    const lazy = new Program(executableTarget(bin)).exe;
    const full = new Program(executableTarget(bin)).exe;
    const d = full.dwarf!;
    // functions of classes inside functions (lambdas) only where no other covers the address
    const walk = (die: Die, a: bigint, found: { d?: Die }, deep = false) => {
      for (const ch of die.children) {
        if (ch.tag === DW.TAG_subprogram) { if (inRanges(ch.ranges(), a)) found.d = ch; if (deep) walk(ch, a, found, deep); }
        else if ([DW.TAG_namespace, DW.TAG_structure_type, DW.TAG_class_type, DW.TAG_lexical_block].includes(ch.tag as never)) walk(ch, a, found, deep);
      }
    };
    let checked = 0;
    for (const cu of d.units) {
      for (const [lo, hi] of cu.dieRanges(cu.unitDie)) {
        for (let a = lo; a < hi; a++) {
          const found: { d?: Die } = {};
          const u = d.unitForAddr(a);
          if (!u) continue;
          u.allDies();
          walk(u.unitDie, a, found);
          if (!found.d) walk(u.unitDie, a, found, true);
          assert.equal(lazy.functionAt(a)?.offset, found.d?.offset, `${src} 0x${a.toString(16)}`);
          checked++;
        }
      }
    }
    assert.ok(checked > 40, `${src}: ${checked} addresses`);
  }
});

/** A DWARF 4 line program with the given opcodes after a minimal header (one file "a.c"). */
function lineProgram(ops: number[]): DwarfSections {
  const std = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1]; // lengths of opcodes 1..12 (opcode_base 13)
  const hdr = [1 /* min inst */, 1 /* max ops */, 1 /* default is_stmt */, 0xfb /* line_base -5 */, 14 /* line_range */, 13, ...std, 0 /* no dirs */, ...Buffer.from('a.c\0'), 0, 0, 0, 0 /* end of files */];
  const body = [...hdr, ...ops];
  const b = Buffer.alloc(4 + 2 + 4 + body.length);
  b.writeUInt32LE(2 + 4 + body.length, 0);
  b.writeUInt16LE(4, 4);
  b.writeUInt32LE(hdr.length, 6);
  Buffer.from(body).copy(b, 10);
  return { line: b } as unknown as DwarfSections;
}
const setAddress = (a: bigint) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(a); return [0, 9, 2, ...b]; };
const endSeq = [0, 1, 1];

test('line tables: exact addresses above 2^53, sequences, discriminator rows', () => {
  const tomb = 0xffffffffffffff00n;
  const s = lineProgram([
    ...setAddress(0x1000n), 0x01 /* copy: line 1 */, 0x03, 4 /* advance_line +4 */, 0x02, 0x10 /* advance_pc 16 */, 0x01,
    0x20 /* special: address +1, line +0 */, 0x02, 0x20 /* advance_pc 32 */, ...endSeq,
    ...setAddress(tomb), 0x01, 0x02, 0x08, 0x01, ...endSeq,
    ...setAddress(0x2000n), 0x03, 0x7f /* line -1: 0 */, 0x01, 0x03, 0x09, 0x02, 0x04, 0x01, ...endSeq,
  ]);
  const t = parseLineTable(s, 0, '/src', 'a.c');
  const rows = Array.from({ length: t.count }, (_, i) => t.row(i));
  const seq1 = rows.slice(0, rows.findIndex((r) => r.endSeq) + 1);
  assert.deepEqual(seq1.map((r) => [r.addr, r.line, r.endSeq]), [[0x1000n, 1, false], [0x1010n, 5, false], [0x1011n, 5, false], [0x1031n, 5, true]]);
  const big = rows.filter((r) => r.addr >= 1n << 53n);
  assert.deepEqual(big.map((r) => r.addr), [tomb, tomb + 8n, tomb + 8n], 'tombstone sequence kept exact');
  const seqs = t.sequences();
  assert.equal(seqs.start.length, 3);
  assert.deepEqual([...seqs.sorted], [1, 1, 1]);
  assert.equal(t.files[1], '/src/a.c');
});
