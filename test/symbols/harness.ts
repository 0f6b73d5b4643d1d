// Test harness: stops a fixture under gdb (the oracle), records what gdb prints, saves a
// core with gcore at that stop, and opens the same core with adapter/symbols.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { buildDir, fixturesDir } from '../helpers/fixtures';
import { readFileSync as readText } from 'node:fs';
import { CoreFile, executableTarget, Program, Frame } from '../../adapter/symbols';
import assert from 'node:assert/strict';

/** Line number of a `BREAK:name` marker in a fixture source. */
export function markerLine(source: string, name: string): number {
  const lines = readFileSync(join(fixturesDir, source), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.includes(`BREAK:${name} `) || l.endsWith(`BREAK:${name}`) || l.includes(`BREAK:${name}*/`));
  if (i < 0) throw new Error(`no BREAK:${name} in ${source}`);
  return i + 1;
}

/** Runs gdb -batch with stdout and stderr together (in order). */
export function gdbRun(program: string, commands: string[], args: string[] = []): string {
  const cmdArgs = commands.flatMap((c) => ['-ex', c]);
  // no debuginfod: the oracle must answer from the files on this machine, as the library does
  const env = { ...process.env };
  delete env.DEBUGINFOD_URLS;
  const r = spawnSync('sh', ['-c', 'exec gdb "$@" 2>&1', 'gdb', '-nx', '-batch', '-iex', 'set debuginfod enabled off', '-ex', 'set pagination off', '-ex', 'set confirm off', '-ex', 'set width 0', ...cmdArgs, '--args', program, ...args], {
    encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000, maxBuffer: 64 << 20, env,
  });
  if (r.error) throw r.error;
  // gdb -batch exits non-zero when its last command failed; the output is still what we want
  if (r.status !== 0 && !r.stdout) throw new Error(`gdb failed (status ${r.status}, signal ${r.signal})`);
  return r.stdout;
}

export interface GdbFrame { level: number; pc?: bigint; func: string; args: string; file?: string; line?: number; signal: boolean; raw: string }

export interface Stop {
  out: string;
  sections: Map<string, string>;
  frames: GdbFrame[];
  core: CoreFile;
  program: Program;
  stack: Frame[];
  close(): void;
}

let coreSeq = 0;
// the per-process core folder goes when the test process ends
process.on('exit', () => { try { rmSync(join(buildDir, `sym-cores-${process.pid}`), { recursive: true, force: true }); } catch { /* ignore */ } });

export interface StopOptions {
  args?: string[];
  pre?: string[];
  /** frames to inspect with info args / info locals (default: all of the gdb backtrace) */
  frames?: number;
  prints?: string[];
  /** commands run after the first stop (e.g. another break and continue) */
  after?: string[];
  /** frame (gdb's numbering) the prints are evaluated in */
  printFrame?: number;
  /** extra gdb commands (each in its own section named by the command) */
  extra?: string[];
}

