// Typed, promise-based access to libcryo. Calls that only need a stopped debuggee
// are synchronous (the engine's tracer thread answers them at once); waiting for the
// debuggee is asynchronous (koffi runs cryo_wait_event on a worker thread), so Node's
// event loop never blocks while a debuggee runs. ptrace's one-thread rule is kept
// inside the engine: every request goes through its tracer thread.
import {
  CHECKPOINT_INFO_SIZE,
  CheckpointKind,
  HISTORY_ENTRY_SIZE,
  EventKind,
  LaunchFlags,
  load,
  NREGS,
  ResumeFlags,
  StepFlags,
  MAX_STEP_STOPS,
  STOP_FLAT,
  STOP_INNER,
  stopCall,
  Status,
  StatusName,
  StdioMode,
  StopReason,
  XSTATE_MAX,
  XMM_OFFSET,
  type Lib,
  type RawEvent,
  type RawReviveOpts,
} from './abi';
import koffi from 'koffi';

export { EventKind, StopReason };

export class EngineError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
  get code(): string {
    return StatusName[this.status] ?? `E${this.status}`;
  }
}

export const REGISTER_NAMES = [
  'r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi',
  'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss', 'fs_base', 'gs_base', 'ds', 'es', 'fs', 'gs',
] as const;
export type RegisterName = (typeof REGISTER_NAMES)[number];
export type Registers = Record<RegisterName, bigint>;

export type Stdio =
  | { mode: 'inherit' }
  | { mode: 'null' }
  | { mode: 'file'; path: string }
  | { mode: 'pipe' }
  | { mode: 'fd'; fd: number };

export interface LaunchOptions {
  program: string;
  /** argv[1..]; argv[0] is the program as given */
  args?: string[];
  /** the whole environment; omitted: the adapter's */
  env?: Record<string, string>;
  cwd?: string;
  stdin?: Stdio;
  stdout?: Stdio;
  stderr?: Stdio;
  /** disable address-space randomisation (gdb does by default) */
  noAslr?: boolean;
}

export interface Launched {
  pid: number;
  /** our ends of the pipes asked for */
  stdin?: number;
  stdout?: number;
  stderr?: number;
}

export type StopKind = 'breakpoint' | 'step' | 'watchpoint' | 'signal' | 'interrupt' | 'exec' | 'diverged' | 'syscall';

export type EngineEvent =
  | { kind: 'stopped'; pid: number; tid: number; reason: StopKind; addr: bigint; signo: number; code: number; slot: number; siginfo: Buffer; inStep?: boolean }
  | { kind: 'exited'; pid: number; code: number }
  | { kind: 'signaled'; pid: number; signo: number }
  | { kind: 'threadNew'; pid: number; tid: number }
  | { kind: 'threadExit'; pid: number; tid: number };

export interface CheckpointInfo {
  id: number;
  /** full: a frozen copy of the process; delta: the pages written since `parent` */
  kind: 'full' | 'delta';
  /** full: the frozen copy's process id; delta: 0 */
  pid: number;
  /** delta: the checkpoint it is relative to (0 if that one was deleted) */
  parent: number;
  /** memory held in the debugger for it (page data) */
  bytes: number;
  pc: bigint;
  createdAt: Date;
  /** how long taking it took, in milliseconds */
  createMs: number;
}

const REASONS: Record<number, StopKind> = {
  [StopReason.BREAKPOINT]: 'breakpoint',
  [StopReason.STEP]: 'step',
  [StopReason.WATCHPOINT]: 'watchpoint',
  [StopReason.SIGNAL]: 'signal',
  [StopReason.INTERRUPT]: 'interrupt',
  [StopReason.EXEC]: 'exec',
  [StopReason.DIVERGED]: 'diverged',
  [StopReason.SYSCALL]: 'syscall',
};

function blob(strings: string[]): Buffer {
  return Buffer.concat(strings.map((s) => Buffer.from(s + '\0', 'utf8')));
}

function stdioRaw(s: Stdio | undefined): { mode: number; fd: number; path: string | null } {
  switch (s?.mode ?? 'inherit') {
    case 'null':
      return { mode: StdioMode.NULL, fd: -1, path: null };
    case 'file':
      return { mode: StdioMode.FILE, fd: -1, path: (s as { path: string }).path };
    case 'pipe':
      return { mode: StdioMode.PIPE, fd: -1, path: null };
    case 'fd':
      return { mode: StdioMode.FD, fd: (s as { fd: number }).fd, path: null };
    default:
      return { mode: StdioMode.INHERIT, fd: -1, path: null };
  }
}

