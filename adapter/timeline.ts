// Time travel: every stop the user sees is kept as a position (a checkpoint, the
// record log's position, the breakpoints' hit counts). Going back restores the
// nearest earlier position and re-executes forward, replaying the recorded syscall
// results, to exactly the target:
//  - step back: the last line start executed in the current frame before here;
//  - reverse continue: the last breakpoint hit (conditions and hit counts respected).
// A position is found again by what identifies it: a breakpoint stop is the k-th hit
// of its address since the previous position, a line step's stop the first arrival at
// its pc in its frame. Where the current position cannot be identified (a pause, a
// signal), going back goes to the previous position and says so.
import type { Session as Engine } from './engine';
import type { UserBreakpoint } from './breakpoints';
import { parseHitCondition } from './breakpoints';
import type { Program } from './symbols';

export type Via = 'breakpoint' | 'step' | 'signal' | 'periodic' | 'other';

export interface Position {
  /** its checkpoint; undefined once thinned: the position stays as a waypoint that
   * re-execution passes through (how it is recognised is kept), without its memory */
  cp?: number;
  pos: bigint;
  tid: number;
  pc: bigint;
  cfa?: bigint;
  via: Via;
  /** via signal: the signal it stopped with (a fault happens again at the same pc on replay) */
  signo?: number;
  /** hits of every user breakpoint (by id) when this position was reached */
  hits: Map<number, number>;
  /** every hit so far at each user breakpoint address, stopping or not (counted while one is there) */
  raw: Map<bigint, number>;
  /** when it was reached (wall clock, ms) */
  at: number;
  /** a step stop found again as the n-th hit of its pc since the position before it (any
   * frame). Known once a search has counted it; without it, the first arrival at its pc in
   * its frame at its log position, which holds for a step from the stop before it but
   * not across iterations of a loop that makes no syscall */
  arrival?: number;
  /** via step: how long the program ran to get here from the stop before (ms) */
  ranMs?: number;
}

// A step's stop holds no checkpoint of its own while the last one is a few short steps
// back: going back re-executes those steps (each well under a millisecond) rather than
// every forward step paying for a checkpoint, which was a third of a `next` here
// (1.4 ms without, 2.2 with: the tracer's delta and its hand-offs share the adapter's
// CPU). A long step (a call stepped over) or a stop of another kind always keeps one.
const SPARSE_STEPS = 4;
const SPARSE_RUN_MS = 5;
const CROSS_SPIN_US = 500;

/** Limits on what the timeline keeps (settings cryo.timeTravel.*). */
export interface TimelineLimits {
  maxPositions: number;
  /** page data the checkpoints may hold, in bytes (frozen copies' shared pages are not counted) */
  budgetBytes: number;
  /** while the program runs, a position this often (ms; 0: none), at its next recorded syscall */
  periodMs: number;
}

export const DEFAULT_LIMITS: TimelineLimits = { maxPositions: 256, budgetBytes: 512 * 1024 * 1024, periodMs: 1000 };

/** What a search from a position saw: whether it reached the position after it, every
 * breakpoint hit on the way in order, and how many of them were at that position's pc
 * (its own hit included). */
interface Scan {
  reached: boolean;
  order: bigint[];
  cHits?: number;
}

/** A stop seen while re-executing: a breakpoint hit (addr: its address) or a signal (addr: the pc). */
interface Seen {
  addr: bigint;
  cfa: bigint | undefined;
  tid: number;
  signo?: number;
  /** a periodic stop: the log position it was asked at */
  pos?: bigint;
}

export interface TimelineHost {
  engine: Engine;
  program: Program;
  breakpoints(): UserBreakpoint[];
  /** the breakpoint's condition at the current stop (no logging, no counting) */
  conditionHolds(b: UserBreakpoint, tid: number): boolean;
  frameCfa(tid: number): bigint | undefined;
  /** the session's count of hits at user breakpoint addresses */
  rawHits: Map<bigint, number>;
}

export interface Arrival {
  tid: number;
  reason: 'step' | 'breakpoint' | 'entry';
  description: string;
  hitIds?: number[];
}

export class Timeline {
  readonly positions: Position[] = [];
  index = -1;
  /** why time travel is off, if it is */
  unavailable?: string;

  constructor(
    private readonly h: TimelineHost,
    private readonly limits: TimelineLimits = DEFAULT_LIMITS,
  ) {}

  get atPresent(): boolean {
    return this.index === this.positions.length - 1;
  }