/** Stops `binary` at `breakSpec` (or at the first signal when empty) under gdb, gathers gdb's answers, dumps a core, opens it. */
export function stopAt(binary: string, breakSpec: string, opts: StopOptions = {}): Stop {
  const dir = join(buildDir, `sym-cores-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const corePath = join(dir, `${basename(binary)}-${process.pid}-${coreSeq++}.core`);
  const nframes = opts.frames ?? 12;
  const cmds = [...(opts.pre ?? []), 'set breakpoint pending on', ...(breakSpec ? [`break ${breakSpec}`] : []), 'run', ...(opts.after ?? []), 'echo \\n@@BT\\n', 'bt'];
  for (let k = 0; k < nframes; k++) {
    cmds.push(`echo \\n@@FRAME ${k}\\n`, `frame ${k}`, `echo \\n@@ARGS ${k}\\n`, 'info args', `echo \\n@@LOCALS ${k}\\n`, 'info locals');
  }
  cmds.push(`frame ${opts.printFrame ?? 0}`);
  (opts.prints ?? []).forEach((p, i) => cmds.push(`echo \\n@@PRINT ${i}\\n`, `print ${p}`));
  (opts.extra ?? []).forEach((p, i) => cmds.push(`echo \\n@@EXTRA ${i}\\n`, p));
  cmds.push('echo \\n@@GCORE\\n', `gcore ${corePath}`, 'echo \\n@@END\\n', 'kill');
  let out = gdbRun(binary, cmds, opts.args ?? []);
  // on a shared machine another test runner may kill our fixture process (it kills what it
  // finds running from test/.build when it ends): try once more
  if (/SIGKILL/.test(out) || !existsSync(corePath)) out = gdbRun(binary, cmds, opts.args ?? []);
  const sections = new Map<string, string>();
  const parts = out.split(/\n@@/);
  for (const p of parts.slice(1)) {
    const nl = p.indexOf('\n');
    sections.set(p.slice(0, nl), p.slice(nl + 1));
  }
  if (!sections.has('BT')) throw new Error(`gdb did not stop:\n${out}`);
  if (!existsSync(corePath)) throw new Error(`gdb did not write the core ${corePath}:\n${out}`);
  const frames = parseBacktrace(sections.get('BT')!);
  const core = new CoreFile(corePath);
  const program = new Program(core.target(binary));
  const stack = program.backtrace(core.threads[0].regs);
  return {
    out, sections, frames, core, program, stack,
    close: () => { core.close(); rmSync(corePath, { force: true }); },
  };
}

export function parseBacktrace(bt: string): GdbFrame[] {
  const frames: GdbFrame[] = [];
  const lines = bt.split('\n').filter((l) => /^#\d+/.test(l));
  for (const raw of lines) {
    const m = /^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(.*)$/.exec(raw)!;
    const level = Number(m[1]);
    const pc = m[2] ? BigInt(m[2]) : undefined;
    let rest = m[3];
    if (rest.startsWith('<signal handler called>')) { frames.push({ level, pc, func: '<signal handler called>', args: '', signal: true, raw }); continue; }
    let file: string | undefined, line: number | undefined;
    const at = /\s+(?:at|from) (\S+?)(?::(\d+))?$/.exec(rest);
    if (at) { file = at[1]; line = at[2] ? Number(at[2]) : undefined; rest = rest.slice(0, at.index); }
    // name (args)
    const open = findArgsOpen(rest);
    const func = open >= 0 ? rest.slice(0, open).trim() : rest.trim();
    const args = open >= 0 ? rest.slice(open + 1, rest.lastIndexOf(')')) : '';
    frames.push({ level, pc, func, args, file, line, signal: false, raw });
  }
  return frames;
}

function findArgsOpen(s: string): number {
  // the '(' that opens the argument list: the first " (" at depth 0 of template brackets
  // that is followed by `)` or `name=` (a name gdb shows with its parameters has " (" too)
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if (c === '(' && depth <= 0 && s[i - 1] === ' ' && /^\((?:\)|[\w$#.]+=)/.test(s.slice(i))) return i;
  }
  return -1;
}

/** `name = value` lines of info locals / info args, with values that span lines joined. */
export function parseVars(text: string | undefined): string[] {
  if (!text) return [];
  const lines = text.split('\n').filter((l) => l.length && !/^No (locals|arguments|symbol table)/.test(l) && !l.startsWith('#'));
  const out: string[] = [];
  for (const l of lines) {
    if (/^[A-Za-z_$][\w:<>, ]*\s=\s/.test(l) || !out.length) out.push(l);
    else out[out.length - 1] += '\n' + l;
  }
  return out;
}

/** Light normalisation of gdb output for comparison. */
export function norm(s: string): string {
  // entry values (`x=x@entry=5`, `x=<optimized out>, x@entry=5`) are compared as gdb prints them
  return s
    .replace(/\s+/g, ' ')
    .trim();
}

/** The frames of our stack up to `main` (gdb stops there), in gdb's numbering. */
export function ourFrames(stop: Stop): Frame[] {
  const out: Frame[] = [];
  for (const f of stop.stack) {
    out.push(f);
    if (f.function === 'main') break;
  }
  return out;
}

/** Our rendering of a frame like gdb's bt line parts. */
export function describeFrame(stop: Stop, f: Frame): { func: string; args: string; file?: string; line?: number } {
  if (f.signalFrame) return { func: '<signal handler called>', args: '' };
  return { func: f.function ?? '??', args: stop.program.frameArgs(f, stop.stack), file: f.source?.file, line: f.source?.line };
}

export interface CheckOptions {
  /** compare args/locals only in frames whose file is a fixture (default true) */
  fixtureOnly?: boolean;
  /** skip comparing these frame levels' variables */
  skipVars?: number[];
}

/** Compares our stack, args and locals with gdb's; returns a list of differences. */
export function checkStop(stop: Stop, opts: CheckOptions = {}): string[] {
  const diffs: string[] = [];
  const ours = ourFrames(stop);
  const theirs = stop.frames;
  if (ours.length !== theirs.length) diffs.push(`frame count: ours ${ours.length} [${ours.map((f) => f.function).join(', ')}] gdb ${theirs.length} [${theirs.map((f) => f.func).join(', ')}]`);
  const n = Math.min(ours.length, theirs.length);
  for (let i = 0; i < n; i++) {
    const g = theirs[i];
    const o = describeFrame(stop, ours[i]);
    const fixture = !!g.file && basename(g.file).startsWith('sym_');
    if (o.func !== g.func) diffs.push(`#${i} function: ours ${o.func} gdb ${g.func}`);
    if (g.line !== undefined && (o.line !== g.line || !o.file || basename(o.file) !== basename(g.file!))) diffs.push(`#${i} ${g.func} location: ours ${o.file}:${o.line} gdb ${g.file}:${g.line}`);
    if (g.pc !== undefined && ours[i].pc !== g.pc && !ours[i].inlined) diffs.push(`#${i} pc: ours 0x${ours[i].pc.toString(16)} gdb 0x${g.pc.toString(16)}`);
    if (g.signal || (opts.fixtureOnly !== false && !fixture) || opts.skipVars?.includes(i)) continue;
    if (norm(o.args) !== norm(g.args)) diffs.push(`#${i} ${g.func} bt args:\n   ours ${o.args}\n   gdb  ${g.args}`);
    const gArgs = parseVars(stop.sections.get(`ARGS ${i}`)).map(norm);
    const oArgs = stop.program.args(ours[i], stop.stack).map((v) => norm(`${v.name} = ${stop.program.format(v.value)}`));
    if (JSON.stringify(gArgs) !== JSON.stringify(oArgs)) diffs.push(`#${i} ${g.func} info args:\n   ours ${oArgs.join(' | ')}\n   gdb  ${gArgs.join(' | ')}`);
    const gLoc = parseVars(stop.sections.get(`LOCALS ${i}`)).map(norm);
    const oLoc = stop.program.locals(ours[i], stop.stack).map((v) => norm(`${v.name} = ${stop.program.format(v.value)}`));
    if (JSON.stringify(gLoc) !== JSON.stringify(oLoc)) diffs.push(`#${i} ${g.func} info locals:\n   ours ${oLoc.join(' | ')}\n   gdb  ${gLoc.join(' | ')}`);
  }
  return diffs;
}