function registersOf(buf: BigUint64Array): Registers {
  const r = {} as Registers;
  for (let i = 0; i < NREGS; i++) r[REGISTER_NAMES[i]] = BigInt.asUintN(64, BigInt(buf[i]));
  return r;
}

/** the read cache's block (not the MMU's page): a stop reads a few bytes here and there */
const PAGE = 512;
const PAGE_MASK = BigInt(PAGE - 1);

function convertEvent(raw: RawEvent): EngineEvent {
  switch (raw.kind) {
    case EventKind.STOPPED:
      return {
        kind: 'stopped',
        pid: raw.pid,
        tid: raw.tid,
        reason: REASONS[raw.reason] ?? 'signal',
        addr: BigInt(raw.addr),
        signo: raw.signo,
        code: raw.code,
        slot: raw.slot,
        siginfo: Buffer.from(raw.siginfo),
        ...(raw.in_step === 1 ? { inStep: true } : {}),
      };
    case EventKind.EXITED:
      return { kind: 'exited', pid: raw.pid, code: raw.code };
    case EventKind.SIGNALED:
      return { kind: 'signaled', pid: raw.pid, signo: raw.signo };
    case EventKind.THREAD_NEW:
      return { kind: 'threadNew', pid: raw.pid, tid: raw.tid };
    default:
      return { kind: 'threadExit', pid: raw.pid, tid: raw.tid };
  }
}

/** All live sessions, so that an exiting adapter closes them (the kernel's EXITKILL is the backstop). */
const live = new Set<Session>();
process.once('exit', () => {
  for (const s of live) s.closeSync();
});

export class Session {
  private readonly lib: Lib;
  private handle: unknown;
  private closed = false;
  private queue: EngineEvent[] = [];
  private waiters: ((e: EngineEvent | null) => void)[] = [];
  private pumping = false;
  private pumpDone: Promise<void> = Promise.resolve();
  private listeners: ((e: EngineEvent) => void)[] = [];
  /** a debug adapter keeps the pump going for the whole session */
  keepPumping = false;
  /** Registers and xstate of each thread read since the last stop: every read is a hop to
   * the tracer thread, and a stop's inspection asks for the same ones many times. Anything
   * that can change them (a resume, a write of registers, an injected call, a restore, any
   * engine event) forgets them. */
  private regCache = new Map<number, Registers>();
  private xCache = new Map<number, Buffer>();
  /** xmm0-15 of the stopped thread, as the stop event brought them */
  private xmmCache = new Map<number, Buffer>();
  /** Blocks of memory read since the last stop: a stop's unwinding and variables read a
   * few bytes at a time from the same places, and a read in the middle of other work
   * costs several microseconds. Forgotten with the registers, whenever anything may
   * change memory. */
  private pageCache = new Map<bigint, Buffer>();
  /** the seq of the last event dispatched: events are dispatched in the engine's order */
  private lastSeq = 0;
  /** The record position at the last stop (it came with the event), until anything runs. */
  private posCache?: bigint;

  private gen = 0;
  /** Counts the changes of state (anything that forgets the registers): what was computed
   * from the debuggee's state at one generation holds until it changes. */
  get generation(): number {
    return this.gen;
  }

  private forgetRegisters(): void {
    this.gen++;
    this.regCache.clear();
    this.xCache.clear();
    this.xmmCache.clear();
    this.pageCache.clear();
    this.posCache = undefined;
  }

  constructor() {
    this.lib = load();
    this.handle = this.lib.cryo_session_new();
    if (!this.handle) throw new EngineError(Status.EFAIL, this.lastError() || 'cryo_session_new failed');
    live.add(this);
  }

  static version(): string {
    return load().cryo_version() as string;
  }

  private lastError(): string {
    return (this.lib.cryo_last_error() as string) || '';
  }

  private check(rc: number, what: string): void {
    if (rc !== Status.OK) throw new EngineError(rc, this.lastError() || `${what} failed (${StatusName[rc] ?? rc})`);
  }

  private h(): unknown {
    if (this.closed) throw new EngineError(Status.ECLOSED, 'the session is closed');
    return this.handle;
  }

  get pid(): number {
    return this.closed ? 0 : (this.lib.cryo_pid(this.handle) as number);
  }