  /** A stop was reported: keep it as a position. Going forward from the past forgets
   * the positions ahead (re-execution replays the log, so they come back the same).
   * `cfa`: the frame the stop is in, for the positions step back can start from;
   * `ranMs`: for a step, how long the program ran in it. */
  onStop(tid: number, via: Via, cfa: bigint | undefined, signo?: number, ranMs?: number): void {
    const e = this.h.engine;
    if (!e.pid) return;
    try {
      this.dropFuture();
      // the position first: the engine finishes a checkpoint on its tracer thread after
      // returning, and a later engine call would wait for that
      const pos = e.recordPosition();
      const sparse = via === 'step' && cfa !== undefined && ranMs !== undefined && this.nearCheckpoint(ranMs);
      const cp = sparse ? undefined : e.checkpoint();
      const hits = new Map<number, number>();
      for (const b of this.h.breakpoints()) hits.set(b.id, b.hits);
      this.positions.push({ cp, pos, tid, pc: e.registers(tid).rip, cfa, via, signo, hits, raw: new Map(this.h.rawHits), at: Date.now(), ranMs });
      if (cp !== undefined) this.kept++;
      this.index = this.positions.length - 1;
      this.thin();
      this.unavailable = undefined;
    } catch (err) {
      this.unavailable = (err as Error).message;
    }
  }

  /** Whether the last checkpoint is few and short steps back, a step of ranMs added. */
  private nearCheckpoint(ranMs: number): boolean {
    let steps = 1;
    let ran = ranMs;
    for (let i = this.positions.length - 1; i >= 0; i--) {
      const p = this.positions[i];
      if (p.cp !== undefined) return steps <= SPARSE_STEPS && ran < SPARSE_RUN_MS;
      // a waypoint that thinning made, or one found by a search, is no short step
      if (p.via !== 'step' || p.ranMs === undefined) return false;
      steps++;
      ran += p.ranMs;
    }
    return false;
  }

  private dropFuture(): void {
    for (const p of this.positions.splice(this.index + 1)) this.forget(p);
  }

  private forget(p: Position): void {
    if (p.cp === undefined) return;
    try {
      this.h.engine.deleteCheckpoint(p.cp);
    } catch {
      /* already gone */
    }
    p.cp = undefined;
    this.kept--;
  }

  /** Page data held by the positions' checkpoints. */
  bytes(): number {
    const mine = new Set(this.positions.map((p) => p.cp).filter((c) => c !== undefined));
    try {
      return this.h.engine.checkpoints().reduce((n, c) => n + (mine.has(c.id) ? c.bytes : 0), 0);
    } catch {
      return 0;
    }
  }

  /** Keeps memory bounded: past a limit (checkpoints kept, or bytes), every other
   * checkpoint of the older half goes. Their positions stay as waypoints (a stop is
   * found again from the one before it, so a chain of them is followed from the
   * nearest checkpoint): going back still reaches every stop, just by re-executing
   * longer. The first position always keeps its checkpoint. */
  private stopsSinceBudget = 0;
  /** positions that hold a checkpoint: counted as they change, so that a stop under the
   * limits costs no scan of the whole timeline (0.1 ms a stop after 2000 of them) */
  private kept = 0;

  private thin(): void {
    const max = Math.max(4, this.limits.maxPositions);
    // the memory held is asked of the engine now and then, not at every stop (a step's cost)
    const checkBytes = ++this.stopsSinceBudget >= 16;
    if (checkBytes) this.stopsSinceBudget = 0;
    if (this.kept <= max && !(checkBytes && this.kept > 4)) return;
    for (let round = 0; round < 8; round++) {
      const real = this.positions.map((p, i) => (p.cp !== undefined ? i : -1)).filter((i) => i >= 0);
      const over = real.length > max || (checkBytes && real.length > 4 && this.bytes() > this.limits.budgetBytes);
      if (!over) return;
      const older = real.slice(1, real.length - Math.floor(Math.min(max, real.length) / 2));
      let dropped = 0;
      older.forEach((i, k) => {
        // a pause or a signal stop cannot be found again: it keeps its checkpoint
        if (k % 2 === 0 && this.positions[i].via !== 'other') {
          this.forget(this.positions[i]);
          dropped++;
        }
      });
      if (!dropped) return;
    }
  }

