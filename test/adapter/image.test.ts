// Images as debug sessions: crash images of real programs opened over DAP, checked
// against gdb on the ELF core that `cryo export-core` makes of the same image; revive
// from an image session, checked against the program's own run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { cleanupDirs, cryo, cryoBin, exited, inspectJson, restoreWait, start, tmp, waitFor } from '../images/common';
import { crashImage as sharedCrashImage } from '../helpers/crashimage.cjs';
import { clientPool, collectOutput } from './dap';

const client = clientPool();
after(cleanupDirs);

/** Runs prog under `cryo run --on-crash`; returns the crash image. */
function crashImage(prog: string, args: string[], cwd?: string): string {
  return sharedCrashImage(cryoBin, tmp('cryo-imgdap-'), prog, args, { cwd });
}

function exportCore(img: string): string {
  const core = img.replace(/\.cryo$/, '.core');
  const r = cryo(['export-core', img, '-o', core]);
  assert.equal(r.status, 0, r.stderr);
  return core;
}

interface GdbFrame {
  level: number;
  name: string;
  file?: string;
  line?: number;
}

/** gdb on PROG CORE: the frames of `bt N`, and `info args`/`info locals` of the frames that have source. */
function gdbOnCore(prog: string, core: string, depth: number): { frames: GdbFrame[]; vars: Map<number, Map<string, string>>; signal: string; pc: string } {
  const frameCmds = Array.from({ length: depth }, (_, i) => [`echo ==F${i}==\\n`, `frame ${i}`, 'info args', 'info locals']).flat();
  const out = gdbBatch(prog, [`core-file ${core}`, 'echo ==BT==\\n', `bt ${depth}`, 'echo ==SIG==\\n', 'p $_siginfo.si_signo', 'p/x $pc', ...frameCmds, 'echo ==END==\\n']);
  const section = (a: string, b: string) => out.slice(out.indexOf(`==${a}==`), out.indexOf(`==${b}==`));
  const frames: GdbFrame[] = [];
  for (const m of section('BT', 'SIG').matchAll(/^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: at (\S+):(\d+))?/gm))
    frames.push({ level: Number(m[1]), name: m[2], file: m[3], line: m[4] ? Number(m[4]) : undefined });
  const vars = new Map<number, Map<string, string>>();
  for (let i = 0; i < depth; i++) {
    const text = section(`F${i}`, i + 1 < depth ? `F${i + 1}` : 'END');
    const m = new Map<string, string>();
    for (const line of text.split('\n')) {
      const x = /^(\w+) = (.*)$/.exec(line.trim());
      if (x) m.set(x[1], x[2]);
    }
    vars.set(i, m);
  }
  const sig = section('SIG', 'F0');
  return { frames, vars, signal: /\$1 = (\d+)/.exec(sig)?.[1] ?? '', pc: /\$2 = (0x[0-9a-f]+)/.exec(sig)?.[1] ?? '' };
}

async function openImage(dc: DebugClient, image: string, extra: Record<string, unknown> = {}): Promise<DebugProtocol.StoppedEvent> {
  await dc.initializeRequest();
  const initialized = dc.waitForEvent('initialized');
  const launched = dc.launch({ image, ...extra });
  await Promise.race([initialized, launched]); // a refused image answers without `initialized`
  // one stopped event per thread; the crashing thread's comes last
  const stops: DebugProtocol.StoppedEvent[] = [];
  dc.on('stopped', (e: DebugProtocol.StoppedEvent) => stops.push(e));
  await dc.configurationDoneRequest();
  await launched;
  await waitFor(() => stops.length > 0, 20_000, 'a stopped event');
  const threads = (await dc.threadsRequest()).body.threads;
  await waitFor(() => stops.length >= threads.length, 20_000, 'a stopped event per thread');
  return stops[stops.length - 1];
}