  launch(o: LaunchOptions): Launched {
    this.forgetRegisters();
    const args = [o.program, ...(o.args ?? [])];
    const env = o.env ? Object.entries(o.env).map(([k, v]) => `${k}=${v}`) : null;
    const io = [stdioRaw(o.stdin), stdioRaw(o.stdout), stdioRaw(o.stderr)];
    const opts = {
      path: o.program,
      argv: blob(args),
      argc: args.length,
      envc: env ? env.length : -1,
      envp: env ? blob(env) : null,
      cwd: o.cwd ?? null,
      stdio_mode: io.map((x) => x.mode),
      stdio_fd: io.map((x) => x.fd),
      stdio_path: io.map((x) => x.path),
      flags: o.noAslr ? LaunchFlags.NO_ASLR : 0,
    };
    const pid = [0];
    this.check(this.lib.cryo_launch(this.h(), opts, pid) as number, 'launch');
    const out: Launched = { pid: pid[0] };
    const names = ['stdin', 'stdout', 'stderr'] as const;
    io.forEach((x, i) => {
      if (x.mode === StdioMode.PIPE) out[names[i]] = opts.stdio_fd[i];
    });
    this.ensurePump();
    return out;
  }

  attach(pid: number): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_attach(this.h(), pid) as number, 'attach');
    this.ensurePump();
  }

  detach(): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_detach(this.h()) as number, 'detach');
  }

  kill(): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_kill(this.h()) as number, 'kill');
  }

  threads(): number[] {
    const n = [0];
    const buf = new Int32Array(1024);
    this.check(this.lib.cryo_threads(this.h(), buf, buf.length, n) as number, 'threads');
    return Array.from(buf.subarray(0, Math.min(n[0], buf.length)));
  }

  /** keepStep: a step over a call that a stop interrupted (its event had inStep) goes on. */
  continue(opts: { discardSignal?: boolean; keepStep?: boolean } = {}): void {
    this.forgetRegisters();
    const flags = (opts.discardSignal ? ResumeFlags.DISCARD_SIGNAL : 0) | (opts.keepStep ? ResumeFlags.KEEP_STEP : 0);
    this.check(this.lib.cryo_continue(this.h(), flags) as number, 'continue');
  }

  step(tid: number, opts: { discardSignal?: boolean } = {}): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_step(this.h(), tid, opts.discardSignal ? ResumeFlags.DISCARD_SIGNAL : 0) as number, 'step');
  }

  /** Steps tid while its pc stays in [lo, hi), stopping early right after a call
   * instruction, or with overCalls running each call to its return and stepping on.
   * `stops`: the range's control transfers, when decoded (in order; `inner` for a direct
   * jump to an instruction of the range): the engine then runs from one to the next with
   * a breakpoint, and through loops inside the range, not a step per instruction. */
  stepRange(tid: number, lo: bigint, hi: bigint, opts: { overCalls?: boolean; stops?: readonly { at: bigint; inner: boolean; call?: number; flat?: boolean }[] } = {}): void {
    this.forgetRegisters();
    const flags = opts.overCalls ? StepFlags.OVER_CALLS : 0;
    const stops = opts.stops?.map((x) => x.at | (x.inner ? STOP_INNER : 0n) | (x.call ? stopCall(x.call) | (x.flat ? STOP_FLAT : 0n) : 0n));
    const rc = stops && stops.length <= MAX_STEP_STOPS
      ? this.lib.cryo_step_range_stops(this.h(), tid, lo, hi, flags, BigUint64Array.from(stops), stops.length)
      : this.lib.cryo_step_range(this.h(), tid, lo, hi, flags);
    this.check(rc as number, 'step range');
  }

  interrupt(): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_interrupt(this.h()) as number, 'interrupt');
  }

  setSignal(tid: number, signo: number): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_set_signal(this.h(), tid, signo) as number, 'set signal');
  }

  registers(tid: number): Registers {
    const h = this.h();
    let r = this.regCache.get(tid);
    if (!r) {
      const buf = new BigUint64Array(NREGS);
      this.check(this.lib.cryo_get_regs(h, tid, buf) as number, 'get registers');
      r = registersOf(buf);
      this.regCache.set(tid, r);
    }
    return { ...r };
  }

  setRegisters(tid: number, regs: Partial<Registers>): void {
    const cur = this.registers(tid);
    const buf = new BigUint64Array(NREGS);
    REGISTER_NAMES.forEach((n, i) => (buf[i] = BigInt.asUintN(64, regs[n] ?? cur[n])));
    this.forgetRegisters();
    this.check(this.lib.cryo_set_regs(this.h(), tid, buf) as number, 'set registers');
  }

  xstate(tid: number): Buffer {
    const h = this.h();
    let x = this.xCache.get(tid);
    if (!x) {
      const buf = Buffer.alloc(XSTATE_MAX);
      const len = [0];
      this.check(this.lib.cryo_get_xstate(h, tid, buf, buf.length, len) as number, 'get xstate');
      x = buf.subarray(0, Number(len[0]));
      this.xCache.set(tid, x);
    }
    return Buffer.from(x);
  }

  /** xmm0-15 of tid, 16 bytes each: what unwinding and most variables need of the
   * vector registers (from the stop event when it brought them, else the xsave area). */
  xmm(tid: number): Buffer {
    const x = this.xmmCache.get(tid);
    if (x) return Buffer.from(x);
    return this.xstate(tid).subarray(XMM_OFFSET, XMM_OFFSET + 256);
  }

  setXstate(tid: number, data: Buffer): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_set_xstate(this.h(), tid, data, data.length) as number, 'set xstate');
  }

  debugRegister(tid: number, index: number): bigint {
    const v = [0n];
    this.check(this.lib.cryo_get_debugreg(this.h(), tid, index, v) as number, 'get debug register');
    return BigInt(v[0]);
  }

  /** Reads up to len bytes; the result is shorter where memory is unmapped. */
  readMemory(addr: bigint, len: number): Buffer {
    if (len > 0 && len <= PAGE && !this.closed) {
      const first = addr & ~PAGE_MASK;
      const a = this.page(first);
      const off = Number(addr - first);
      if (off + len <= PAGE || a.length < PAGE) return Buffer.from(a.subarray(off, off + len));
      const b = this.page(first + BigInt(PAGE));
      return Buffer.concat([a.subarray(off), b.subarray(0, off + len - PAGE)]);
    }
    return this.readUncached(addr, len);
  }

  private page(at: bigint): Buffer {
    let p = this.pageCache.get(at);
    if (!p) {
      p = this.readUncached(at, PAGE);
      this.pageCache.set(at, p);
    }
    return p;
  }

  private readUncached(addr: bigint, len: number): Buffer {
    const buf = Buffer.allocUnsafe(len); // only the n bytes read are returned
    const n = [0];
    this.check(this.lib.cryo_read_memory(this.h(), addr, buf, len, n) as number, 'read memory');
    return buf.subarray(0, Number(n[0]));
  }

  writeMemory(addr: bigint, data: Buffer): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_write_memory(this.h(), addr, data, data.length) as number, 'write memory');
  }

  insertBreakpoint(addr: bigint): void {
    this.check(this.lib.cryo_breakpoint_insert(this.h(), addr) as number, 'insert breakpoint');
  }

  removeBreakpoint(addr: bigint): void {
    this.check(this.lib.cryo_breakpoint_remove(this.h(), addr) as number, 'remove breakpoint');
  }

  setWatchpoint(addr: bigint, len: 1 | 2 | 4 | 8, kind: 'write' | 'readwrite' | 'exec'): number {
    const slot = [-1];
    const k = kind === 'write' ? 1 : kind === 'readwrite' ? 3 : 0;
    this.check(this.lib.cryo_watchpoint_set(this.h(), addr, len, k, slot) as number, 'set watchpoint');
    return slot[0];
  }

  clearWatchpoint(slot: number): void {
    this.check(this.lib.cryo_watchpoint_clear(this.h(), slot) as number, 'clear watchpoint');
  }

  /** Runs a syscall in a stopped thread; returns its raw result (negative errno on failure). */
  injectSyscall(tid: number, nr: number, args: (bigint | number)[] = []): bigint {
    this.forgetRegisters();
    const a = new BigUint64Array(6);
    args.forEach((v, i) => (a[i] = BigInt.asUintN(64, BigInt(v))));
    const ret = [0n];
    this.check(this.lib.cryo_inject_syscall(this.h(), tid, nr, a, ret) as number, 'inject syscall');
    return BigInt(ret[0]);
  }

  checkpoint(): number {
    const id = [0];
    this.check(this.lib.cryo_checkpoint_create(this.h(), id) as number, 'checkpoint');
    return id[0];
  }

  /** Replaces the debuggee by a fresh copy of the checkpoint; returns the new pid. */
  restore(id: number): number {
    this.forgetRegisters();
    const pid = [0];
    this.check(this.lib.cryo_checkpoint_restore(this.h(), id, pid) as number, 'restore checkpoint');
    return pid[0];
  }

  deleteCheckpoint(id: number): void {
    this.check(this.lib.cryo_checkpoint_delete(this.h(), id) as number, 'delete checkpoint');
  }

  checkpoints(): CheckpointInfo[] {
    const max = 1024;
    const buf = Buffer.alloc(max * CHECKPOINT_INFO_SIZE);
    const n = [0];
    this.check(this.lib.cryo_checkpoint_list(this.h(), buf, max, n) as number, 'list checkpoints');
    const out: CheckpointInfo[] = [];
    for (let i = 0; i < Math.min(n[0], max); i++) {
      const o = i * CHECKPOINT_INFO_SIZE;
      out.push({
        id: buf.readInt32LE(o),
        pid: buf.readInt32LE(o + 4),
        pc: buf.readBigUInt64LE(o + 8),
        createdAt: new Date(Number(buf.readBigUInt64LE(o + 16) / 1000000n)),
        createMs: Number(buf.readBigUInt64LE(o + 24)) / 1e6,
        kind: buf.readInt32LE(o + 32) === CheckpointKind.DELTA ? 'delta' : 'full',
        parent: buf.readInt32LE(o + 36),
        bytes: Number(buf.readBigUInt64LE(o + 40)),
      });
    }
    return out;
  }

  /** Whether checkpoints after the first are deltas (written pages tracked), and why. */
  checkpointMode(): { incremental: boolean; why: string } {
    const buf = Buffer.alloc(512);
    const inc = [0];
    this.check(this.lib.cryo_checkpoint_mode(this.h(), buf, buf.length, inc) as number, 'checkpoint mode');
    return { incremental: inc[0] === 1, why: buf.subarray(0, buf.indexOf(0)).toString('utf8') };
  }

  /** Starts recording the syscall results that make a run nondeterministic. */
  recordStart(): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_record_start(this.h()) as number, 'start recording');
  }

  /** The position in the record log (tag checkpoints with it). */
  recordPosition(): bigint {
    if (this.posCache !== undefined) return this.posCache;
    const p = [0n];
    this.check(this.lib.cryo_record_position(this.h(), p) as number, 'record position');
    return BigInt(p[0]);
  }

  /** After restoring a checkpoint taken at `pos`: re-execution replays the log from there. */
  replayFrom(pos: bigint): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_replay_from(this.h(), pos) as number, 'replay');
  }

  /** Stops the program (a 'syscall' stop, addr = pos) about to make the recorded syscall at
   * log position `pos`, recording or replaying; undefined clears. */
  recordStopAt(pos: bigint | undefined): void {
    this.check(this.lib.cryo_record_stop_at(this.h(), pos ?? 0xffffffffffffffffn) as number, 'stop at a log position');
  }

  /** Drops the recorded future beyond `pos`. */
  recordTruncate(pos: bigint): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_record_truncate(this.h(), pos) as number, 'truncate the record');
  }

  /**
   * On a debuggee just revived from a checkpoint of an image's history
   * (Image.openCheckpoint): replays `log` (Image.log()) from its start, so that the
   * program sees the recorded inputs again and reaches the same place; live (and
   * recorded) once the log is exhausted.
   */
  replayLog(log: Buffer): void {
    this.forgetRegisters();
    this.check(this.lib.cryo_record_load(this.h(), log, log.length) as number, 'load the record log');
  }

  recordStats(): { mode: 'off' | 'recording' | 'replaying'; tscRecorded: boolean; entries: number; cursor: number; bytes: number; replayed: number; buffered: number; trapped: number } {
    const b = Buffer.alloc(56);
    this.check(this.lib.cryo_record_stats(this.h(), b) as number, 'record stats');
    const mode = b.readInt32LE(0);
    return {
      mode: mode === 2 ? 'replaying' : mode === 1 ? 'recording' : 'off',
      // rdtsc is recorded only where the machine makes it fault (CRYO_RECORD_TSC)
      tscRecorded: (b.readInt32LE(4) & 1) !== 0,
      entries: Number(b.readBigUInt64LE(8)),
      cursor: Number(b.readBigUInt64LE(16)),
      bytes: Number(b.readBigUInt64LE(24)),
      replayed: Number(b.readBigUInt64LE(32)),
      // syscalls logged without a ptrace stop (the in-process buffer), and at stops
      buffered: Number(b.readBigUInt64LE(40)),
      trapped: Number(b.readBigUInt64LE(48)),
    };
  }

  /**
   * Makes a live process of an image, owned by this session as if launched, stopped
   * where the image was taken. Stdio that cannot be reopened goes to `stdio`'s
   * descriptors (pipes: our ends are returned). `notes` says what was reconnected.
   */
  revive(image: Image, stdio: { stdin?: Stdio; stdout?: Stdio; stderr?: Stdio } = {}): Launched & { notes: string } {
    this.forgetRegisters();
    const io = [stdioRaw(stdio.stdin), stdioRaw(stdio.stdout), stdioRaw(stdio.stderr)];
    if (io.some((x) => x.mode === StdioMode.FILE)) throw new EngineError(Status.EINVAL, 'revive: file stdio is not supported');
    const opts: RawReviveOpts = { stdio_mode: io.map((x) => x.mode), stdio_fd: io.map((x) => x.fd), notes: '' };
    const pid = [0];
    this.check(this.lib.cryo_image_revive(this.h(), image.handle(), opts, pid) as number, 'revive');
    const out: Launched & { notes: string } = { pid: pid[0], notes: opts.notes };
    const names = ['stdin', 'stdout', 'stderr'] as const;
    io.forEach((x, i) => {
      if (x.mode === StdioMode.PIPE) out[names[i]] = opts.stdio_fd[i];
    });
    this.ensurePump();
    return out;
  }

  /** Writes an image of checkpoint `id`, or of the stopped debuggee when id is 0. */
  saveImage(id: number, path: string): void {
    this.check(this.lib.cryo_image_save(this.h(), id, path) as number, 'save image');
  }

  /** Calls fn for every event from now on; returns a function that stops it. */
  onEvent(fn: (e: EngineEvent) => void): () => void {
    this.listeners.push(fn);
    this.ensurePump();
    return () => {
      this.listeners = this.listeners.filter((l) => l !== fn);
    };
  }

  /** The next event; null once the session is closed. */
  nextEvent(): Promise<EngineEvent | null> {
    const e = this.queue.shift();
    if (e) return Promise.resolve(e);
    if (this.closed) return Promise.resolve(null);
    this.ensurePump();
    return new Promise((res) => this.waiters.push(res));
  }

  /** Waits for the next stop or end of the process, skipping thread events. spinUs:
   * right after resuming a step, wait that long for the stop awake (the event loop is
   * held that long at most) instead of through the pump's wake-ups. */
  async waitStop(spinUs = 0): Promise<EngineEvent> {
    if (spinUs > 0 && !this.queue.length && !this.closed) this.poll(spinUs);
    for (;;) {
      const e = await this.nextEvent();
      if (!e) throw new EngineError(Status.ECLOSED, 'the session closed while waiting for a stop');
      if (e.kind === 'stopped' || e.kind === 'exited' || e.kind === 'signaled') return e;
    }
  }

  private poll(spinUs: number): void {
    const ev = {} as RawEvent;
    if ((this.lib.cryo_poll_event(this.handle, ev, this.lastSeq + 1, spinUs) as number) === Status.OK) this.dispatch(ev);
  }

  private dispatch(raw: RawEvent): void {
    this.forgetRegisters();
    this.lastSeq = Number(raw.seq);
    const e = convertEvent(raw);
    // the stopped thread's registers, xmm and the record position came with the event: what
    // a stop's inspection and the timeline ask for first, without a trip to the tracer thread
    if (e.kind === 'stopped') {
      if (raw.has_regs === 1) this.regCache.set(e.tid, registersOf(BigUint64Array.from(raw.regs)));
      if (raw.has_xmm === 1) this.xmmCache.set(e.tid, Buffer.from(BigUint64Array.from(raw.xmm).buffer));
      if (raw.has_pos === 1) this.posCache = BigInt(raw.record_pos);
    }
    for (const l of this.listeners) l(e);
    const w = this.waiters.shift();
    if (w) w(e);
    else this.queue.push(e);
  }

  private ensurePump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    const lib = this.lib;
    const handle = this.handle;
    const ev = {} as RawEvent;
    this.pumpDone = new Promise<void>((resolve) => {
      const loop = (): void => {
        this.pumpCalled = Date.now();
        try {
          issue();
        } catch (e) {
          // koffi refuses an async call when its queue is full: the pump stops, and says so
          process.stderr.write(`cryo: the engine's event pump stopped: ${(e as Error).message}\n`);
          this.pumping = false;
          resolve();
        }
      };
      const issue = (): void =>
        lib.cryo_wait_event.async(handle, ev, 250, (err: unknown, rc: number) => {
          this.pumpCalled = 0;
          if (err || rc === Status.ECLOSED || this.closed) {
            this.pumping = false;
            resolve();
            return;
          }
          if (rc === Status.OK)
            this.dispatch(ev);
          // Stop pumping when nobody listens and the debuggee is gone, so an idle
          // session does not keep Node alive; launch/attach/nextEvent restart it.
          if (!this.listeners.length && !this.waiters.length && !this.keepPumping && rc === Status.ETIMEDOUT) {
            this.pumping = false;
            resolve();
            return;
          }
          loop();
        });
      loop();
    });
  }

  /** When the pump's call in flight was issued (0: none in flight). */
  private pumpCalled = 0;

  /** Kills a launched debuggee and every checkpoint, detaches an attached one. */
  async close(): Promise<void> {
    this.forgetRegisters();
    if (this.closed) return;
    const rc = this.lib.cryo_session_close(this.handle) as number;
    const msg = this.lastError();
    this.closed = true;
    // The pump's call returns within its 250 ms once the session is closed. Should its
    // callback never come (an async call koffi lost), closing must not wait forever:
    // cryo_session_free itself waits for any call still inside the engine.
    if (this.pumpDone && !(await settlesWithin(this.pumpDone, PUMP_GRACE_MS)))
      process.stderr.write(`cryo: the event pump's call issued ${Date.now() - this.pumpCalled} ms ago has not come back; closing without it\n`);
    this.lib.cryo_session_free(this.handle);
    live.delete(this);
    for (const w of this.waiters.splice(0)) w(null);
    if (rc !== Status.OK && rc !== Status.ENOPROC) throw new EngineError(rc, msg);
  }

  /** For process exit: closes without waiting for the event pump (the process is ending). */
  closeSync(): void {
    this.forgetRegisters();
    if (this.closed) return;
    this.lib.cryo_session_close(this.handle);
    this.closed = true;
    live.delete(this);
  }
}