  /** The user changed memory or registers: the recorded future is no longer this program's. */
  changed(): void {
    try {
      this.h.engine.recordTruncate(this.h.engine.recordPosition());
    } catch {
      /* not recording */
    }
    this.dropFuture();
  }

  /** Restores a position that has its checkpoint: the process is as it was there,
   * replay continues from its log position. */
  private restoreAt(p: Position): number {
    const pid = this.h.engine.restore(p.cp!);
    this.h.engine.replayFrom(p.pos);
    this.countsOf(p);
    return pid;
  }

  private countsOf(p: Position): void {
    for (const b of this.h.breakpoints()) b.hits = p.hits.get(b.id) ?? 0;
    for (const a of [...this.h.rawHits.keys()]) this.h.rawHits.set(a, p.raw.get(a) ?? 0);
  }

  /**
   * Brings the process to position i: restores the nearest checkpoint at or before it and
   * re-executes through the waypoints in between. Returns the thread that stands there,
   * or undefined if a waypoint was not found again.
   */
  private async arrive(i: number): Promise<number | undefined> {
    let base = i;
    while (base > 0 && this.positions[base].cp === undefined) base--;
    const pid = this.restoreAt(this.positions[base]);
    let tid: number | undefined = pid;
    for (let w = base + 1; w <= i && tid !== undefined; w++) tid = await this.runUntil(this.positions[w - 1], this.positions[w]);
    if (tid !== undefined) this.countsOf(this.positions[i]);
    return tid;
  }

  /** From the state of p, re-executes until c is recognised; the thread there. */
  private async runUntil(p: Position, c: Position): Promise<number | undefined> {
    const isC = this.identity(p, c);
    if (!isC) return undefined;
    const e = this.h.engine;
    // a signal stop is caught as the signal itself, not by a breakpoint before the fault;
    // a periodic one by the engine stopping at its log position
    const bp = c.via !== 'signal' && c.via !== 'periodic';
    try {
      if (bp) e.insertBreakpoint(c.pc);
      if (c.via === 'periodic') e.recordStopAt(c.pos);
    } catch {
      return undefined;
    }
    try {
      for (;;) {
        e.continue();
        // awake for a moment: crossing a short step's waypoint takes well under a millisecond
        const ev = await e.waitStop(CROSS_SPIN_US);
        if (ev.kind !== 'stopped') return undefined;
        if (ev.reason === 'syscall') {
          if (isC({ addr: e.registers(ev.tid).rip, cfa: undefined, tid: ev.tid, pos: ev.addr })) return ev.tid;
          return undefined;
        }
        if (ev.reason === 'signal') {
          if (isC({ addr: e.registers(ev.tid).rip, cfa: this.h.frameCfa(ev.tid), tid: ev.tid, signo: ev.signo })) return ev.tid;
          continue;
        }
        if (ev.reason !== 'breakpoint') return undefined;
        if (isC({ addr: ev.addr, cfa: this.h.frameCfa(ev.tid), tid: ev.tid })) return ev.tid;
      }
    } finally {
      try {
        if (bp) e.removeBreakpoint(c.pc);
        if (c.via === 'periodic') e.recordStopAt(undefined);
      } catch {
        /* gone */
      }
    }
  }

  /** Inserts a position found by re-execution just after `after`: the n-th hit of its pc
   * in the search `scan` made from there. The position that followed `after` is then
   * counted from the new one: its hits up to the new one are taken off. */
  private insertAfter(afterIndex: number, tid: number, via: Via, n: number, scan: Scan, at: number): void {
    const e = this.h.engine;
    const pos = e.recordPosition();
    const cp = e.checkpoint();
    const hits = new Map<number, number>();
    for (const b of this.h.breakpoints()) hits.set(b.id, b.hits);
    const pc = e.registers(tid).rip;
    const next = this.positions[afterIndex + 1];
    if (next && next.via === 'step' && scan.cHits !== undefined) {
      let before = 0;
      for (let j = 0; j <= at; j++) if (scan.order[j] === next.pc) before++;
      next.arrival = scan.cHits - before;
    }
    this.kept++;
    this.positions.splice(afterIndex + 1, 0, { cp, pos, tid, pc, cfa: this.h.frameCfa(tid), via, hits, raw: new Map(this.h.rawHits), at: Date.now(), arrival: n });
    this.index = afterIndex + 1;
  }