async function vars(dc: DebugClient, frameId: number, scope: string): Promise<DebugProtocol.Variable[]> {
  const scopes = await dc.scopesRequest({ frameId });
  const s = scopes.body.scopes.find((x) => x.name === scope)!;
  return (await dc.variablesRequest({ variablesReference: s.variablesReference })).body.variables;
}

const CASES: { name: string; source: string; args: string[]; signal: string; depth: number }[] = [
  { name: 'a NULL dereference three frames deep', source: 'crash.c', args: [], signal: 'SIGSEGV', depth: 5 },
  { name: 'abort()', source: 'img_crash.c', args: ['abort'], signal: 'SIGABRT', depth: 6 },
  { name: 'a division by zero', source: 'img_crash.c', args: ['div'], signal: 'SIGFPE', depth: 2 },
  { name: 'a stack overflow', source: 'img_overflow.c', args: [], signal: 'SIGSEGV', depth: 8 },
];

describe('a crash image opened as a debug session', () => {
  for (const c of CASES) {
    test(`${c.name}: stop reason, exceptionInfo, frames and variables equal gdb's on the exported core`, async () => {
      const prog = buildFixture(c.source);
      const img = crashImage(prog, c.args);
      const g = gdbOnCore(prog, exportCore(img), c.depth);
      const SIGNO: Record<string, string> = { SIGSEGV: '11', SIGABRT: '6', SIGFPE: '8' };
      assert.equal(g.signal, SIGNO[c.signal], 'gdb sees the signal in the core');
      assert.ok(g.frames.length >= Math.min(c.depth, 3), `gdb shows frames: ${JSON.stringify(g.frames)}`);

      const dc = await client();
      const stop = await openImage(dc, img);
      assert.equal(stop.body.reason, 'exception');
      const tid = stop.body.threadId!;
      const info = await dc.exceptionInfoRequest({ threadId: tid });
      assert.equal(info.body.exceptionId, c.signal);

      const st = (await dc.stackTraceRequest({ threadId: tid, levels: c.depth })).body.stackFrames;
      assert.equal(st[0].instructionPointerReference, g.pc, 'the pc of the crash');
      for (const f of g.frames) {
        const ours = st[f.level];
        assert.ok(ours, `frame #${f.level} ${f.name}`);
        assert.equal(ours.name.replace(/ \[inlined\]$/, ''), f.name, `frame #${f.level}`);
        if (f.line) assert.equal(ours.line, f.line, `line of frame #${f.level} ${f.name}`);
      }
      // every argument and local gdb shows in frames with source
      let compared = 0;
      for (const f of g.frames) {
        if (!f.file || !f.file.includes('fixtures')) continue;
        const gv = g.vars.get(f.level)!;
        const ours = [...(await vars(dc, st[f.level].id, 'Arguments')), ...(await vars(dc, st[f.level].id, 'Locals'))];
        for (const [name, value] of gv) {
          const v = ours.find((x) => x.name === name);
          assert.ok(v, `${name} in frame #${f.level} ${f.name}`);
          assert.equal(v.value, value, `${name} in frame #${f.level} ${f.name}`);
          compared++;
        }
      }
      assert.ok(compared > 0, 'some variables were compared');

      // memory, disassembly and modules come from the file too
      const mem = await dc.customRequest('readMemory', { memoryReference: st[0].instructionPointerReference!, count: 16 });
      assert.equal(Buffer.from(mem.body.data, 'base64').length, 16);
      const dis = await dc.customRequest('disassemble', { memoryReference: st[0].instructionPointerReference!, instructionCount: 4 });
      assert.equal(dis.body.instructions[0].address, st[0].instructionPointerReference, 'disassembly at the pc');
      assert.ok(dis.body.instructions[0].instruction.length > 0);
      const mods = await dc.customRequest('modules', {});
      assert.ok(mods.body.modules.some((m: { path: string }) => m.path === prog), 'the program among the modules');

      // nothing runs in an image
      await assert.rejects(dc.continueRequest({ threadId: tid }), /is an image.*Revive/);
      await assert.rejects(dc.nextRequest({ threadId: tid }), /is an image/);
      await dc.disconnectRequest({});
    });
  }

  test('attach accepts an image as launch does', async () => {
    const prog = buildFixture('crash.c');
    const img = crashImage(prog, []);
    const dc = await client();
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    const attached = dc.attachRequest({ image: img } as DebugProtocol.AttachRequestArguments);
    await initialized;
    await dc.configurationDoneRequest();
    await attached;
    const stop = await stopped;
    assert.equal(stop.body.reason, 'exception');
    assert.equal((await dc.stackTraceRequest({ threadId: stop.body.threadId! })).body.stackFrames[0].name, 'depth3');
  });

  test('a damaged image is refused with a message that says what is wrong, and nothing runs', async () => {
    const prog = buildFixture('crash.c');
    const img = crashImage(prog, []);
    const bad = img.replace(/\.cryo$/, '.bad.cryo');
    const bytes = readFileSync(img);
    writeFileSync(bad, bytes.subarray(0, bytes.length - 100));
    const dc = await client();
    await dc.initializeRequest();
    await assert.rejects(dc.launch({ image: bad }), /Cannot open the image: .*truncated/);
    await assert.rejects(dc.launch({ image: join(tmp(), 'none.cryo') }), /does not exist/);
  });
});

