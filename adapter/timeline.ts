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

export type Via = 'breakpoint' | 'step' | 'other';

export interface Position {
  cp: number;
  pos: bigint;
  tid: number;
  pc: bigint;
  cfa?: bigint;
  via: Via;
  /** hits of every user breakpoint (by id) when this position was reached */
  hits: Map<number, number>;
  /** every hit so far at each user breakpoint address, stopping or not (counted while one is there) */
  raw: Map<bigint, number>;
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

const MAX_POSITIONS = 256;

export class Timeline {
  readonly positions: Position[] = [];
  index = -1;
  /** why time travel is off, if it is */
  unavailable?: string;

  constructor(private readonly h: TimelineHost) {}

  get atPresent(): boolean {
    return this.index === this.positions.length - 1;
  }

  /** A stop was reported: keep it as a position. Going forward from the past forgets
   * the positions ahead (re-execution replays the log, so they come back the same). */
  onStop(tid: number, via: Via): void {
    const e = this.h.engine;
    if (!e.pid) return;
    try {
      this.dropFuture();
      const cp = e.checkpoint();
      const hits = new Map<number, number>();
      for (const b of this.h.breakpoints()) hits.set(b.id, b.hits);
      this.positions.push({ cp, pos: e.recordPosition(), tid, pc: e.registers(tid).rip, cfa: this.h.frameCfa(tid), via, hits, raw: new Map(this.h.rawHits) });
      this.index = this.positions.length - 1;
      this.thin();
      this.unavailable = undefined;
    } catch (err) {
      this.unavailable = (err as Error).message;
    }
  }

  private dropFuture(): void {
    for (const p of this.positions.splice(this.index + 1)) this.forget(p);
  }

  private forget(p: Position): void {
    try {
      this.h.engine.deleteCheckpoint(p.cp);
    } catch {
      /* already gone */
    }
  }