/**
 * A Cryo image file, opened and validated by the engine's one reader. Synchronous:
 * reads come from the file. Close it when done (the engine keeps it mapped).
 */
export class Image {
  private readonly lib: Lib;
  private ptr: unknown;
  private described?: ImageDescription;

  /** `opened`: @internal an engine handle already open (a checkpoint of a history). */
  constructor(
    readonly path: string,
    opened?: unknown,
  ) {
    this.lib = load();
    if (opened) {
      this.ptr = opened;
      return;
    }
    const out = [null];
    const rc = this.lib.cryo_image_open(path, out) as number;
    if (rc !== Status.OK) throw new EngineError(rc, (this.lib.cryo_last_error() as string) || `cannot open ${path}`);
    this.ptr = out[0];
  }

  /** @internal the engine handle, for Session.revive */
  handle(): unknown {
    if (!this.ptr) throw new EngineError(Status.ECLOSED, `the image ${this.path} is closed`);
    return this.ptr;
  }

  private check(rc: number, what: string): void {
    if (rc !== Status.OK) throw new EngineError(rc, (this.lib.cryo_last_error() as string) || `${what} failed (${StatusName[rc] ?? rc})`);
  }

  private string(fn: 'cryo_image_json' | 'cryo_image_text'): string {
    const out = [null];
    this.check(this.lib[fn](this.handle(), out) as number, fn);
    try {
      return koffi.decode(out[0], 'char', -1) as string;
    } finally {
      this.lib.cryo_image_free_string(out[0]);
    }
  }