/** Compares `print EXPR` of gdb (sections PRINT i) with our evaluation in frame 0. */
export function checkPrints(stop: Stop, exprs: string[], frameIndex = 0): string[] {
  const diffs: string[] = [];
  const frame = stop.stack[frameIndex];
  exprs.forEach((e, i) => {
    const out = (stop.sections.get(`PRINT ${i}`) ?? '').split('\n').filter((l) => !l.startsWith('warning:')).join('\n').trim();
    const m = /^\$\d+ = ([\s\S]*)$/.exec(out);
    let ours: string;
    let ourErr = false;
    try {
      const hex = e.startsWith('/x ');
      ours = stop.program.format(stop.program.evaluate(hex ? e.slice(3) : e, frame, stop.stack), true, hex);
    } catch (err) {
      ours = (err as Error).message; ourErr = true;
    }
    if (!m) {
      // gdb refused: we must refuse too; messages about unknown symbols and members must agree
      if (!ourErr) diffs.push(`print ${e}: gdb error "${out}" but ours ${ours}`);
      else if (/^No symbol|^There is no member/.test(out) && out !== ours) diffs.push(`print ${e}: error ours "${ours}" gdb "${out}"`);
      return;
    }
    if (ourErr || norm(ours) !== norm(m[1])) diffs.push(`print ${e}:\n   ours ${ours}\n   gdb  ${m[1]}`);
  });
  return diffs;
}