  /** How the current position `c` is recognised when re-executing from `p`: the k-th
   * counted hit of its breakpoint (counted as the live run counted: condition true), or
   * the first arrival at its pc in its frame, or (a signal stop) the first time that signal
   * stops the program at its pc. */
  private identity(p: Position, c: Position): ((x: Seen) => boolean) | undefined {
    if (c.via === 'signal') return (x) => x.signo === c.signo && x.addr === c.pc;
    // a periodic position stands before the syscall at its log position: the engine stops there again
    if (c.via === 'periodic') return (x) => x.pos === c.pos;
    if (c.via === 'breakpoint') {
      // the k-th hit of its address since p, counted while a breakpoint was there all along
      const before = p.raw.get(c.pc);
      const at = c.raw.get(c.pc);
      if (before === undefined || at === undefined || at - before <= 0) return undefined;
      const k = at - before;
      let counted = 0;
      return (x) => x.signo === undefined && x.addr === c.pc && ++counted === k;
    }
    // a step stop counted by a search: the n-th hit of its pc
    if (c.via === 'step' && c.arrival !== undefined) {
      let counted = 0;
      return (x) => x.signo === undefined && x.addr === c.pc && ++counted === c.arrival;
    }
    // a step stop: the arrival at its pc in its frame with the same log position (the same
    // invocation where syscalls tell calls apart; the first such arrival otherwise)
    if (c.via === 'step' && c.cfa !== undefined)
      return (x) => x.signo === undefined && x.addr === c.pc && x.cfa === c.cfa && this.logPosition() === c.pos;
    return undefined;
  }

  private logPosition(): bigint | undefined {
    try {
      return this.h.engine.recordPosition();
    } catch {
      return undefined;
    }
  }

  /** Counts a hit of the user breakpoints at addr as a live stop would (condition true). */
  private countHit(addr: bigint, tid: number): void {
    const raw = this.h.rawHits.get(addr);
    if (raw !== undefined) this.h.rawHits.set(addr, raw + 1);
    for (const b of this.h.breakpoints()) if (b.addrs.includes(addr) && (!b.condition || this.h.conditionHolds(b, tid))) b.hits++;
  }

  /** A breakpoint is set at addr anew: its hits count from 0 again, so the counts that
   * older positions hold for addr are not comparable any more. */
  forgetAddress(addr: bigint): void {
    for (const p of this.positions) p.raw.delete(addr);
  }

  /**
   * Re-executes from position p with temporary breakpoints at `watch` (and at c's pc)
   * until c is reached; calls `see` for every hit before it. Returns false if c was not
   * reached (the program ended, diverged, or never came by).
   */
  private async scan(pi: number, c: Position, watch: bigint[], see: (addr: bigint, cfa: bigint | undefined, tid: number, n: number, at: number) => void): Promise<Scan> {
    const p = this.positions[pi];
    const isC = this.identity(p, c);
    const result: Scan = { reached: false, order: [] };
    if (!isC) return result;
    const e = this.h.engine;
    if ((await this.arrive(pi)) === undefined) return result;
    const temp: bigint[] = [];
    if (c.via === 'periodic') e.recordStopAt(c.pos);
    for (const a of new Set([...watch, ...(c.via === 'signal' || c.via === 'periodic' ? [] : [c.pc])])) {
      try {
        e.insertBreakpoint(a);
        temp.push(a);
      } catch {
        // not mapped yet at p (a library loaded later): this stretch cannot be searched exactly
        for (const t of temp) e.removeBreakpoint(t);
        return result;
      }
    }
    const seen = new Map<bigint, number>();
    try {
      for (let guard = 0; guard < 10_000_000; guard++) {
        e.continue();
        const ev = await e.waitStop();
        if (ev.kind !== 'stopped') return result;
        if (ev.reason === 'signal') {
          if (isC({ addr: e.registers(ev.tid).rip, cfa: this.h.frameCfa(ev.tid), tid: ev.tid, signo: ev.signo })) result.reached = true;
          if (result.reached) return result;
          continue; // delivered as in the recorded run
        }
        if (ev.reason === 'syscall') {
          result.reached = isC({ addr: e.registers(ev.tid).rip, cfa: undefined, tid: ev.tid, pos: ev.addr });
          return result;
        }
        if (ev.reason !== 'breakpoint') return result;
        const n = (seen.get(ev.addr) ?? 0) + 1;
        seen.set(ev.addr, n);
        result.order.push(ev.addr);
        const cfa = this.h.frameCfa(ev.tid);
        if (isC({ addr: ev.addr, cfa, tid: ev.tid })) {
          result.reached = true;
          result.cHits = ev.addr === c.pc ? n : undefined;
          return result;
        }
        see(ev.addr, cfa, ev.tid, n, result.order.length - 1);
      }
      return result;
    } finally {
      if (c.via === 'periodic') e.recordStopAt(undefined);
      for (const a of temp) {
        try {
          e.removeBreakpoint(a);
        } catch {
          /* the process may be gone */
        }
      }
    }
  }

