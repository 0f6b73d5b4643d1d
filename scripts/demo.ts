// The demo of what exists so far:
//  1. a real C program run under the engine, frozen in a checkpoint mid-run, run to its
//     end, then brought back to the checkpoint and run to the end again, with the same
//     output and exit status, and the costs measured;
//  2. a crash in the field: the program run under `cryo run --on-crash --checkpoint-every`,
//     its crash image read back through the debugger's own symbols (the stack at the
//     crash), the same image exported as an ELF core that gdb reads, and the recorded
//     last moments replayed from a checkpoint to the same fault.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Image, Session } from '../adapter/engine';
import { ImageTarget } from '../adapter/image';
import { Program } from '../adapter/symbols';
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

/** Part 2: a crash captured with its last moments, opened on "the developer's machine". */
async function fieldCrash(): Promise<void> {
  const prog = buildFixture('img_bundle.c');
  const cryo = join(__dirname, '..', 'native', 'build', 'cryo');
  const dir = mkdtempSync(join(tmpdir(), 'cryo-demo-crash-'));
  try {
    const data = join(dir, 'data.bin');
    writeFileSync(data, Buffer.alloc(4096, 42));
    const rounds = 30;
    const input = Array.from({ length: rounds }, (_, i) => `line ${i}`).join('\n') + '\n';
    console.log(`\n--- a crash in the field: cryo run --on-crash DIR --checkpoint-every 20 --keep 3 -- ${prog.split('/').pop()}`);
    const r = spawnSync(cryo, ['run', '--on-crash', dir, '--checkpoint-every', '20', '--keep', '3', '--', prog, data, String(rounds)], { input, encoding: 'utf8' });
    console.log(`exit status ${r.status} (the program's own: 128+SIGSEGV); ${r.stderr.trim().split('\n').pop()}`);
    const file = readdirSync(dir).find((f) => f.endsWith('.cryo'));
    if (!file) throw new Error('no crash image was written');
    const path = join(dir, file);

    const img = new Image(path);
    try {
      const info = img.describe();
      const t = new ImageTarget(img);
      const p = new Program(t);
      const crash = info.reason.kind === 'crash' ? info.reason : undefined;
      console.log(`image: ${crash?.signal_name} (${crash?.code_name}) at ${crash?.address} in thread ${crash?.tid}; ${img.history().length} checkpoints of the last moments kept`);
      const stack = p.backtrace(t.dwarfRegisters(t.threads()[0]), 4);
      console.log('the stack at the crash, read from the image by the debugger\'s symbols:');
      for (const f of stack) console.log(`  #${f.index} ${f.function ?? '??'}(${p.frameArgs(f, stack)})${f.source ? ` at ${f.source.file.split('/').pop()}:${f.source.line}` : ''}`);

      const core = join(dir, 'crash.core');
      execFileSync(cryo, ['export-core', path, '-o', core], { stdio: 'ignore' });
      const bt = execFileSync('gdb', ['-nx', '-batch', '-ex', 'bt 2', prog, core], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      console.log('gdb on the same image exported as an ELF core (cryo export-core):');
      // (gdb prints frame #0 when it loads the core, then the backtrace)
      process.stdout.write([...new Set(bt.split('\n').filter((l) => l.startsWith('#')))].map((l) => `  ${l}\n`).join(''));

      // the last moments: the oldest checkpoint revived, the recorded inputs replayed
      const cp = img.openCheckpoint(0);
      const s = new Session();
      try {
        const t0 = process.hrtime.bigint();
        const live = s.revive(cp, { stdin: { mode: 'null' }, stdout: { mode: 'null' }, stderr: { mode: 'null' } });
        s.replayLog(img.log());
        s.continue();
        const e = await s.waitStop();
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const same = e.kind === 'stopped' && e.reason === 'signal' && s.registers(e.tid).rip === BigInt(crash?.pc ?? 0);
        console.log(`replayed from the oldest checkpoint (revived as pid ${live.pid}) to ${e.kind === 'stopped' ? `signal ${e.signo}` : e.kind} in ${ms.toFixed(0)} ms: the same fault at the same pc: ${same}`);
        if (!same) process.exitCode = 1;
      } finally {
        await s.close();
        cp.close();
      }
    } finally {
      img.close();
    }
    console.log('(in VS Code: open the .cryo file, Debug, then Step Back from the crash)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main()
  .then(() => fieldCrash())
  .catch((e) => {
  console.error(`demo failed: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
});