/** Compares `thread apply all bt` (in section `section`) with our stacks of every core thread. */
export function checkAllThreads(stop: Stop, section: string): string[] {
  const diffs: string[] = [];
  const text = stop.sections.get(section) ?? '';
  const blocks = text.split(/\n(?=Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP \d+\))/);
  let seen = 0;
  for (const b of blocks) {
    const m = /^Thread \d+ \(Thread 0x[0-9a-f]+ \(LWP (\d+)\)/.exec(b.trim());
    if (!m) continue;
    seen++;
    const tid = Number(m[1]);
    const th = stop.core.threads.find((t) => t.tid === tid);
    if (!th) { diffs.push(`thread ${tid} not in the core`); continue; }
    const gdbFrames = parseBacktrace(b);
    const stack = stop.program.backtrace(th.regs);
    diffs.push(...compareFrames(stop.program, stack, gdbFrames, `thread ${tid}`));
  }
  if (seen !== stop.core.threads.length) diffs.push(`gdb listed ${seen} threads, the core has ${stop.core.threads.length}`);
  return diffs;
}

/** Runs gdb's `break` for each spec; returns spec -> sorted addresses ([] when gdb refused). */
export function gdbBreaks(bin: string, specs: string[]): Map<string, bigint[]> {
  const cmds: string[] = [];
  specs.forEach((s, i) => cmds.push(`echo \\n@@B ${i}\\n`, `break ${s}`));
  cmds.push('echo \\n@@INFO\\n', 'info breakpoints');
  const out = gdbRun(bin, cmds);
  const secs = out.split(/\n@@/).slice(1);
  const num = new Map<number, number>(); // bp number -> spec index
  let info = '';
  for (const sec of secs) {
    const m = /^B (\d+)\n([\s\S]*)$/.exec(sec);
    if (m) { const b = /Breakpoint (\d+) at/.exec(m[2]); if (b) num.set(Number(b[1]), Number(m[1])); }
    else if (sec.startsWith('INFO')) info = sec;
  }
  const res = new Map<string, bigint[]>(specs.map((s) => [s, []]));
  for (const line of info.split('\n')) {
    const m = /^(\d+)(?:\.\d+)?\s.*?\s(0x[0-9a-f]+)\s+in\s/.exec(line);
    if (!m) continue;
    const idx = num.get(Number(m[1]));
    if (idx === undefined) continue;
    res.get(specs[idx])!.push(BigInt(m[2]));
  }
  for (const v of res.values()) v.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return res;
}

function hexes(a: bigint[]): string { return a.map((x) => '0x' + x.toString(16)).join(' '); }

