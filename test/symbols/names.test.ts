// Function names gdb takes from DWARF rather than from the symbol table (lambdas and what is
// instantiated with them have no linkage name), and names it shows with their parameters
// (std::function's, ref-qualified methods), compared with gdb 13 on the same binary.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildFixture } from '../helpers/fixtures';
import { executableTarget, Program } from '../../adapter/symbols';
import { checkPrints, checkStop, gdbRun, markerLine, parseBacktrace, stopAt } from './harness';

const at = (src: string, marker: string) => `${src}:${markerLine(src, marker)}`;

test('inside a lambda called through std::function: every frame named as gdb names it', () => {
  const bin = buildFixture('sym_names.cc');
  const s = stopAt(bin, at('sym_names.cc', 'lambda'), { prints: ['add'], printFrame: 5 });
  try {
    assert.equal(s.frames[0].func, 'operator()', 'gdb names the lambda by its DWARF name');
    assert.ok(s.frames.some((f) => /_Function_handler<int\(int\), run\(int\)::<lambda\(int\)> >::_M_invoke\(const std::_Any_data &, int &&\)/.test(f.func)));
    // `print add` shows the handlers by their DWARF names with parameters
    const diffs = [...checkStop(s), ...checkPrints(s, ['add'], 5)];
    assert.deepEqual(diffs, [], diffs.join('\n'));
  } finally { s.close(); }
});

test('every function the program runs: the name gdb shows for it in a frame', () => {
  const bin = buildFixture('sym_names.cc');
  // gdb stops once in each function (rbreak), printing the pc and the innermost frame
  const cmds = ['rbreak ^[^_]', 'rbreak ^_[^_]', 'run'];
  for (let i = 0; i < 300; i++) cmds.push('echo \\n@@HIT\\n', 'p/x $pc', 'bt 1', 'delete $_hit_bpnum', 'continue');
  const out = gdbRun(bin, cmds);
  const p = new Program(executableTarget(bin));
  const diffs: string[] = [];
  let compared = 0;
  for (const hit of out.split('\n@@HIT\n').slice(1)) {
    const pc = /^\$\d+ = (0x[0-9a-f]+)/m.exec(hit);
    const f = parseBacktrace(hit)[0];
    if (!pc || !f) continue;
    // gdb runs the program at a load bias; our Program reads the file at its link addresses
    const bias = p.exe.elf.type === 3 ? 0x555555554000n : 0n;
    const addr = BigInt(pc[1]) - bias;
    if (!p.exe.contains(addr) || f.func.endsWith('@plt')) continue;
    const ours = p.backtrace(new Map([[16, addr], [7, 0n]]), 1)[0]?.function;
    compared++;
    if (ours !== f.func) diffs.push(`0x${addr.toString(16)}\n   ours ${ours}\n   gdb  ${f.func}`);
  }
  assert.ok(compared > 60, `compared ${compared} functions:\n${out.slice(0, 2000)}`);
  assert.deepEqual(diffs, [], diffs.join('\n'));
});