  /** Re-executes from position pi to the n-th hit of addr (in frame cfa when given). */
  private async runTo(pi: number, addr: bigint, n: number, cfa?: bigint): Promise<number | undefined> {
    const e = this.h.engine;
    if ((await this.arrive(pi)) === undefined) return undefined;
    e.insertBreakpoint(addr);
    let count = 0;
    try {
      for (;;) {
        e.continue();
        const ev = await e.waitStop();
        if (ev.kind !== 'stopped') return undefined;
        if (ev.reason === 'signal') continue;
        if (ev.reason !== 'breakpoint') return undefined;
        this.countHit(ev.addr, ev.tid);
        if (ev.addr !== addr) continue;
        if (cfa !== undefined && this.h.frameCfa(ev.tid) !== cfa) continue;
        if (++count === n) return ev.tid;
      }
    } finally {
      try {
        e.removeBreakpoint(addr);
      } catch {
        /* gone */
      }
    }
  }

  private lineStarts(pc: bigint): bigint[] {
    const f = this.h.program.functionBounds(pc);
    if (!f) return [];
    const out: bigint[] = [];
    for (let a = f.start; a < f.end; ) {
      const r = this.h.program.lineRange(a);
      if (!r || r.end <= a) break;
      if (r.start >= f.start) out.push(r.start);
      a = r.end;
    }
    return out;
  }

  /** Position i as the place to stop: reached by re-execution, else its nearest checkpoint before. */
  private async backTo(i: number): Promise<number> {
    const tid = await this.arrive(i);
    if (tid !== undefined) return tid;
    let base = i;
    while (base > 0 && this.positions[base].cp === undefined) base--;
    return this.restoreAt(this.positions[base]);
  }

  private earliest(why: string): Arrival {
    const first = this.positions[0];
    const pid = this.restoreAt(first);
    this.index = 0;
    return { tid: pid, reason: 'entry', description: why };
  }

  /** Step back over one line in the current frame (or to the previous position). The
   * stretches between periodic positions are searched from the latest back. */
  async stepBack(): Promise<Arrival> {
    if (this.unavailable) throw new Error(`Step back is not available: ${this.unavailable}`);
    if (this.index <= 0) return this.earliest('This is the earliest position kept: the timeline starts here.');
    const c = this.positions[this.index];
    const frameOf = c.cfa;
    const starts = this.lineStarts(c.pc);
    for (let k = this.index; k > 0; k--) {
      const pi = k - 1;
      const events: { addr: bigint; n: number; tid: number; at: number }[] = [];
      const sc = await this.scan(pi, this.positions[k], starts, (addr, cfa, tid, n, at) => {
        if (cfa === frameOf && frameOf !== undefined) events.push({ addr, n, tid, at });
      });
      const reached = sc.reached;
      // a fault: the arrival at its own pc just before it is the same state, not a line before
      if (reached && k === this.index && c.via === 'signal' && events[events.length - 1]?.addr === c.pc) events.pop();
      // a line can have several rows (`next` lands on the first): in the middle of a line,
      // step back goes to the start of this line; at its start, to the start of the line before
      // (the last run of rows of one line before c: c's own line if c is mid-line)
      const lineOf = (a: bigint) => this.h.program.lineRange(a)?.line;
      let i = events.length - 1;
      if (i >= 0) {
        const l = lineOf(events[i].addr);
        while (i > 0 && lineOf(events[i - 1].addr) === l) i--;
        events.splice(i + 1);
      }
      if (reached && events.length) {
        const last = events[i];
        const tid = await this.runTo(pi, last.addr, last.n);
        if (tid !== undefined) {
          this.insertAfter(pi, tid, 'step', last.n, sc, last.at);
          return { tid, reason: 'step', description: 'Stepped back one line.' };
        }
      }
      // a periodic position is only a place to search from: the line may lie further back
      if (reached && this.positions[pi].via === 'periodic') continue;
      // no earlier line of this frame after the previous stop: that stop is the step back
      const pid = await this.backTo(pi);
      this.index = pi;
      return { tid: pid, reason: 'step', description: reached ? 'Stepped back one line.' : 'Stepped back to the previous position (this one cannot be found again exactly).' };
    }
    return this.earliest('This is the earliest position kept: the timeline starts here.');
  }