describe('reviving an image session', () => {
  test('revive, then continue to the end: the output and exit code are the original run`s', async () => {
    const prog = buildFixture('img_counter.c');
    const N = 150;
    const ref = spawnSync(prog, [String(N), '-', '3000'], { encoding: 'utf8', timeout: 60_000 });
    const p = start(prog, [String(N), '-', '3000']);
    let orig = '';
    p.stdout!.on('data', (d) => (orig += d));
    await waitFor(() => orig.split('\n').length > 30, 20_000, 'output');
    const dir = tmp();
    const img = join(dir, 'counter.cryo');
    const d = cryo(['dump', String(p.pid), '-o', img, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    await exited(p);

    const dc = await client();
    const out = collectOutput(dc);
    const stop = await openImage(dc, img);
    assert.equal(stop.body.reason, 'entry');
    assert.match(stop.body.description ?? '', /Image of process/);
    // a breakpoint set on the image binds when it is revived
    const src = join(__dirname, '..', 'fixtures', 'img_counter.c');
    const bp = await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 21 }] });
    assert.equal(bp.body.breakpoints[0].verified, false, 'not bound in an image');
    const stopped = dc.waitForEvent('stopped');
    const changed = dc.waitForEvent('breakpoint');
    const r = await dc.customRequest('cryo/revive');
    assert.ok(r.body.pid > 0);
    assert.equal((await stopped).body.reason, 'entry');
    assert.equal(((await changed) as DebugProtocol.BreakpointEvent).body.breakpoint.verified, true);
    // the loop's end: "done" is printed once
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });
    const threads = (await dc.threadsRequest()).body.threads;
    assert.deepEqual(threads.map((t) => t.id), [r.body.pid]);
    const exitedEv = dc.waitForEvent('exited');
    const terminated = dc.waitForEvent('terminated'); // sent right after exited
    await dc.continueRequest({ threadId: r.body.pid });
    const code = ((await exitedEv) as DebugProtocol.ExitedEvent).body.exitCode;
    assert.equal(code, ref.status, 'the exit code of the original run');
    await terminated;
    const revived = out.text("stdout");
    assert.ok(revived.length > 0 && ref.stdout.endsWith(revived), `the revived process went on with the same run: ${revived.slice(0, 120)}`);
    assert.ok(orig.length + revived.length >= ref.stdout.length, 'nothing between the dump and the revive is missing');
  });

  test('a revive that cannot be done is refused with the problems listed, and the session stays on the image', async () => {
    const prog = buildFixture('img_crash.c');
    // the image's program is a copy that is gone by the time it is revived
    const dir = tmp();
    const copy = join(dir, 'img_crash_copy');
    copyFileSync(prog, copy);
    const img = crashImage(copy, ['null'], dir);
    rmSync(copy);
    const dc = await client();
    await assert.rejects(openImage(dc, img), new RegExp(`${copy} is not on this machine: set "program"`));
    const dc2 = await client();
    const stop = await openImage(dc2, img, { program: prog });
    assert.equal(stop.body.reason, 'exception');
    await assert.rejects(dc2.customRequest('cryo/revive'), new RegExp(`cannot be revived here:[\\s\\S]*${copy}`));
    const info = await dc2.customRequest('cryo/image');
    assert.equal(info.body.revived, false);
    await assert.rejects(dc2.continueRequest({ threadId: stop.body.threadId! }), /is an image/);
    // the stack is still served from the image, through the program given
    const st = (await dc2.stackTraceRequest({ threadId: stop.body.threadId! })).body.stackFrames;
    assert.equal(st[0].name, 'deref');
  });
});