/** Compares our breakpoint addresses with gdb's for every line of `sources` and each function. */
export function compareBreakpoints(bin: string, sources: string[], functions: string[]): Program {
  const specs: string[] = [];
  for (const src of sources) {
    const n = readText(join(fixturesDir, src), 'utf8').split('\n').length;
    for (let l = 1; l <= n; l++) specs.push(`${src}:${l}`);
  }
  specs.push(...functions);
  const gdb = gdbBreaks(bin, specs);
  const prog = new Program(executableTarget(bin));
  const diffs: string[] = [];
  let compared = 0;
  for (const s of specs) {
    const colon = s.lastIndexOf(':');
    const isLine = colon > 0 && /^\d+$/.test(s.slice(colon + 1));
    const ours = (isLine ? prog.lineBreakpoints(s.slice(0, colon), Number(s.slice(colon + 1))) : prog.functionBreakpoints(s)).map((b) => b.addr).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const theirs = gdb.get(s)!;
    if (!theirs.length) continue; // gdb refused (no code at or after the line)
    compared++;
    if (hexes(ours) !== hexes(theirs)) diffs.push(`${s}: ours [${hexes(ours)}] gdb [${hexes(theirs)}]`);
  }
  assert.ok(compared > 10, `compared ${compared} breakpoints`);
  assert.deepEqual(diffs, [], diffs.join('\n'));
  return prog;
}


/** Compares our stack (up to main) with gdb's bt frames: functions, locations, pcs, and arguments of fixture frames. */
export function compareFrames(program: Program, stack: Frame[], gdbFrames: GdbFrame[], label: string): string[] {
  const diffs: string[] = [];
  const ours: Frame[] = [];
  for (const f of stack) { ours.push(f); if (f.function === 'main') break; }
  if (ours.length !== gdbFrames.length) diffs.push(`${label}: frame count ours ${ours.length} [${ours.map((f) => f.function).join(', ')}] gdb ${gdbFrames.length} [${gdbFrames.map((f) => f.func).join(', ')}]`);
  for (let i = 0; i < Math.min(ours.length, gdbFrames.length); i++) {
    const g = gdbFrames[i], o = ours[i];
    const fn = o.signalFrame ? '<signal handler called>' : o.function ?? '??';
    if (fn !== g.func) diffs.push(`${label} #${i}: function ours ${fn} gdb ${g.func}`);
    if (g.line !== undefined && (o.source?.line !== g.line || basename(o.source?.file ?? '') !== basename(g.file!))) diffs.push(`${label} #${i} ${g.func}: ours ${o.source?.file}:${o.source?.line} gdb ${g.file}:${g.line}`);
    if (g.pc !== undefined && g.pc !== o.pc) diffs.push(`${label} #${i}: pc ours 0x${o.pc.toString(16)} gdb 0x${g.pc.toString(16)}`);
    if (g.file && basename(g.file).startsWith('sym_')) {
      const args = program.frameArgs(o, stack);
      if (norm(args) !== norm(g.args)) diffs.push(`${label} #${i} ${g.func} args: ours ${args} gdb ${g.args}`);
    }
  }
  return diffs;
}

export interface StepOptions {
  /** gdb's stepping command between stops (default `stepi`; `next`, `step` stop at lines) */
  command?: string;
  /** expressions printed at each stop (frame 0) and compared, e.g. `n@entry` */
  prints?: string[];
  /** commands before the breakpoint (e.g. `handle`) */
  pre?: string[];
}