  /**
   * Reverse step out: back to the call that entered the current function, stopped at
   * the call instruction `callSite` in the caller's frame `callerCfa` (gdb's
   * reverse-finish). The call is the last arrival there before now; it may lie before
   * several positions, so earlier stretches are searched in turn.
   */
  async stepOutBack(callSite: bigint, callerCfa: bigint): Promise<Arrival> {
    if (this.unavailable) throw new Error(`Reverse step out is not available: ${this.unavailable}`);
    for (let k = this.index; k > 0; k--) {
      const c = this.positions[k];
      const p = this.positions[k - 1];
      const calls: { n: number; at: number }[] = [];
      const sc = await this.scan(k - 1, c, [callSite], (addr, cfa, _tid, n, at) => {
        if (addr === callSite && cfa === callerCfa) calls.push({ n, at });
      });
      const reached = sc.reached;
      if (reached && calls.length) {
        const last = calls[calls.length - 1];
        const tid = await this.runTo(k - 1, callSite, last.n);
        if (tid !== undefined) {
          this.index = k - 1;
          this.insertAfter(k - 1, tid, 'step', last.n, sc, last.at);
          return { tid, reason: 'step', description: 'Stepped back out of the function: at its call.' };
        }
      }
      if (!reached) break; // the past before p cannot be searched exactly
    }
    return this.earliest('The call was made before the earliest position kept: this is as far back as the timeline reaches.');
  }

  /** How far back the timeline reaches: positions kept, the earliest one, memory held. */
  reach(): { positions: number; checkpoints: number; index: number; earliest?: Position; bytes: number } {
    // counted afresh (not this.kept): the view's figure stays a check of the count thin() trusts
    const checkpoints = this.positions.filter((p) => p.cp !== undefined).length;
    return { positions: this.positions.length, checkpoints, index: this.index, earliest: this.positions[0], bytes: this.bytes() };
  }

  /** Back to the most recent earlier breakpoint hit, or the earliest position. */
  async reverseContinue(): Promise<Arrival> {
    if (this.unavailable) throw new Error(`Reverse continue is not available: ${this.unavailable}`);
    for (let k = this.index; k > 0; k--) {
      const c = this.positions[k];
      const p = this.positions[k - 1];
      const bps = this.h.breakpoints().filter((b) => b.addrs.length);
      const hits: { addr: bigint; n: number; ids: number[]; at: number }[] = [];
      const counts = new Map<number, number>();
      for (const b of bps) counts.set(b.id, p.hits.get(b.id) ?? 0);
      const sc = await this.scan(k - 1, c, [], (addr, _cfa, tid, n, at) => {
        const stopping: number[] = [];
        for (const b of bps.filter((x) => x.addrs.includes(addr))) {
          if (b.condition && !this.h.conditionHolds(b, tid)) continue;
          const h = (counts.get(b.id) ?? 0) + 1;
          counts.set(b.id, h);
          if (b.hitCondition && !parseHitCondition(b.hitCondition)(h)) continue;
          if (b.logMessage) continue;
          stopping.push(b.id);
        }
        if (stopping.length) hits.push({ addr, n, ids: stopping, at });
      });
      const reached = sc.reached;
      if (reached && hits.length) {
        const last = hits[hits.length - 1];
        const tid = await this.runTo(k - 1, last.addr, last.n);
        if (tid !== undefined) {
          this.index = k - 1;
          this.insertAfter(k - 1, tid, 'breakpoint', last.n, sc, last.at);
          return { tid, reason: 'breakpoint', description: 'Reverse continue: the previous breakpoint hit.', hitIds: last.ids };
        }
      }
      if (p.via === 'breakpoint') {
        const pid = await this.backTo(k - 1);
        this.index = k - 1;
        const ids = this.h.breakpoints().filter((b) => b.addrs.includes(p.pc)).map((b) => b.id);
        if (ids.length) return { tid: pid, reason: 'breakpoint', description: 'Reverse continue: the previous breakpoint hit.', hitIds: ids };
      }
      if (!reached && c.via !== 'other') break; // the past cannot be searched further exactly
    }
    return this.earliest('Reverse continue reached the earliest position kept: no earlier breakpoint hit.');
  }
}