describe('save as image (the Checkpoints view)', () => {
  test('a checkpoint saved as an image revives where the checkpoint was taken: the rest of the run is the original`s', async () => {
    const prog = buildFixture('img_counter.c');
    const src = join(__dirname, '..', 'fixtures', 'img_counter.c');
    const N = 40;
    const ref = spawnSync(prog, [String(N), '-', '0'], { encoding: 'utf8', timeout: 60_000 });
    const dc = await client();
    await dc.initializeRequest();
    const initialized = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: [String(N), '-', '0'] });
    await initialized;
    let stopped = dc.waitForEvent('stopped');
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: 17 }] });
    await dc.configurationDoneRequest();
    await launched;
    const tid = ((await stopped) as DebugProtocol.StoppedEvent).body.threadId!;
    for (let i = 0; i < 2; i++) {
      stopped = dc.waitForEvent('stopped');
      await dc.continueRequest({ threadId: tid });
      await stopped;
    }
    // at the fprintf of iteration 2: snapshot, run on, save the snapshot (not the present)
    const snap = (await dc.customRequest('cryo/snapshot', { name: 'at 2' })).body;
    for (let i = 0; i < 3; i++) {
      stopped = dc.waitForEvent('stopped');
      await dc.continueRequest({ threadId: tid });
      await stopped;
    }
    const dir = tmp();
    const img = join(dir, 'at2.cryo');
    const saved = (await dc.customRequest('cryo/saveImage', { id: snap.id, path: img })).body;
    assert.equal(saved.path, img);
    assert.equal(statSync(img).mode & 0o777, 0o600, 'images hold memory: 0600');
    const present = join(dir, 'now.cryo');
    await dc.customRequest('cryo/saveImage', { path: present });
    await assert.rejects(dc.customRequest('cryo/saveImage', { id: 999, path: join(dir, 'x.cryo') }), /no checkpoint 999/);
    await dc.disconnectRequest({});

    const j = inspectJson(img);
    assert.equal(j.reason.kind, 'snapshot');
    const fromSnap = await restoreWait(img);
    const tail = ref.stdout.slice(ref.stdout.indexOf('iteration 2 '));
    assert.equal(fromSnap.stdout, tail, `the saved checkpoint goes on from iteration 2 (${fromSnap.stderr})`);
    assert.equal(fromSnap.status, ref.status);
    const fromNow = await restoreWait(present);
    assert.equal(fromNow.stdout, ref.stdout.slice(ref.stdout.indexOf('iteration 5 ')), fromNow.stderr);
  });
});

