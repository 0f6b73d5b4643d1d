// cryo export-core: an image as an ELF core. gdb is the oracle: on the exported core it
// must give the frames and values it gives on a core gcore makes of the same crash
// (at the same point: the fault), and registers, memory, siginfo and vector state
// equal to what the image holds; every thread of a snapshot is there; the adapter's
// own CoreFile reader opens it. Bad input fails cleanly and leaves nothing behind.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { CoreFile } from '../../adapter/symbols';
import { gdbBatch } from '../helpers/gdb';
import {
  assertNoImageProcesses,
  cleanupDirs,
  cryo,
  cryoBin,
  ensureBuilt,
  exited,
  fixture,
  imageLib,
  InspectJson,
  inspectJson,
  shellStatus,
  start,
  tmp,
  waitFor,
} from './common';

before(() => ensureBuilt());
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

type Json = InspectJson & { process: InspectJson['process'] & { auxv: [number, string][]; cmdline: string[] } };

/** gdb on PROG + CORE, one named section of output per command list. */
function gdbCore(prog: string, core: string, sections: Record<string, string[]>): Record<string, string> {
  const cmds = [`core-file ${core}`];
  for (const [name, list] of Object.entries(sections)) cmds.push(`echo @@${name}\\n`, ...list);
  cmds.push('echo @@end\\n');
  const out = gdbBatch(prog, cmds);
  const res: Record<string, string> = {};
  const parts = out.split(/^@@(\w+)$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) res[parts[i]] = parts[i + 1].trim();
  for (const name of Object.keys(sections)) assert.ok(name in res, `gdb ran the "${name}" commands:\n${out}`);
  return res;
}

/** A backtrace as "function location" lines: what stays the same from one run to another. */
function frames(bt: string): string[] {
  const out: string[] = [];
  for (const line of bt.split('\n')) {
    const m = /^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*\)(?: (?:at|from) (\S+))?\s*$/.exec(line);
    if (m) out.push(`${m[1]} ${m[2] ?? ''}`.trim());
  }
  return out;
}

/** Values printed by gdb with the addresses (which ASLR moves) taken out. */
function values(text: string): string[] {
  return [...text.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1].replace(/0x[0-9a-f]{6,}/g, '0x?'));
}

function registers(text: string): Map<string, bigint> {
  const r = new Map<string, bigint>();
  for (const m of text.matchAll(/^(\w+)\s+(0x[0-9a-f]+)\s/gm)) r.set(m[1], BigInt(m[2]));
  return r;
}

function xbytes(text: string): number[] {
  return [...text.matchAll(/\t0x([0-9a-f]{2})/g)].map((m) => parseInt(m[1], 16));
}

/** LWP ids of `info threads`, the current one first. */
function lwps(text: string): { current: number; all: number[] } {
  const all: number[] = [];
  let current = 0;
  for (const m of text.matchAll(/^(\*?)\s*\d+\s+Thread 0x[0-9a-f]+ \(LWP (\d+)\)/gm)) {
    all.push(Number(m[2]));
    if (m[1]) current = Number(m[2]);
  }
  return { current, all: all.sort((a, b) => a - b) };
}