  /** Keeps memory bounded: past the limit, every other old position goes (the first stays). */
  private thin(): void {
    if (this.positions.length <= MAX_POSITIONS) return;
    const keep: Position[] = [];
    this.positions.forEach((p, i) => {
      if (i === 0 || i >= this.positions.length - MAX_POSITIONS / 2 || i % 2 === 0) keep.push(p);
      else this.forget(p);
    });
    this.positions.splice(0, this.positions.length, ...keep);
    this.index = this.positions.length - 1;
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

  /** Restores a position: the process is as it was there, replay continues from its log position. */
  private goTo(p: Position): number {
    const pid = this.h.engine.restore(p.cp);
    this.h.engine.replayFrom(p.pos);
    for (const b of this.h.breakpoints()) b.hits = p.hits.get(b.id) ?? 0;
    for (const a of [...this.h.rawHits.keys()]) this.h.rawHits.set(a, p.raw.get(a) ?? 0);
    return pid;
  }

  /** Inserts a position found by re-execution just after `after`. */
  private insertAfter(afterIndex: number, tid: number, via: Via): void {
    const e = this.h.engine;
    const cp = e.checkpoint();
    const hits = new Map<number, number>();
    for (const b of this.h.breakpoints()) hits.set(b.id, b.hits);
    this.positions.splice(afterIndex + 1, 0, { cp, pos: e.recordPosition(), tid, pc: e.registers(tid).rip, cfa: this.h.frameCfa(tid), via, hits, raw: new Map(this.h.rawHits) });
    this.index = afterIndex + 1;
  }

  /** How the current position `c` is recognised when re-executing from `p`: the k-th
   * counted hit of its breakpoint (counted as the live run counted: condition true), or
   * the first arrival at its pc in its frame. */
  private identity(p: Position, c: Position): ((addr: bigint, cfa: bigint | undefined, tid: number) => boolean) | undefined {
    if (c.via === 'breakpoint') {
      // the k-th hit of its address since p, counted while a breakpoint was there all along
      const before = p.raw.get(c.pc);
      const at = c.raw.get(c.pc);
      if (before === undefined || at === undefined || at - before <= 0) return undefined;
      const k = at - before;
      let counted = 0;
      return (addr) => addr === c.pc && ++counted === k;
    }
    if (c.via === 'step' && c.cfa !== undefined) return (addr, cfa) => addr === c.pc && cfa === c.cfa;
    return undefined;
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
  private async scan(p: Position, c: Position, watch: bigint[], see: (addr: bigint, cfa: bigint | undefined, tid: number, n: number) => void): Promise<boolean> {
    const isC = this.identity(p, c);
    if (!isC) return false;
    const e = this.h.engine;
    this.goTo(p);
    const temp: bigint[] = [];
    for (const a of new Set([...watch, c.pc])) {
      try {
        e.insertBreakpoint(a);
        temp.push(a);
      } catch {
        // not mapped yet at p (a library loaded later): this stretch cannot be searched exactly
        for (const t of temp) e.removeBreakpoint(t);
        return false;
      }
    }
    const seen = new Map<bigint, number>();
    try {
      for (let guard = 0; guard < 10_000_000; guard++) {
        e.continue();
        const ev = await e.waitStop();
        if (ev.kind !== 'stopped') return false;
        if (ev.reason === 'signal') continue; // delivered as in the recorded run
        if (ev.reason !== 'breakpoint') return false;
        const n = (seen.get(ev.addr) ?? 0) + 1;
        seen.set(ev.addr, n);
        const cfa = this.h.frameCfa(ev.tid);
        if (isC(ev.addr, cfa, ev.tid)) return true;
        see(ev.addr, cfa, ev.tid, n);
      }
      return false;
    } finally {
      for (const a of temp) {
        try {
          e.removeBreakpoint(a);
        } catch {
          /* the process may be gone */
        }
      }
    }
  }

  /** Re-executes from p to the n-th hit of addr (in frame cfa when given). */
  private async runTo(p: Position, addr: bigint, n: number, cfa?: bigint): Promise<number | undefined> {
    const e = this.h.engine;
    this.goTo(p);
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

  private earliest(why: string): Arrival {
    const first = this.positions[0];
    const pid = this.goTo(first);
    this.index = 0;
    return { tid: pid, reason: 'entry', description: why };
  }

  /** Step back over one line in the current frame (or to the previous position). */
  async stepBack(): Promise<Arrival> {
    if (this.unavailable) throw new Error(`Step back is not available: ${this.unavailable}`);
    if (this.index <= 0) return this.earliest('This is the earliest position kept: the timeline starts here.');
    const c = this.positions[this.index];
    const p = this.positions[this.index - 1];
    const events: { addr: bigint; n: number; tid: number }[] = [];
    const frameOf = c.cfa;
    const reached = await this.scan(p, c, this.lineStarts(c.pc), (addr, cfa, tid, n) => {
      if (cfa === frameOf && frameOf !== undefined) events.push({ addr, n, tid });
    });
    if (!reached || !events.length) {
      // no earlier line of this frame after the previous position: that position is the step back
      const pid = this.goTo(p);
      this.index -= 1;
      return { tid: pid, reason: 'step', description: reached ? 'Stepped back one line.' : 'Stepped back to the previous position (this one cannot be found again exactly).' };
    }
    const last = events[events.length - 1];
    const tid = await this.runTo(p, last.addr, last.n);
    if (tid === undefined) {
      const pid = this.goTo(p);
      this.index -= 1;
      return { tid: pid, reason: 'step', description: 'Re-execution did not reach the previous line again: stepped back to the previous position.' };
    }
    this.insertAfter(this.index - 1, tid, 'step');
    return { tid, reason: 'step', description: 'Stepped back one line.' };
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
      const calls: { n: number }[] = [];
      const reached = await this.scan(p, c, [callSite], (addr, cfa, _tid, n) => {
        if (addr === callSite && cfa === callerCfa) calls.push({ n });
      });
      if (reached && calls.length) {
        const tid = await this.runTo(p, callSite, calls[calls.length - 1].n);
        if (tid !== undefined) {
          this.index = k - 1;
          this.insertAfter(k - 1, tid, 'step');
          return { tid, reason: 'step', description: 'Stepped back out of the function: at its call.' };
        }
      }
      if (!reached) break; // the past before p cannot be searched exactly
    }
    return this.earliest('The call was made before the earliest position kept: this is as far back as the timeline reaches.');
  }

  /** How far back the timeline reaches: positions kept, and the earliest one's pc. */
  reach(): { positions: number; index: number; earliestPc?: bigint } {
    return { positions: this.positions.length, index: this.index, earliestPc: this.positions[0]?.pc };
  }

  /** Back to the most recent earlier breakpoint hit, or the earliest position. */
  async reverseContinue(): Promise<Arrival> {
    if (this.unavailable) throw new Error(`Reverse continue is not available: ${this.unavailable}`);
    for (let k = this.index; k > 0; k--) {
      const c = this.positions[k];
      const p = this.positions[k - 1];
      const bps = this.h.breakpoints().filter((b) => b.addrs.length);
      const hits: { addr: bigint; n: number; ids: number[] }[] = [];
      const counts = new Map<number, number>();
      for (const b of bps) counts.set(b.id, p.hits.get(b.id) ?? 0);
      const reached = await this.scan(p, c, [], (addr, _cfa, tid, n) => {
        const stopping: number[] = [];
        for (const b of bps.filter((x) => x.addrs.includes(addr))) {
          if (b.condition && !this.h.conditionHolds(b, tid)) continue;
          const h = (counts.get(b.id) ?? 0) + 1;
          counts.set(b.id, h);
          if (b.hitCondition && !parseHitCondition(b.hitCondition)(h)) continue;
          if (b.logMessage) continue;
          stopping.push(b.id);
        }
        if (stopping.length) hits.push({ addr, n, ids: stopping });
      });
      if (reached && hits.length) {
        const last = hits[hits.length - 1];
        const tid = await this.runTo(p, last.addr, last.n);
        if (tid !== undefined) {
          this.index = k - 1;
          this.insertAfter(k - 1, tid, 'breakpoint');
          return { tid, reason: 'breakpoint', description: 'Reverse continue: the previous breakpoint hit.', hitIds: last.ids };
        }
      }
      if (p.via === 'breakpoint') {
        const pid = this.goTo(p);
        this.index = k - 1;
        const ids = this.h.breakpoints().filter((b) => b.addrs.includes(p.pc)).map((b) => b.id);
        if (ids.length) return { tid: pid, reason: 'breakpoint', description: 'Reverse continue: the previous breakpoint hit.', hitIds: ids };
      }
      if (!reached && c.via !== 'other') break; // the past cannot be searched further exactly
    }
    return this.earliest('Reverse continue reached the earliest position kept: no earlier breakpoint hit.');
  }
}