describe('a crash image with its last moments (cryo run --checkpoint-every)', () => {
  test('step back from the crash replays the recorded past: the line before the fault, the oldest checkpoint`s state as the program printed it, forward to the same fault', async () => {
    const prog = buildFixture('img_bundle.c');
    const dir = tmp();
    const data = join(dir, 'data.bin');
    writeFileSync(data, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 37 + 11) & 0xff)));
    const ROUNDS = 40;
    const input = Array.from({ length: ROUNDS }, (_, i) => `input line ${i}`).join('\n') + '\n';
    let run = { status: null as number | null, stdout: '', stderr: '' };
    const img = sharedCrashImage(cryoBin, dir, prog, [data, String(ROUNDS)], { run: ['--checkpoint-every', '20', '--keep', '3'], input, timeout: 120_000, onResult: (r) => (run = r) });
    assert.equal(run.status, 139, run.stderr);
    // the program's own account of each round: digest after round r
    const digests = new Map([...run.stdout.matchAll(/^round (\d+) .* digest=([0-9a-f]+)$/gm)].map((m) => [Number(m[1]) + 1, BigInt('0x' + m[2])]));
    assert.equal(digests.size, ROUNDS);

    const dc = await client();
    const crashStop = await openImage(dc, img);
    assert.equal(crashStop.body.reason, 'exception');
    const top = async (t: number) => (await dc.stackTraceRequest({ threadId: t })).body.stackFrames[0];
    const crashTop = await top(crashStop.body.threadId!);
    assert.equal(crashTop.name, 'crash');
    const value = async (t: number, e: string) => BigInt((await dc.evaluateRequest({ expression: e, frameId: (await top(t)).id, context: 'watch' })).body.result.replace(/ .*/, ''));

    const back = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.stepBackRequest({ threadId: crashStop.body.threadId! });
    const b = await back;
    assert.equal(b.body.reason, 'step');
    const t = b.body.threadId!;
    const before = await top(t);
    assert.equal(before.name, 'crash');
    assert.notEqual(before.instructionPointerReference, crashTop.instructionPointerReference, 'before the faulting store');
    assert.equal(await value(t, 'rounds_done'), BigInt(ROUNDS));
    assert.equal(await value(t, '(long)digest'), BigInt.asIntN(64, digests.get(ROUNDS)!));

    // reverse continue with no breakpoint: the oldest checkpoint, rounds before the crash
    const rc = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.reverseContinueRequest({ threadId: t });
    const early = await rc;
    assert.equal(early.body.reason, 'entry');
    const t2 = early.body.threadId!;
    const done = Number(await value(t2, 'rounds_done'));
    assert.ok(done >= 1 && done < ROUNDS, `the past: ${done} rounds done`);
    // forward from there to the end of the round under way: the replayed inputs give the
    // digest the program printed for that round
    const src = join(__dirname, '..', 'fixtures', 'img_bundle.c');
    const roundEnd = readFileSync(src, 'utf8').split('\n').findIndex((l) => l.includes('rounds_done = (uint64_t)r + 1;')) + 1;
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [{ line: roundEnd }] });
    const atEnd = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: t2 });
    const e = await atEnd;
    assert.equal(e.body.reason, 'breakpoint');
    assert.equal(Number(await value(e.body.threadId!, 'r')), done, 'the round under way at the checkpoint');
    assert.equal(await value(e.body.threadId!, '(long)digest'), BigInt.asIntN(64, digests.get(done + 1)!), `the digest the program printed for round ${done}`);
    await dc.setBreakpointsRequest({ source: { path: src }, breakpoints: [] });

    // forward again: the recorded inputs come back, and so does the same fault
    const again = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    await dc.continueRequest({ threadId: e.body.threadId! });
    const fault = await again;
    assert.equal(fault.body.reason, 'exception');
    assert.equal((await top(fault.body.threadId!)).instructionPointerReference, crashTop.instructionPointerReference);
    assert.equal(await value(fault.body.threadId!, '(long)digest'), BigInt.asIntN(64, digests.get(ROUNDS)!));
    await dc.disconnectRequest({});
  });

  test('an image without a past says how to keep one', async () => {
    const prog = buildFixture('crash.c');
    const img = crashImage(prog, []);
    const dc = await client();
    const stop = await openImage(dc, img);
    await assert.rejects(dc.stepBackRequest({ threadId: stop.body.threadId! }), /holds no past.*--checkpoint-every/);
    // still the image
    await assert.rejects(dc.continueRequest({ threadId: stop.body.threadId! }), /is an image/);
  });
});