  /** `cryo inspect --json` (documented in docs/image-format.md). */
  describe(): ImageDescription {
    return (this.described ??= JSON.parse(this.string('cryo_image_json')) as ImageDescription);
  }

  /** `cryo inspect`: the readable rendering. */
  text(): string {
    return this.string('cryo_image_text');
  }

  /** Up to len bytes at addr; shorter at the first page the image holds no content for. */
  readMemory(addr: bigint, len: number): Buffer {
    const buf = Buffer.alloc(len);
    const n = [0];
    this.check(this.lib.cryo_image_read_memory(this.handle(), addr, buf, len, n) as number, 'read image memory');
    return buf.subarray(0, Number(n[0]));
  }

  registers(tid: number): Registers {
    const buf = new BigUint64Array(NREGS);
    this.check(this.lib.cryo_image_thread_regs(this.handle(), tid, buf) as number, 'image registers');
    const r = {} as Registers;
    REGISTER_NAMES.forEach((n, i) => (r[n] = buf[i]));
    return r;
  }

  /** xmm0-15 of tid, 16 bytes each (see Session.xmm). */
  xmm(tid: number): Buffer {
    return this.xstate(tid).subarray(XMM_OFFSET, XMM_OFFSET + 256);
  }

  xstate(tid: number): Buffer {
    const buf = Buffer.alloc(XSTATE_MAX);
    const len = [0];
    this.check(this.lib.cryo_image_thread_xstate(this.handle(), tid, buf, buf.length, len) as number, 'image xstate');
    return buf.subarray(0, Number(len[0]));
  }