/** Stops at `breakSpec`, then steps `steps` times (stepi unless told); at each stop compares our stack with gdb's. */
export function checkStepping(binary: string, breakSpec: string, steps: number, args: string[] = [], opts: StepOptions = {}): string[] {
  const dir = join(buildDir, `sym-cores-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `${basename(binary)}-step${coreSeq++}`);
  const prints = opts.prints ?? [];
  const cmds = ['handle SIGSEGV nostop noprint pass', ...(opts.pre ?? []), 'set breakpoint pending on', `break ${breakSpec}`, 'run'];
  for (let k = 0; k < steps; k++) {
    cmds.push(`echo \n@@STEP ${k}\n`, 'bt', `echo \n@@ARGS ${k}\n`, 'info args', `echo \n@@LOCALS ${k}\n`, 'info locals');
    prints.forEach((e, i) => cmds.push(`echo \n@@PRINT ${k} ${i}\n`, `print ${e}`));
    cmds.push(`echo \n@@GC ${k}\n`, `gcore ${base}.${k}`, opts.command ?? 'stepi');
  }
  cmds.push('echo \n@@END\n', 'kill');
  let out = gdbRun(binary, cmds, args);
  if (/SIGKILL/.test(out)) out = gdbRun(binary, cmds, args); // see stopAt
  const diffs: string[] = [];
  let compared = 0;
  const secs = new Map<string, string>();
  for (const sec of out.split(/\n@@/).slice(1)) { const nl = sec.indexOf('\n'); secs.set(sec.slice(0, nl), sec.slice(nl + 1)); }
  for (const sec of out.split(/\n@@/).slice(1)) {
    const m = /^STEP (\d+)\n([\s\S]*)$/.exec(sec);
    if (!m) continue;
    const path = `${base}.${m[1]}`;
    if (!existsSync(path)) continue; // the program ended
    const core = new CoreFile(path);
    try {
      const program = new Program(core.target(binary));
      const stack = program.backtrace(core.threads[0].regs);
      const gf = parseBacktrace(m[2]);
      if (gf.length) {
        compared++;
        const label = `step ${m[1]} pc 0x${stack[0]?.pc.toString(16)}`;
        diffs.push(...compareFrames(program, stack, gf, label));
        // values are compared once the frame is set up (in a prologue they are garbage, and
        // gdb's libstdc++ printers give up on garbage in ways not worth imitating)
        const fb = stack[0] ? program.functionBounds(stack[0].pc) : undefined;
        const setUp = !!fb && !!stack[0].module && stack[0].pc >= program.postPrologue(stack[0].module, fb.start, fb.end) && !stack[0].inlined;
        const ret = stack[0] ? program.target.memory.read(stack[0].pc, 1)[0] === 0xc3 : false;
        if (gf[0].file && basename(gf[0].file).startsWith('sym_') && stack[0] && setUp && !ret) {
          const ga = parseVars(secs.get(`ARGS ${m[1]}`)).map(norm), gl = parseVars(secs.get(`LOCALS ${m[1]}`)).map(norm);
          const oa = program.args(stack[0], stack).map((v) => norm(`${v.name} = ${program.format(v.value)}`));
          const ol = program.locals(stack[0], stack).map((v) => norm(`${v.name} = ${program.format(v.value)}`));
          if (JSON.stringify(ga) !== JSON.stringify(oa)) diffs.push(`${label} info args:\n   ours ${oa.join(' | ')}\n   gdb  ${ga.join(' | ')}`);
          if (JSON.stringify(gl) !== JSON.stringify(ol)) diffs.push(`${label} info locals:\n   ours ${ol.join(' | ')}\n   gdb  ${gl.join(' | ')}`);
          prints.forEach((e, i) => {
            const g = (secs.get(`PRINT ${m[1]} ${i}`) ?? '').trim();
            const gm = /^\$\d+ = ([\s\S]*)$/.exec(g);
            let ours: string | undefined;
            try { ours = program.format(program.evaluate(e, stack[0], stack), true); } catch { ours = undefined; }
            // gdb refused (no entry value known): we must refuse too
            if ((gm ? norm(gm[1]) : undefined) !== (ours === undefined ? undefined : norm(ours))) diffs.push(`${label} print ${e}: ours ${ours ?? '(error)'} gdb ${g}`);
          });
        }
      }
    } finally { core.close(); rmSync(path, { force: true }); }
  }
  if (compared < steps / 2) diffs.push(`only ${compared} of ${steps} steps compared; gdb said:\n${out.slice(0, 1500)}`);
  return diffs;
}
