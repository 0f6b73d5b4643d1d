// Benchmark of adapter/symbols on a large binary: the sqlite3 amalgamation compiled with -g.
// Measures "address of function X after its prologue" and "file:line -> address" on a fresh
// Program (nothing parsed yet), time and memory, side by side with `gdb -batch`.
// The amalgamation comes from the npm registry (better-sqlite3 ships it), cached in bench/.build.
//   npx tsx bench/symbols.ts [path/to/sqlite3.c]
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { executableTarget, Program } from '../adapter/symbols';

const root = resolve(__dirname, '..');
const dir = join(root, 'bench', '.build', 'sqlite');

function amalgamation(): string {
  const given = process.argv[2];
  if (given) return given;
  const c = join(dir, 'package', 'deps', 'sqlite3', 'sqlite3.c');
  if (existsSync(c)) return c;
  mkdirSync(dir, { recursive: true });
  const tgz = execFileSync('npm', ['pack', 'better-sqlite3', '--silent'], { cwd: dir, encoding: 'utf8' }).trim().split('\n').pop()!;
  execFileSync('tar', ['xzf', tgz, 'package/deps/sqlite3/sqlite3.c', 'package/deps/sqlite3/sqlite3.h'], { cwd: dir });
  return c;
}

function build(src: string, flags: string[], name: string): string {
  const out = join(dir, name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const main = join(dir, 'sqmain.c');
  writeFileSync(main, '#include "sqlite3.h"\n#include <stdio.h>\nint main(void){sqlite3*db;int rc=sqlite3_open(":memory:",&db);printf("%d\\n",rc);sqlite3_close(db);return 0;}\n');
  execFileSync('gcc', [...flags, '-I', resolve(src, '..'), main, src, '-o', out, '-lm', '-lpthread', '-ldl'], { stdio: 'inherit' });
  return out;
}

function ms(t0: bigint): number { return Number(process.hrtime.bigint() - t0) / 1e6; }

function gdbTime(bin: string, cmds: string[]): { ms: number; out: string } {
  const t0 = process.hrtime.bigint();
  const out = execFileSync('gdb', ['-nx', '-batch', ...cmds.flatMap((c) => ['-ex', c]), bin], { encoding: 'utf8' });
  return { ms: ms(t0), out };
}

const src = amalgamation();
const rows: string[][] = [['binary', 'question', 'cryo ms', 'cryo answer', 'gdb ms', 'gdb answer', 'heap MB']];
for (const [name, flags] of [['sqlite-O0', ['-O0', '-g']], ['sqlite-O2', ['-O2', '-g']]] as [string, string[]][]) {
  const bin = build(src, flags, name);
  const questions: [string, (p: Program) => string, string][] = [
    ['break sqlite3_open', (p) => p.functionBreakpoints('sqlite3_open').map((b) => `0x${b.addr.toString(16)} line ${b.line}`).join(', '), 'break sqlite3_open'],
    ['break sqlite3.c:50000', (p) => p.lineBreakpoints('sqlite3.c', 50000).map((b) => `0x${b.addr.toString(16)} line ${b.line}`).join(', '), 'break sqlite3.c:50000'],
  ];
  for (const [q, f, g] of questions) {
    const before = process.memoryUsage().heapUsed;
    const t0 = process.hrtime.bigint();
    const p = new Program(executableTarget(bin));
    const ans = f(p);
    const t = ms(t0);
    const heap = (process.memoryUsage().heapUsed - before) / 1e6;
    const gd = gdbTime(bin, [g]);
    const gm = /at (0x[0-9a-f]+): (?:file \S+, line (\d+)|\S+:(\d+)\. \((\d+) locations\))/.exec(gd.out);
    const gans = gm ? (gm[2] ? `${gm[1]} line ${gm[2]}` : `${gm[4]} locations, first ${gm[1]} line ${gm[3]}`) : gd.out.trim();
    const n = ans.split(', ').length;
    const short = n > 1 ? `${n} locations, first ${ans.split(', ')[0]}` : ans;
    rows.push([name, q, t.toFixed(1), short, gd.ms.toFixed(1), gans, heap.toFixed(1)]);
  }
}
const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
for (const r of rows) console.log(r.map((c, i) => c.padEnd(w[i])).join('  '));