  /**
   * The checkpoints a crash image of `cryo run --checkpoint-every` carries, oldest first
   * (empty for other images): each one's record position in log(), time and pc.
   */
  history(): ImageCheckpoint[] {
    const n = [0];
    this.check(this.lib.cryo_image_history(this.handle(), null, 0, n) as number, 'image history');
    if (!n[0]) return [];
    const buf = Buffer.alloc(n[0] * HISTORY_ENTRY_SIZE);
    this.check(this.lib.cryo_image_history(this.handle(), buf, n[0], n) as number, 'image history');
    const out: ImageCheckpoint[] = [];
    for (let i = 0; i < n[0]; i++) {
      const at = i * HISTORY_ENTRY_SIZE;
      const ns = buf.readBigUInt64LE(at + 8);
      out.push({ index: i, position: buf.readBigUInt64LE(at), time: new Date(Number(ns / 1_000_000n)), pc: buf.readBigUInt64LE(at + 16) });
    }
    return out;
  }

  /** Checkpoint i of the history as an image of its own (close it too). */
  openCheckpoint(i: number): Image {
    const out = [null];
    this.check(this.lib.cryo_image_open_checkpoint(this.handle(), i, out) as number, 'open checkpoint');
    return new Image(`${this.path} (checkpoint ${i})`, out[0]);
  }

