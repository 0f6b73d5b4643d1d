// Entry values (`x@entry`, DW_OP_entry_value) compared with gdb 13 at the same stops: bt (its
// `x=x@entry=V` / `x=V, x@entry=E`), info args, info locals and `print x@entry`, for parameters
// in registers, on the stack (DW_OP_fbreg), behind references (DW_AT_call_data_value), in
// location lists that keep only the entry value, in xmm registers (typed DWARF stack), across
// tail calls, indirect calls and chains of call sites; at -O1 and -O2, DWARF 5 and DWARF 4
// (DW_TAG_GNU_call_site). Stops are also reached by stepping (stepi, step, next).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { checkPrints, checkStepping, checkStop, stopAt } from './harness';

const BUILDS: Record<string, string[]> = {
  O1: ['-O1', '-g'],
  O2: ['-O2', '-g'],
  O1_dw4: ['-O1', '-gdwarf-4'],
  O2_dw4: ['-O2', '-gdwarf-4'],
  // arguments stored with mov rather than push: GCC then describes the stack ones at call sites
  O2_acc: ['-O2', '-g', '-maccumulate-outgoing-args'],
};

const bin = (build: string) => buildFixture('sym_entry.cc', { flags: BUILDS[build], name: `sym_entry_${build}` });

interface StopCase {
  /** sym_entry.cc stops in consume() with this tag */
  tag: number;
  /** gdb's frame the prints are evaluated in */
  frame: number;
  prints: string[];
  /** what gdb shows for that frame's arguments in bt: the fixture must still exercise the case */
  shows?: (build: string) => RegExp | undefined;
}

const STOPS: StopCase[] = [
  { tag: 1, frame: 1, prints: ['x@entry', 'y@entry', 'x', 'y'], shows: () => /^x=x@entry=5, y=y@entry=11$/ },
  { tag: 2, frame: 1, prints: ['a@entry', 'f@entry', 'g@entry', 'h@entry', 'g', 'h'], shows: (b) => (b === 'O2_acc' ? /g=g@entry=5, h=h@entry=8$/ : /g=5, h=8$/) },
  { tag: 4, frame: 1, prints: ['x@entry', 'x'], shows: () => /^x=70, x@entry=10$/ },
  { tag: 5, frame: 1, prints: ['r@entry', 'r', 'k@entry', 'r@entry + 1', '&r@entry', '*&r@entry'], shows: () => /^r=@0x[0-9a-f]+: 11, r@entry=@0x[0-9a-f]+: 10, k=k@entry=1$/ },
  { tag: 6, frame: 1, prints: ['r@entry', 'r'], shows: () => /^r=@0x[0-9a-f]+: 11, tag=tag@entry=6$/ },
  { tag: 10, frame: 1, prints: ['r@entry', 'r'], shows: () => /^r=r@entry=@0x[0-9a-f]+: 7, / },
  { tag: 7, frame: 1, prints: ['v@entry', 'v'], shows: () => /^v=v@entry=6$/ },
  { tag: 7, frame: 2, prints: ['x@entry', 'x'], shows: () => /^x=x@entry=5$/ },
  { tag: 8, frame: 2, prints: ['x@entry', 'x'], shows: () => /^x=x@entry=6$/ },
  { tag: 9, frame: 1, prints: ['n@entry', 'n'] },
  { tag: 11, frame: 0, prints: ['v@entry', 'tag@entry'], shows: () => /^v=v@entry=5, tag=tag@entry=11$/ },
  { tag: 12, frame: 1, prints: ['v@entry', 'f@entry'] },
  { tag: 13, frame: 1, prints: ['n@entry', 'n'], shows: (b) => (b.startsWith('O2') ? /^n=<optimized out>$/ : undefined) },
  { tag: 14, frame: 1, prints: ['d@entry', 'f@entry', 'tag@entry', 'd', 'f'], shows: () => /^d=2.5, f=f@entry=2.5, tag=tag@entry=14$/ },
];

for (const build of Object.keys(BUILDS)) {
  test(`entry values at each scenario's stop (${BUILDS[build].join(' ')})`, () => {
    const b = bin(build);
    const diffs: string[] = [];
    for (const c of STOPS) {
      const s = stopAt(b, `consume if tag == ${c.tag}`, { prints: c.prints, printFrame: c.frame });
      try {
        const want = c.shows?.(build);
        if (want) assert.match(s.frames[c.frame].args, want, `tag ${c.tag}: gdb's bt ${s.frames[c.frame].raw}`);
        diffs.push(...[...checkStop(s), ...checkPrints(s, c.prints, c.frame)].map((d) => `tag ${c.tag}: ${d}`));
      } finally { s.close(); }
    }
    assert.deepEqual(diffs, [], diffs.join('\n'));
  });
}

// at every instruction of a scenario: locations move from the entry register to saved
// registers, the stack and entry-value-only ranges; frames above see their callers' call sites
const PARAMS = ['x@entry', 'y@entry', 'r@entry', 'v@entry', 'n@entry', 'g@entry', 'd@entry', 'f@entry', 'x', 'y', 'n', 'v', 'f'];

function same(diffs: string[]): void {
  assert.deepEqual(diffs.slice(0, 30), [], diffs.slice(0, 30).join('\n'));
}

test('stepping by instruction through every scenario at -O2 (DWARF 5)', () => {
  const b = bin('O2');
  for (const fn of ['gap', 'many', 'changed', 'bump', 'hop', 'outer', 'apply', 'scaled']) same(checkStepping(b, `*${fn}`, 16, [], { prints: PARAMS }));
});

test('stepping by instruction at -O1 and with DWARF 4 call sites (DW_TAG_GNU_call_site)', () => {
  for (const build of ['O1', 'O2_dw4']) {
    const b = bin(build);
    for (const fn of ['gap', 'bump', 'hop', 'scaled']) same(checkStepping(b, `*${fn}`, 16, [], { prints: PARAMS }));
  }
});

test('sym_recurse at -O1: step and next through fact show n=n@entry=N as gdb does', () => {
  for (const flags of [['-O1', '-g'], ['-O1', '-gdwarf-4']]) {
    const b = buildFixture('sym_recurse.c', { flags, name: `sym_recurse_${flags.join('').replace(/-/g, '')}` });
    // stops short of printf: stepping into libc is compared elsewhere
    same(checkStepping(b, 'fact', 28, [], { command: 'step', prints: ['n@entry', 'n', 'track@entry', 'a@entry'] }));
    same(checkStepping(b, 'fact', 12, [], { command: 'next', prints: ['n@entry', 'n'] }));
  }
});
