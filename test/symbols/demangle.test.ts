// The C++ demangler against c++filt (binutils) on real symbol tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { buildFixture } from '../helpers/fixtures';
import { demangle, ElfFile } from '../../adapter/symbols';

/** [ours, c++filt] for every mangled name of a file. Names using std::string-like abbreviations
 * (Ss, Si, So, Sd) are left out: gdb prints them short, c++filt in full. */
function compare(path: string): { total: number; bad: string[] } {
  const names = [...new Set(new ElfFile(path).symbols().map((s) => s.name).filter((n) => n.startsWith('_Z') && !/S[sido]/.test(n)))];
  const ref = execFileSync('c++filt', { input: names.join('\n'), encoding: 'utf8', maxBuffer: 1 << 28 }).split('\n');
  const bad: string[] = [];
  names.forEach((n, i) => { const d = demangle(n); if (d !== ref[i]) bad.push(`${n}\n  ours ${d}\n  c++filt ${ref[i]}`); });
  return { total: names.length, bad };
}

test('demangles the symbols of the C++ fixtures like c++filt (all of the program\'s own)', () => {
  for (const src of ['sym_cpp.cc', 'sym_templates.cc']) {
    const r = compare(buildFixture(src));
    assert.ok(r.total > 3, `${src}: ${r.total} symbols`);
    // the program's own names exactly; library template internals (pack expressions) mostly
    const own = r.bad.filter((b) => !/std::|__gnu_cxx::/.test(b.split('\n')[2] ?? ''));
    assert.deepEqual(own, [], own.join('\n'));
    assert.ok(r.bad.length / r.total < 0.03, `${r.bad.length} of ${r.total} differ:\n${r.bad.slice(0, 5).join('\n')}`);
  }
});

test('demangles libstdc++ like c++filt (at least 99%)', () => {
  const lib = '/usr/lib/x86_64-linux-gnu/libstdc++.so.6';
  if (!existsSync(lib)) return;
  const r = compare(lib);
  assert.ok(r.total > 1000);
  assert.ok(r.bad.length / r.total < 0.01, `${r.bad.length} of ${r.total} differ:\n${r.bad.slice(0, 10).join('\n')}`);
});