  /** The record log from the oldest checkpoint of the history on (for Session.replayLog). */
  log(): Buffer {
    const len = [0];
    this.check(this.lib.cryo_image_log(this.handle(), null, 0, len) as number, 'image log');
    const buf = Buffer.alloc(Number(len[0]));
    this.check(this.lib.cryo_image_log(this.handle(), buf, buf.length, len) as number, 'image log');
    return buf;
  }

  /** Null when the image can be revived here; else every problem, one per line. */
  problems(): string | null {
    const rc = this.lib.cryo_image_check(this.handle()) as number;
    return rc === Status.OK ? null : (this.lib.cryo_last_error() as string) || 'the image cannot be revived here';
  }

  close(): void {
    if (!this.ptr) return;
    this.lib.cryo_image_close(this.ptr);
    this.ptr = null;
  }
}

/** A checkpoint of an image's history (Image.history). */
export interface ImageCheckpoint {
  index: number;
  /** its record position in Image.log(): 0 is the oldest checkpoint */
  position: bigint;
  time: Date;
  pc: bigint;
}

/** `cryo inspect --json` (docs/image-format.md), the parts the adapter reads. */
export interface ImageDescription {
  format: { version: number; file_size: number };
  process: {
    pid: number; ppid: number; comm: string; exe: string; exe_build_id: string; cmdline: string[]; cwd: string;
    kernel: string; machine: string; hostname: string; time: string; auxv: [number, string][];
  };
  reason:
    | { kind: 'snapshot' }
    | { kind: 'crash'; tid: number; signal: number; signal_name: string; code: number; code_name: string; address: string | null; sender_pid?: number; pc: string };
  threads: { tid: number; pc: string; sp: string; regs: Record<string, string> }[];
  mappings: {
    start: string; end: string; perms: string; kind: string; path: string; offset: string; build_id: string;
    pages: { data: number; zero: number; absent: number; unreadable: number; file: number };
  }[];
  files: { fd: number; type: string; path: string; flags: string; pos: number; size: number }[];
  signals: { signal: number; name: string; disposition: string; handler: string }[];
  history: {
    checkpoints: { index: number; position: number; time_ns: number; time: string; pc: string; offset: number; length: number }[];
    log: { base: number; entries: number; data_bytes: number; bytes: number };
  } | null;
  [key: string]: unknown;
}

/** How long close() waits for the event pump's last call to come back (it takes 250 ms at most). */
const PUMP_GRACE_MS = 3000;

/** Whether p settles within ms. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(() => true),
    new Promise<boolean>((res) => {
      timer = setTimeout(() => res(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
