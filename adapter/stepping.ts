// Source-level stepping, with gdb's rules (infrun): `next` steps until the pc reaches
// the start of a different line of the same frame, stepping over calls; `step` also
// stops at the first line of a called function that has line information; returning
// into the middle of the caller's line keeps stepping to the next line start.
// `finish` runs to the return address of the current frame.
import type { EngineEvent, Session as Engine } from './engine';
import type { Program } from './symbols';

/** What ended a step: the step itself, or something that stopped the program on the way. */
export type StepEnd = { kind: 'done' } | { kind: 'event'; event: EngineEvent };

export interface StepHost {
  engine: Engine;
  program: Program;
  /** one single-step of tid; resolves with the engine event that ended it */
  singleStep(tid: number): Promise<EngineEvent>;
  /** steps tid while its pc is in [lo, hi), in the engine; stops early right after a call,
   * or with `over` runs each call to its return and steps on */
  stepRange(tid: number, lo: bigint, hi: bigint, over: boolean): Promise<EngineEvent>;
  /** goes on with a step over a call that a stop interrupted (the stop had inStep) */
  resumeStep(tid: number): Promise<EngineEvent>;
  /** a stop the user does not see (a false condition, a signal passed to the program,
   * the adapter's own breakpoints); its hit counted */
  isSilent(ev: EngineEvent): Promise<boolean>;
  /** runs until the temporary breakpoint at addr is hit by tid with rsp above minSp, or another stop */
  runTo(tid: number, addr: bigint, minSp: bigint): Promise<StepEnd>;
  /** registers of tid by DWARF number, for unwinding */
  dwarfRegs(tid: number): Map<number, bigint>;
}

const MAX_STEPS = 200_000;

function isStepStop(e: EngineEvent, tid: number): boolean {
  return e.kind === 'stopped' && e.tid === tid && e.reason === 'step';
}

/** After stepping out of [lo, hi): did a call instruction of that range take us here?
 * Then the return address on the stack points back into the range. */
function enteredCall(h: StepHost, range: [bigint, bigint], pc: bigint, sp: bigint, spAtStart: bigint): bigint | undefined {
  if (pc >= range[0] && pc < range[1]) return undefined;
  if (sp >= spAtStart) return undefined; // a return or a jump, not a call
  const ret = h.engine.readMemory(sp, 8);
  if (ret.length < 8) return undefined;
  const r = ret.readBigUInt64LE(0);
  return r > range[0] && r <= range[1] ? r : undefined;
}

/** The range to step through from pc: the rest of its line's rows that follow one
 * another (one engine step for all of them), within pc's function. */
function extentOf(h: StepHost, pc: bigint, row: { start: bigint; end: bigint }): [bigint, bigint] {
  const fn = h.program.functionBounds(pc);
  let end = h.program.lineExtent(pc)?.end ?? row.end;
  if (fn && end > fn.end && row.end <= fn.end) end = fn.end;
  return [row.start, end];
}

export async function stepLine(h: StepHost, tid: number, into: boolean): Promise<StepEnd> {
  let regs = h.engine.registers(tid);
  let pc = regs.rip;
  const first = h.program.lineRange(pc);
  if (!first) return finish(h, tid); // no line information here: leave the function, as gdb does
  let range = extentOf(h, pc, first);
  const startLine = first.line;
  const startFile = first.file;
  const startFn = h.program.describe(pc).function;
  // the frame we step in: deeper means a call, higher means we returned
  const frameSp = regs.rsp;
  for (let n = 0; n < MAX_STEPS; n++) {
    const spBefore = regs.rsp;
    let ev = pc >= range[0] && pc < range[1] ? await h.stepRange(tid, range[0], range[1], !into) : await h.singleStep(tid);
    // a stop the user does not see, inside a call stepped over or on the way: go on with the step
    while (!isStepStop(ev, tid)) {
      if (ev.kind !== 'stopped' || ev.tid !== tid || !(await h.isSilent(ev))) return { kind: 'event', event: ev };
      if (!ev.inStep) break; // the step ended there (the call's return): carry on from this pc
      ev = await h.resumeStep(tid);
    }
    regs = h.engine.registers(tid);
    pc = regs.rip;
    const ret = enteredCall(h, range, pc, regs.rsp, spBefore);
    if (ret !== undefined) {
      const target = h.program.lineRange(pc);
      if (into && target) {
        // stop where `break FUNC` would: after the prologue of the function entered
        const m = h.program.moduleFor(pc);
        const body = m ? h.program.postPrologue(m, pc) : pc;
        if (body !== pc) {
          const end = await h.runTo(tid, body, 0n);
          if (end.kind !== 'done') return end;
        }
        return { kind: 'done' };
      }
      // step over the call: run to the return address in this frame
      const end = await h.runTo(tid, ret, regs.rsp);
      if (end.kind !== 'done') return end;
      regs = h.engine.registers(tid);
      pc = regs.rip;
    }
    if (pc >= range[0] && pc < range[1]) continue;
    const lr = h.program.lineRange(pc);
    if (!lr) {
      // ran into code without line information (returned into a library, or a jump):
      // finish back into code that has it
      if (regs.rsp > frameSp) return finish(h, tid);
      continue;
    }
    const returned = regs.rsp > frameSp && h.program.describe(pc).function !== startFn;
    if (lr.start === pc && !returned) {
      const sameLine = lr.line === startLine && lr.file === startFile && h.program.describe(pc).function === startFn;
      if (!sameLine) return { kind: 'done' };
    }
    if (returned && lr.start === pc) return { kind: 'done' };
    // the middle of a line (or another part of the same line): keep going through it
    range = extentOf(h, pc, lr);
  }
  return { kind: 'done' };
}

/** Runs until the current function returns to its caller. */
export async function finish(h: StepHost, tid: number): Promise<StepEnd> {
  const regs = h.engine.registers(tid);
  const stack = h.program.backtrace(h.dwarfRegs(tid), 64);
  const me = stack[0];
  const caller = stack.find((f) => f.physIndex > (me?.physIndex ?? 0));
  if (!caller) {
    const ev = await h.singleStep(tid);
    return isStepStop(ev, tid) ? { kind: 'done' } : { kind: 'event', event: ev };
  }
  return h.runTo(tid, caller.pc, me?.cfa !== undefined ? me.cfa - 8n : regs.rsp);
}