/** Bytes of the image's memory read straight from its data runs (not through libcryo). */
function imageBytes(image: string, j: Json, addr: bigint, len: number): Buffer {
  const out = Buffer.alloc(len);
  const fd = openSync(image, 'r');
  try {
    for (let done = 0; done < len; ) {
      const a = addr + BigInt(done);
      const m = j.mappings.find((x) => BigInt(x.start) <= a && a < BigInt(x.end));
      assert.ok(m, `0x${a.toString(16)} is mapped in the image`);
      let page = (a - BigInt(m.start)) / 4096n;
      const run = m.runs.find(([, n]) => (page < BigInt(n) ? true : ((page -= BigInt(n)), false)));
      assert.ok(run && (run[0] === 'data' || run[0] === 'zero'), `0x${a.toString(16)} is a data or zero page: ${run}`);
      const inPage = Number(a % 4096n);
      const k = Math.min(len - done, 4096 - inPage);
      if (run[0] === 'data') readSync(fd, out, done, k, run[2] + Number(page) * 4096 + inPage);
      done += k;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

function xsaveOf(image: string, tid: number): Buffer {
  const L = imageLib();
  const h = [null];
  assert.equal(L.open(image, h), 0, L.lastError());
  try {
    const xs = Buffer.alloc(16384);
    const len = [0];
    assert.equal(L.xstate(h[0], tid, xs, xs.length, len), 0, L.lastError());
    return xs.subarray(0, Number(len[0]));
  } finally {
    L.close(h[0]);
  }
}

/** The kernel's own core of prog's crash (core_pattern "core" or "core.%p" style, in the cwd). */
function kernelCore(prog: string, args: string[]): string {
  const pattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  assert.ok(!pattern.startsWith('|') && !pattern.includes('/'), `core_pattern ${pattern}: the kernel's cores do not land in the cwd here`);
  const dir = tmp();
  spawnSync('sh', ['-c', 'ulimit -c unlimited && exec "$@"', 'sh', prog, ...args], { cwd: dir, stdio: 'ignore', timeout: 60_000 });
  const [name] = readdirSync(dir).filter((n) => n.startsWith('core'));
  assert.ok(name, `the kernel wrote a core of ${prog} into ${dir}`);
  return join(dir, name);
}

/** The descriptor of the first note of a type in an ELF core (undefined: none). */
function noteOf(core: string, type: number): Buffer | undefined {
  const d = readFileSync(core);
  const phoff = Number(d.readBigUInt64LE(32)), phentsize = d.readUInt16LE(54), phnum = d.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (d.readUInt32LE(ph) !== 4) continue; // PT_NOTE
    const off = Number(d.readBigUInt64LE(ph + 8)), size = Number(d.readBigUInt64LE(ph + 32));
    for (let at = off; at + 12 <= off + size; ) {
      const nsz = d.readUInt32LE(at), dsz = d.readUInt32LE(at + 4), t = d.readUInt32LE(at + 8);
      const desc = at + 12 + Math.ceil(nsz / 4) * 4;
      if (t === type) return d.subarray(desc, desc + dsz);
      at = desc + Math.ceil(dsz / 4) * 4;
    }
  }
  return undefined;
}

function exportCore(image: string, core: string) {
  const r = cryo(['export-core', image, '-o', core]);
  assert.equal(r.status, 0, `cryo export-core: ${r.stderr}`);
  assert.match(r.stderr, /written to .*: \d+ bytes, \d+ thread\(s\)/);
  assert.equal(statSync(core).mode & 0o777, 0o600, 'the core is private (0600)');
  return r;
}

const AT_SYSINFO_EHDR = 33, AT_ENTRY = 9;

interface CrashCase {
  name: string;
  source: string;
  flags?: string[];
  args: string[];
  signo: number;
  /** functions the crashing thread's backtrace starts with (innermost first) */
  top: string[];
  /** gdb commands printing values of the program at the crash */
  prints: string[];
  expect: string[];
}

const crashes: CrashCase[] = [
  {
    name: 'NULL dereference three frames deep (SIGSEGV)',
    source: 'crash.c',
    args: [],
    signo: 11,
    top: ['depth3', 'depth2', 'depth1', 'main'],
    prints: ['p *n', 'p n->value', 'frame function main', 'p last', 'p last.next'],
    expect: ['{value = 42, next = 0x0}', '42', '{value = 42, next = 0x0}', '(struct node *) 0x0'],
  },
  {
    name: 'abort (SIGABRT, through libc)',
    source: 'img_crash.c',
    args: ['abort'],
    signo: 6,
    top: [],
    prints: ['frame function main', 'p mode', 'p argc'],
    expect: ['0x? "abort"', '2'],
  },
  {
    name: 'division by zero (SIGFPE)',
    source: 'img_crash.c',
    args: ['div'],
    signo: 8,
    top: ['divide', 'main'],
    prints: ['p a', 'p b', 'frame function main', 'p argc'],
    expect: ['2', '0', '2'],
  },
  {
    name: 'NULL dereference in a worker thread while two others run (SIGSEGV)',
    source: 'img_thread_crash.c',
    flags: ['-O0', '-g', '-pthread'],
    args: [],
    signo: 11,
    top: ['follow', 'walk', 'crasher'],
    prints: ['p *it', 'frame function walk', 'p depth', 'frame function crasher', 'p lone'],
    expect: ['{id = 7, next = 0x0}', '3', '{id = 7, next = 0x0}'],
  },
];

describe('cryo export-core', () => {
  for (const c of crashes) {
    test(`${c.name}: gdb sees the crash as on a gcore core, with the image's registers and memory`, () => {
      const prog = fixture(c.source, { name: c.source.replace(/\..*$/, ''), flags: c.flags });
      const dir = tmp();
      const r = spawnSync(cryoBin, ['run', '--on-crash', dir, '--', prog, ...c.args], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(shellStatus(r), 128 + c.signo, `cryo run: ${r.stderr}`);
      const [imgName] = readdirSync(dir);
      const image = join(dir, imgName);
      const j = inspectJson(image) as Json;
      assert.equal(j.reason.signal, c.signo);

      const core = join(dir, 'exported.core');
      exportCore(image, core);
      assert.deepEqual(readdirSync(dir).sort(), [imgName, 'exported.core'].sort(), 'no temporary file left');

      // the reference: gdb runs the program to the same fault and gcore writes its core
      const ref = join(tmp(), 'gcore.core');
      gdbBatch(prog, ['run', `gcore ${ref}`, 'kill'], c.args);
      assert.ok(statSync(ref).size > 0, 'gcore wrote a core');
      const want = gdbCore(prog, ref, { bt: ['bt'], values: c.prints });

      const vdso = BigInt(j.process.auxv.find(([k]) => k === AT_SYSINFO_EHDR)![1]);
      const got = gdbCore(prog, core, {
        bt: ['bt'],
        values: c.prints,
        threads: ['info threads'],
        regs: ['frame 0', 'info registers'],
        stack: ['frame 0', 'x/64xb $rsp'],
        vdso: [`x/4xb 0x${vdso.toString(16)}`],
        siginfo: ['p $_siginfo.si_signo', 'p $_siginfo.si_code', 'p/x (unsigned long)$_siginfo._sifields._sigfault.si_addr'],
        vector: ['frame 0', 'p/x $xmm0.v2_int64', 'p/x $ymm0.v4_int64', 'p/x $mxcsr'],
      });

      // frames and values: as on the gcore core
      const f = frames(got.bt);
      assert.deepEqual(f, frames(want.bt), `the same backtrace as on gcore's core:\n${got.bt}\n---\n${want.bt}`);
      assert.deepEqual(f.slice(0, c.top.length).map((x) => x.split(' ')[0]), c.top, got.bt);
      assert.ok(f.some((x) => /\.c:\d+$/.test(x)), `frames have file:line: ${f}`);
      if (c.signo === 6) assert.ok(f.some((x) => /^(__GI_)?abort /.test(x)) && f.at(-1)!.startsWith('main '), got.bt);
      assert.deepEqual(values(got.values), c.expect, got.values);
      assert.deepEqual(values(got.values), values(want.values), 'the same values as on gcore\'s core');

      // threads: all of them, the crashing one current (its notes come first)
      const t = lwps(got.threads);
      assert.deepEqual(t.all, j.threads.map((x) => x.tid).sort((a, b) => a - b), got.threads);
      assert.equal(t.current, j.reason.tid, 'the crashing thread is the current one');

      // registers: the crashing thread's, as the image holds them
      const regs = registers(got.regs);
      const mine = j.threads.find((x) => x.tid === j.reason.tid)!.regs;
      for (const name of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'eflags', 'cs', 'ss', 'ds', 'es', 'fs', 'gs'])
        assert.equal(regs.get(name), BigInt(mine[name]), `${name}\n${got.regs}`);

      // memory: the stack at rsp as the image's data pages hold it, the vDSO's ELF header
      const rsp = BigInt(mine.rsp);
      assert.deepEqual(xbytes(got.stack), [...imageBytes(image, j, rsp, 64)], `x/64xb $rsp:\n${got.stack}`);
      assert.deepEqual(xbytes(got.vdso), [0x7f, 0x45, 0x4c, 0x46], `[vdso] content is in the core: ${got.vdso}`);

      // siginfo
      const si = values(got.siginfo).map((v) => BigInt(v.replace('0x?', '0')));
      assert.equal(si[0], BigInt(c.signo));
      assert.equal(si[1], BigInt(j.reason.code!));
      const [siAddr] = [...got.siginfo.matchAll(/^\$\d+ = (0x[0-9a-f]+)$/gm)].map((m) => BigInt(m[1]));
      if (j.reason.address) assert.equal(siAddr, BigInt(j.reason.address), 'si_addr');

      // vector state from NT_X86_XSTATE: xmm0, the upper half of ymm0, mxcsr
      const xs = xsaveOf(image, j.reason.tid!);
      const bv = xs.readBigUInt64LE(512);
      const sse = bv & 2n ? [xs.readBigUInt64LE(160), xs.readBigUInt64LE(168)] : [0n, 0n];
      const avx = bv & 4n ? [xs.readBigUInt64LE(576), xs.readBigUInt64LE(584)] : [0n, 0n];
      const vec = [...got.vector.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);
      const hex = (a: bigint[]) => `{${a.map((v) => '0x' + v.toString(16)).join(', ')}}`;
      assert.equal(vec[0], hex(sse), 'xmm0');
      assert.equal(vec[2], '0x' + xs.readUInt32LE(24).toString(16), 'mxcsr');
      // the kernel's own core of the same crash: the same XSAVE layout note, and gdb reads
      // the upper half of ymm0 from it as from ours (gdb 13 cannot place AVX state in an
      // XSAVE layout it does not know, such as AMD's without PKU: <unavailable> in both)
      const kernel = kernelCore(prog, c.args);
      assert.deepEqual(noteOf(core, 0x205), noteOf(kernel, 0x205), 'NT_X86_XSAVE_LAYOUT as the kernel writes it');
      const kvec = [...gdbCore(prog, kernel, { vector: ['frame 0', 'p/x $ymm0.v4_int64'] }).vector.matchAll(/^\$\d+ = (.*)$/gm)].map((m) => m[1]);
      const upper = (v: string) => v.replace(/^\{|\}$/g, '').split(', ').slice(2);
      if (upper(kvec[0]).includes('<unavailable>')) assert.deepEqual(upper(vec[1]), upper(kvec[0]), `ymm0: ${vec[1]} against the kernel's core: ${kvec[0]}`);
      else assert.equal(vec[1], hex([...sse, ...avx]), 'ymm0');

      // the adapter's reader
      const cf = new CoreFile(core);
      try {
        assert.equal(cf.threads[0].tid, j.reason.tid, 'the crashing thread first');
        assert.equal(cf.threads[0].signal, c.signo);
        assert.deepEqual(cf.siginfo, { signo: c.signo, code: j.reason.code, addr: j.reason.address ? BigInt(j.reason.address) : cf.siginfo!.addr });
        assert.equal(cf.exePath(), j.process.exe);
        assert.equal(cf.exeArgs, [prog, ...c.args].join(' '));
        assert.deepEqual(cf.read(rsp, 64), imageBytes(image, j, rsp, 64));
      } finally {
        cf.close();
      }
    });
  }

  test('a snapshot of a running multi-threaded process: one NT_PRSTATUS per thread, no signal', async () => {
    const prog = fixture('img_threads.c', { name: 'img_threads', flags: ['-O0', '-g', '-pthread'] });
    const p = start(prog, []);
    let out = '';
    p.stdout!.on('data', (d) => (out += d));
    await waitFor(() => out.includes('ready'), 10_000, 'ready');
    const dir = tmp();
    const image = join(dir, 't.cryo');
    const d = cryo(['dump', String(p.pid), '-o', image, '--kill']);
    assert.equal(d.status, 0, d.stderr);
    await exited(p);
    const j = inspectJson(image) as Json;
    assert.equal(j.threads.length, 4);
    const core = join(dir, 't.core');
    const e = exportCore(image, core);
    assert.match(e.stderr, /4 thread\(s\)/);

    const got = gdbCore(prog, core, {
      threads: ['info threads'],
      bts: ['thread apply all bt'],
      pcs: ['thread apply all p/x $pc'],
      sps: ['thread apply all p/x $sp'],
      counts: ['p counts[0] > 0 && counts[1] > 0 && counts[2] > 0'],
    });
    const t = lwps(got.threads);
    assert.equal(t.all.length, j.threads.length, `gdb sees every thread:\n${got.threads}`);
    assert.deepEqual(t.all, j.threads.map((x) => x.tid).sort((a, b) => a - b));
    assert.equal(t.current, j.process.pid, 'the main thread first, as in the image');
    assert.equal((got.bts.match(/ in worker \(/g) ?? []).length, 3, got.bts);
    assert.equal((got.bts.match(/ in main \(/g) ?? []).length, 1, got.bts);
    // every thread's pc and sp as the image holds them
    for (const [key, reg] of [['pcs', 'pc'], ['sps', 'sp']] as const) {
      const seen = new Map<number, string>();
      for (const m of got[key].matchAll(/^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)\):\n\$\d+ = (0x[0-9a-f]+)$/gm)) seen.set(Number(m[1]), m[2]);
      assert.equal(seen.size, j.threads.length, got[key]);
      for (const th of j.threads) assert.equal(BigInt(seen.get(th.tid)!), BigInt(th[reg]), `${reg} of thread ${th.tid}`);
    }
    assert.deepEqual(values(got.counts), ['1'], 'a global read from the core');

    const cf = new CoreFile(core);
    try {
      assert.deepEqual(cf.threads.map((x) => x.tid), j.threads.map((x) => x.tid), 'one NT_PRSTATUS per thread, in the image\'s order');
      assert.ok(cf.threads.every((x) => x.signal === 0), 'a snapshot has no signal');
      assert.equal(cf.siginfo, undefined, 'no NT_SIGINFO for a snapshot');
      for (const th of j.threads) assert.equal(cf.threads.find((x) => x.tid === th.tid)!.regs.get(16), BigInt(th.pc), 'rip');
      const entry = j.process.auxv.find(([k]) => k === AT_ENTRY)![1];
      assert.equal(cf.auxv.get(AT_ENTRY), BigInt(entry), 'NT_AUXV');
      assert.equal(cf.exePath(), j.process.exe, 'NT_FILE names the executable');
      assert.ok(cf.files.some((f) => /libc\.so/.test(f.path)), 'NT_FILE lists libc');
      const sp = BigInt(j.threads[1].sp);
      assert.deepEqual(cf.read(sp, 128), imageBytes(image, j, sp, 128), 'a worker\'s stack');
    } finally {
      cf.close();
    }

    // the library entry point writes the same file
    const L = imageLib();
    const h = [null];
    assert.equal(L.open(image, h), 0, L.lastError());
    const viaLib = join(dir, 'lib.core');
    try {
      assert.equal(L.exportCore(h[0], viaLib), 0, L.lastError());
    } finally {
      L.close(h[0]);
    }
    assert.deepEqual(readFileSync(viaLib), readFileSync(core), 'cryo_image_export_core gives the same bytes');
  });

  test('a corrupt or missing image: exit 1, a clear message, no file written', async () => {
    const prog = fixture('crash.c', { name: 'crash' });
    const dir = tmp();
    const r = spawnSync(cryoBin, ['run', '--on-crash', dir, '--', prog], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(shellStatus(r), 139, r.stderr);
    const [imgName] = readdirSync(dir);
    const bytes = readFileSync(join(dir, imgName));
    bytes[8192] ^= 0xff; // a data page: the PAGES checksum fails
    const out = tmp();
    const bad = join(out, 'bad.cryo');
    writeFileSync(bad, bytes);
    const e = cryo(['export-core', bad, '-o', join(out, 'bad.core')]);
    assert.equal(e.status, 1);
    assert.match(e.stderr, /^cryo export-core: .*bad\.cryo.*(corrupt|checksum)/);
    assert.deepEqual(readdirSync(out), ['bad.cryo'], 'no core, no temporary file');
    const m = cryo(['export-core', join(out, 'nope.cryo'), '-o', join(out, 'x.core')]);
    assert.equal(m.status, 1);
    assert.match(m.stderr, /nope\.cryo.*No such file/);
    assert.deepEqual(readdirSync(out), ['bad.cryo']);
  });

  test('an unwritable destination or a write that fails: exit 1, a clear message, nothing left, a previous file intact', async (t) => {
    const prog = fixture('crash.c', { name: 'crash' });
    const dir = tmp();
    spawnSync(cryoBin, ['run', '--on-crash', dir, '--', prog], { encoding: 'utf8', timeout: 60_000 });
    const [imgName] = readdirSync(dir);
    const image = join(dir, imgName);

    const missingDir = cryo(['export-core', image, '-o', join(dir, 'no', 'such', 'dir', 'x.core')]);
    assert.equal(missingDir.status, 1);
    assert.match(missingDir.stderr, /^cryo export-core: create .*x\.core.*No such file or directory/);

    const notDir = cryo(['export-core', image, '-o', join(image, 'x.core')]);
    assert.equal(notDir.status, 1);
    assert.match(notDir.stderr, /Not a directory/);

    // a file size limit hit in the middle of the writing (EFBIG: SIGXFSZ is ignored)
    const out = tmp();
    const target = join(out, 'x.core');
    const previous = Buffer.from('the previous core\n');
    writeFileSync(target, previous);
    const big = spawnSync('/bin/bash', ['-c', 'ulimit -f 256; exec "$@"', 'bash', cryoBin, 'export-core', image, '-o', target], { encoding: 'utf8' });
    assert.equal(big.status, 1, big.stderr);
    assert.match(big.stderr, /^cryo export-core: writing .*x\.core: file too large.*no core written/);
    assert.deepEqual(readFileSync(target), previous, 'the previous file is untouched');
    assert.deepEqual(readdirSync(out), ['x.core'], 'no temporary file left');

    // a full disk
    if (process.getuid?.() !== 0) return t.skip('needs root to mount a small tmpfs');
    const mnt = join(out, 'small');
    mkdirSync(mnt);
    const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
    if (mount.status !== 0) return t.skip(`cannot mount a tmpfs: ${mount.stderr}`);
    try {
      const full = cryo(['export-core', image, '-o', join(mnt, 'x.core')]);
      assert.equal(full.status, 1, full.stderr);
      assert.match(full.stderr, /^cryo export-core: writing .*x\.core: no space left on the device.*no core written/);
      assert.deepEqual(readdirSync(mnt), [], 'no temporary file left');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });

  test('usage errors exit 2 and --help describes the command', () => {
    assert.equal(cryo(['export-core']).status, 2);
    assert.equal(cryo(['export-core', 'a.cryo']).status, 2);
    assert.equal(cryo(['export-core', 'a.cryo', '-o']).status, 2);
    assert.equal(cryo(['export-core', 'a.cryo', '-o', 'x', '--bogus']).status, 2);
    assert.equal(cryo(['export-core', 'a.cryo', 'b.cryo', '-o', 'x']).status, 2);
    const h = cryo(['--help']);
    assert.equal(h.status, 0);
    assert.match(h.stdout, /export-core IMAGE -o CORE/);
  });
});
