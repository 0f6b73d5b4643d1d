// The demo of what exists so far: a real C program run under the engine, frozen in
// a checkpoint mid-run, run to its end, then brought back to the checkpoint and run
// to the end again, with the same output and exit status, and the costs measured.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../adapter/engine';
import { symbolAddress } from '../test/helpers/elf';
import { buildFixture } from '../test/helpers/fixtures';

async function main(): Promise<void> {
  const prog = buildFixture('counter.c');
  const dir = mkdtempSync(join(tmpdir(), 'cryo-demo-'));
  const out = join(dir, 'out.txt');
  const N = 8;
  console.log(`cryo demo — engine ${Session.version()}`);
  console.log(`program: ${prog} ${N} ${out}  (counts to ${N}, writing each step to a file)`);

  const s = new Session();
  try {
    const { pid } = s.launch({ program: prog, args: [String(N), out] });
    console.log(`launched pid ${pid}, stopped before its first instruction`);
    const tick = symbolAddress(pid, prog, 'tick');
    s.insertBreakpoint(tick);
    console.log(`breakpoint at tick() = 0x${tick.toString(16)}`);

    let hits = 0;
    let cp = 0;
    for (;;) {
      s.continue();
      const e = await s.waitStop();
      if (e.kind !== 'stopped') {
        console.log(`program ended: ${e.kind} ${e.kind === 'exited' ? e.code : ''}`);
        break;
      }
      hits++;
      if (hits === 4) {
        const t0 = process.hrtime.bigint();
        cp = s.checkpoint();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        console.log(`hit ${hits}: checkpoint ${cp} taken in ${ms.toFixed(2)} ms (file so far: ${readFileSync(out, 'utf8').split('\n').length - 1} lines)`);
      }
    }
    const first = readFileSync(out, 'utf8');
    s.removeBreakpoint(tick);

    const t0 = process.hrtime.bigint();
    const newPid = s.restore(cp);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`restored checkpoint ${cp} as pid ${newPid} in ${ms.toFixed(2)} ms: rip 0x${s.registers(newPid).rip.toString(16)}, back in tick()`);
    s.continue();
    const end = await s.waitStop();
    console.log(`program ended again: ${end.kind} ${end.kind === 'exited' ? end.code : ''}`);
    const second = readFileSync(out, 'utf8');

    const bare = spawnSync(prog, [String(N), join(dir, 'bare.txt')]);
    const bareOut = readFileSync(join(dir, 'bare.txt'), 'utf8');
    console.log('\noutput file after the restored run:');
    process.stdout.write(second.replace(/^(?=.)/gm, '  | '));
    console.log(`\nidentical to the first run: ${first === second}; to a run without the debugger: ${second === bareOut}`);
    console.log(`exit status without the debugger: ${bare.status}`);
    if (first !== second || second !== bareOut) process.exitCode = 1;
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
