// The DAP session: maps requests onto the engine (execution, memory, registers) and
// adapter/symbols (lines, stacks, variables, expressions).
import {
  Breakpoint,
  ExitedEvent,
  Handles,
  InitializedEvent,
  LoggingDebugSession,
  OutputEvent,
  ProgressEndEvent,
  ProgressStartEvent,
  Scope,
  Source,
  StackFrame,
  StoppedEvent,
  TerminatedEvent,
  Thread,
  ThreadEvent,
} from '@vscode/debugadapter';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { accessSync, constants, createReadStream, existsSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { Breakpoints, parseHitCondition, type UserBreakpoint } from './breakpoints';
import { Image, REGISTER_NAMES, Session as Engine, type EngineEvent, type Registers as EngineRegisters } from './engine';
import { ImageTarget } from './image';
import { ElfFile } from './symbols/elf';
import { encodeFor } from './assign';
import { controlTransfers, decode, disassembleAround, preloadDecoder, type Transfer } from './disasm';
import { dwarfRegisters, LiveTarget } from './live';
import { finish, stepLine, type StepEnd, type StepHost } from './stepping';
import { DEFAULT_LIMITS, Timeline, type TimelineLimits, type Via } from './timeline';
import { hasChildren, Program, typeName, valueChildren, type Frame, type Value } from './symbols';

export interface LaunchArguments extends DebugProtocol.LaunchRequestArguments {
  program: string;
  /** a Cryo image to open instead of running anything (then program is optional) */
  image?: string;
  /** with image: revive it at once, as a live process */
  revive?: boolean;
  args?: string[];
  cwd?: string;
  env?: Record<string, string | null>;
  envFile?: string;
  stopAtEntry?: boolean;
  console?: 'internalConsole' | 'integratedTerminal';
  sourceFileMap?: Record<string, string>;
  /** what time travel keeps (the extension fills it from the cryo.timeTravel settings) */
  timeTravel?: { maxPositions?: number; memoryBudgetMiB?: number; periodMs?: number };
}

export interface AttachArguments extends DebugProtocol.AttachRequestArguments {
  pid?: number | string;
  image?: string;
  revive?: boolean;
  program?: string;
  sourceFileMap?: Record<string, string>;
}

const SIGNALS: Record<number, [string, string]> = {
  1: ['SIGHUP', 'Hangup'], 2: ['SIGINT', 'Interrupt'], 3: ['SIGQUIT', 'Quit'], 4: ['SIGILL', 'Illegal instruction'],
  5: ['SIGTRAP', 'Trace/breakpoint trap'], 6: ['SIGABRT', 'Aborted'], 7: ['SIGBUS', 'Bus error'],
  8: ['SIGFPE', 'Arithmetic exception'], 9: ['SIGKILL', 'Killed'], 10: ['SIGUSR1', 'User defined signal 1'],
  11: ['SIGSEGV', 'Segmentation fault'], 12: ['SIGUSR2', 'User defined signal 2'], 13: ['SIGPIPE', 'Broken pipe'],
  14: ['SIGALRM', 'Alarm clock'], 15: ['SIGTERM', 'Terminated'], 17: ['SIGCHLD', 'Child status changed'],
};
const signame = (n: number) => SIGNALS[n]?.[0] ?? `SIG${n}`;

const DEFAULT_STOP_SIGNALS = ['SIGSEGV', 'SIGABRT', 'SIGFPE', 'SIGBUS', 'SIGILL'];
/** A step's stop usually comes within microseconds: wait for it awake that long (holding
 * the event loop at most this much) rather than pay three threads' wake-ups. */
const STEP_SPIN_US = 500;
const EXCEPTION_FILTERS: DebugProtocol.ExceptionBreakpointsFilter[] = [
  ...DEFAULT_STOP_SIGNALS.map((s) => ({ filter: s, label: s, default: true, description: `Stop when the program receives ${s}` })),
  { filter: 'other', label: 'Other signals', default: false, description: 'Stop on every other signal the program receives (SIGUSR1, SIGPIPE, ...)' },
];

interface CheckpointMeta {
  pos?: bigint;
  name: string;
  threadId: number;
  source?: Source;
  line?: number;
  function?: string;
}

export interface CheckpointView {
  id: number;
  name: string;
  threadId: number;
  source?: DebugProtocol.Source;
  line?: number;
  function?: string;
  time: string;
  kind: 'full' | 'delta';
  bytes: number;
}

type VarRef = { kind: 'locals' | 'args' | 'registers'; tid: number; frame: number } | { kind: 'value'; value: Value };

interface SignalStop {
  signo: number;
  code: number;
  addr: bigint;
}

export class CryoSession extends LoggingDebugSession implements StepHost {
  engine!: Engine;
  program!: Program;
  private target?: LiveTarget;
  /** an image session before it is revived: everything is read from the file */
  private frozen?: ImageTarget;
  private launched = false;
  private bps = new Breakpoints(() => this.engine);
  private configured!: Promise<void>;
  private configure!: () => void;
  private stopSignals = new Set(DEFAULT_STOP_SIGNALS);
  private stopOtherSignals = false;
  private stacks = new Map<number, { frames: Frame[]; complete: boolean; gen: number }>();
  private frameIds = new Handles<{ tid: number; index: number }>();
  private varRefs = new Handles<VarRef>();
  private lastSignal = new Map<number, SignalStop>();
  private internal = new Map<bigint, 'entry' | 'loader' | 'main'>();
  private stopAtEntry = false;
  private busy = false;
  private ended = false;
  private sourceMap: [string, string][] = [];
  private currentTid = 0;
  private launchArgs?: LaunchArguments;
  private restarting = false;
  private clientProgress = false;
  private progressId = 0;
  private timeline?: Timeline;
  /** hits at user breakpoint addresses, stopping or not: what identifies a breakpoint position */
  private rawHits = new Map<bigint, number>();

  constructor() {
    super();
    this.setDebuggerLinesStartAt1(true);
    this.setDebuggerColumnsStartAt1(true);
    this.configured = new Promise((r) => (this.configure = r));
  }

  // ---- capabilities and configuration ----

  protected override initializeRequest(response: DebugProtocol.InitializeResponse, args: DebugProtocol.InitializeRequestArguments): void {
    this.clientProgress = !!args.supportsProgressReporting;
    response.body = {
      supportsConfigurationDoneRequest: true,
      supportsFunctionBreakpoints: true,
      supportsConditionalBreakpoints: true,
      supportsHitConditionalBreakpoints: true,
      supportsLogPoints: true,
      supportsEvaluateForHovers: true,
      supportsSteppingGranularity: true,
      supportsInstructionBreakpoints: true,
      supportsTerminateRequest: true,
      supportsExceptionInfoRequest: true,
      supportsReadMemoryRequest: true,
      supportsWriteMemoryRequest: true,
      supportsDisassembleRequest: true,
      supportsSetVariable: true,
      supportsStepBack: true,
      supportsRestartRequest: true,
      supportsModulesRequest: true,
      supportsLoadedSourcesRequest: true,
      exceptionBreakpointFilters: EXCEPTION_FILTERS,
    };
    this.sendResponse(response);
  }

  protected override configurationDoneRequest(response: DebugProtocol.ConfigurationDoneResponse): void {
    this.sendResponse(response);
    this.configure();
  }

  protected override setExceptionBreakPointsRequest(response: DebugProtocol.SetExceptionBreakpointsResponse, args: DebugProtocol.SetExceptionBreakpointsArguments): void {
    this.stopSignals = new Set(args.filters.filter((f) => f !== 'other'));
    this.stopOtherSignals = args.filters.includes('other');
    this.sendResponse(response);
  }

  // ---- launch, attach, end ----

  protected override async launchRequest(response: DebugProtocol.LaunchResponse, args: LaunchArguments): Promise<void> {
    if (args.image) return this.openImage(response, args.image, args);
    try {
      this.launchArgs = args;
      if (args.console === 'integratedTerminal') await this.startInTerminal(args);
      else this.startLaunched(args);
      this.sendResponse(response);
      this.sendEvent(new InitializedEvent());
      await this.configured;
      // the first position of the timeline: the program before its first instruction
      // (no frame: nothing steps back from it, and unwinding the loader's entry, which
      // has no CFI, would read the loader's DWARF before the first stop)
      this.timeline?.onStop(this.engine.pid, 'other', undefined);
      await this.run(() => this.engine.continue());
    } catch (e) {
      this.sendErrorResponse(response, 1001, `Cannot launch: ${(e as Error).message}`);
    }
  }

  /** Starts the program of a launch configuration, stopped before its first instruction. */
  /** Checks the program and builds its environment, with messages that say what to fix. */
  private prepareLaunch(args: LaunchArguments): { program: string; env: Record<string, string> } {
    {
      const program = isAbsolute(args.program) ? args.program : resolve(args.cwd ?? process.cwd(), args.program);
      if (!existsSync(program)) throw new Error(`program ${program} does not exist: build it first, or fix "program" in launch.json`);
      if (!statSync(program).isFile()) throw new Error(`program ${program} is not a file`);
      try {
        accessSync(program, constants.X_OK);
      } catch {
        throw new Error(`program ${program} is not executable (chmod +x, or point "program" at the built binary)`);
      }
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
      if (args.envFile) Object.assign(env, parseEnvFile(readFileSync(resolve(args.cwd ?? process.cwd(), args.envFile), 'utf8')));
      for (const [k, v] of Object.entries(args.env ?? {})) {
        if (v === null) delete env[k];
        else env[k] = v;
      }
      return { program, env };
    }
  }

  private limits: TimelineLimits = DEFAULT_LIMITS;

  private startLaunched(args: LaunchArguments): void {
    const tt = args.timeTravel;
    if (tt)
      this.limits = {
        maxPositions: tt.maxPositions && tt.maxPositions > 0 ? tt.maxPositions : DEFAULT_LIMITS.maxPositions,
        budgetBytes: tt.memoryBudgetMiB && tt.memoryBudgetMiB > 0 ? tt.memoryBudgetMiB * 1048576 : DEFAULT_LIMITS.budgetBytes,
        periodMs: tt.periodMs !== undefined && tt.periodMs >= 0 ? tt.periodMs : DEFAULT_LIMITS.periodMs,
      };
    if (!args.program) throw new Error('the launch configuration needs "program" (the binary to debug) or "image" (a .cryo file to open)');
    const { program, env } = this.prepareLaunch(args);
    this.sourceMap = Object.entries(args.sourceFileMap ?? {});
    this.engine = new Engine();
    this.engine.keepPumping = true;
    const l = this.engine.launch({ program, args: args.args ?? [], cwd: args.cwd, env, stdout: { mode: 'pipe' }, stderr: { mode: 'pipe' } });
    this.launched = true;
    this.pipeOutput(l.stdout, 'stdout');
    this.pipeOutput(l.stderr, 'stderr');
    this.stopAtEntry = !!args.stopAtEntry;
    this.startProgram(l.pid);
  }

  /**
   * console: integratedTerminal. The terminal runs a small shell that writes its pid and
   * stops itself; we attach, let it go on, and it execs the program in place (same pid,
   * the terminal as its stdio). From that exec stop on, it is a launch like any other.
   */
  private async startInTerminal(args: LaunchArguments): Promise<void> {
    const { program } = this.prepareLaunch(args);
    const pidFile = join(tmpdir(), `cryo-terminal-${process.pid}-${Date.now()}.pid`);
    const script = 'echo $$ > "$1"; kill -STOP $$; shift; exec "$@"';
    const shellArgs = ['/bin/sh', '-c', script, 'cryo-launch', pidFile, program, ...(args.args ?? [])];
    const extraEnv: Record<string, string | null> = { ...(args.env ?? {}) };
    if (args.envFile) Object.assign(extraEnv, parseEnvFile(readFileSync(resolve(args.cwd ?? process.cwd(), args.envFile), 'utf8')));
    await new Promise<void>((res, rej) => {
      this.runInTerminalRequest({ kind: 'integrated', title: basename(program), cwd: args.cwd ?? dirname(program), args: shellArgs, env: extraEnv }, 15000, (r) =>
        r.success ? res() : rej(new Error(`the terminal did not start the program: ${r.message ?? 'no reason given'}`)),
      );
    });
    const pid = await waitForPidFile(pidFile, 15000);
    this.engine = new Engine();
    this.engine.keepPumping = true;
    this.engine.attach(pid);
    this.launched = true;
    this.sourceMap = Object.entries(args.sourceFileMap ?? {});
    // run the shell to its exec of the program: its own stop and SIGCONT are not the user's
    process.kill(pid, 'SIGCONT');
    for (;;) {
      this.engine.continue();
      const ev = await this.engine.waitStop();
      if (ev.kind === 'exited') throw new Error(`the program ended before it started (exit code ${ev.code})`);
      if (ev.kind === 'signaled') throw new Error(`the program was killed by ${signame(ev.signo)} before it started`);
      if (ev.kind !== 'stopped') continue;
      if (ev.reason === 'exec') break;
    }
    this.stopAtEntry = !!args.stopAtEntry;
    this.startProgram(pid);
  }

  protected override async restartRequest(response: DebugProtocol.RestartResponse): Promise<void> {
    if (!this.launchArgs) {
      this.sendErrorResponse(response, 1003, 'Only a launched program can be restarted.');
      return;
    }
    try {
      this.restarting = true;
      await this.engine.close();
      this.internal.clear();
      this.bps.unbind();
      this.ended = false;
      this.startLaunched(this.launchArgs);
      this.bps.resolvePending(this.program);
      this.restarting = false;
      this.sendResponse(response);
      await this.run(() => this.engine.continue());
    } catch (e) {
      this.restarting = false;
      this.sendErrorResponse(response, 1004, `Cannot restart: ${(e as Error).message}`);
    }
  }

  protected override async attachRequest(response: DebugProtocol.AttachResponse, args: AttachArguments): Promise<void> {
    if (args.image) return this.openImage(response, args.image, args);
    try {
      const pid = Number(args.pid);
      if (!Number.isInteger(pid) || pid <= 0) throw new Error(`"pid" must be a process id, got ${JSON.stringify(args.pid)}`);
      this.sourceMap = Object.entries(args.sourceFileMap ?? {});
      this.engine = new Engine();
      this.engine.keepPumping = true;
      this.engine.attach(pid);
      this.launched = false;
      this.startProgram(pid);
      this.program.refreshLibraries();
      this.armLoaderBreakpoint();
      this.sendResponse(response);
      this.sendEvent(new InitializedEvent());
      await this.configured;
      this.bps.resolvePending(this.program);
      await this.run(() => this.engine.continue());
    } catch (e) {
      const msg = (e as Error).message;
      this.sendErrorResponse(response, 1002, `Cannot attach: ${msg}`);
    }
  }

  /** fromEntry: the process stands before its first instruction (launch), not mid-run (attach, revive) */
  private startProgram(pid: number, fromEntry = true, record = true): void {
    const progress = this.progress(`Loading symbols of ${basename(readlinkSync(`/proc/${pid}/exe`))}`);
    try {
      this.target = new LiveTarget(this.engine, pid);
      this.program = new Program(this.target);
    } finally {
      progress();
    }
    preloadDecoder(); // stepping decodes the lines it steps
    this.timeline = new Timeline({
      engine: this.engine,
      program: this.program,
      breakpoints: () => this.bps.all(),
      conditionHolds: (b, tid) => this.conditionHolds(b, tid),
      frameCfa: (tid) => this.program.backtrace(this.dwarfRegs(tid), 1)[0]?.cfa,
      rawHits: this.rawHits,
    }, this.limits);
    // Only a program we started is recorded: the seccomp filter cannot be taken out of a
    // process, and without a tracer its trapped syscalls would fail (ENOSYS) after a detach.
    if (!this.launched) this.timeline.unavailable = 'an attached process is not recorded (time travel needs a program launched by Cryo)';
    else if (record) {
      try {
        this.engine.recordStart();
        if (!this.engine.recordStats().tscRecorded)
          this.sendEvent(new OutputEvent('cryo: this machine does not make rdtsc fault (PR_SET_TSC is not honoured, as under some hypervisors): code that reads the TSC directly sees the live counter when stepped back and replayed; everything else replays as recorded.\n', 'console'));
      } catch (e) {
        this.timeline.unavailable = `recording could not start: ${(e as Error).message}`;
      }
    }
    const main = this.program.modules[0];
    if (main && !main.dwarfElf.section('.debug_info'))
      this.sendEvent(new OutputEvent(`cryo: ${main.path} has no debug information: stacks are shown by symbol, without source lines or variables. Build it with -g.\n`, 'console'));
    this.engine.onEvent((e) => {
      if (e.kind === 'threadNew') this.sendEvent(new ThreadEvent('started', e.tid));
      if (e.kind === 'threadExit') this.sendEvent(new ThreadEvent('exited', e.tid));
    });
    // before the program's first instruction no library is loaded: stop at its entry to
    // read them (and to bind breakpoints in them), then watch the loader for dlopen
    const entry = this.target.auxv.get(9); // AT_ENTRY
    if (entry && this.launched && fromEntry) this.addInternal(entry, 'entry');
  }

  /** Reports long work to clients that show progress; returns the function that ends it. */
  private progress(title: string): () => void {
    if (!this.clientProgress) return () => {};
    const id = `cryo-${++this.progressId}`;
    this.sendEvent(new ProgressStartEvent(id, title));
    return () => this.sendEvent(new ProgressEndEvent(id));
  }

  private addInternal(addr: bigint, kind: 'entry' | 'loader' | 'main'): void {
    if (this.internal.has(addr)) return;
    this.engine.insertBreakpoint(addr);
    this.internal.set(addr, kind);
  }

  private removeInternal(addr: bigint): void {
    if (!this.internal.delete(addr)) return;
    try {
      this.engine.removeBreakpoint(addr);
    } catch {
      /* gone with the process */
    }
  }

  private armLoaderBreakpoint(): void {
    const brk = this.program.loaderBreakAddress();
    if (brk) this.addInternal(brk, 'loader');
  }

  private outputs: { ended: boolean; last: number }[] = [];

  private pipeOutput(fd: number | undefined, category: 'stdout' | 'stderr'): void {
    if (fd === undefined) return;
    const state = { ended: false, last: Date.now() };
    this.outputs.push(state);
    const stream = createReadStream('', { fd, autoClose: true });
    stream.on('data', (d) => {
      state.last = Date.now();
      this.sendEvent(new OutputEvent(d.toString(), category));
    });
    stream.on('end', () => (state.ended = true));
    stream.on('error', () => (state.ended = true));
  }

  /** Waits until the program's output has been read: to its end, or quiet for a moment
   * (a frozen checkpoint keeps the pipe open, so its end may never come). */
  private async drainOutput(): Promise<void> {
    const limit = Date.now() + 2000;
    while (Date.now() < limit && this.outputs.some((o) => !o.ended && Date.now() - o.last < 100)) await new Promise((r) => setTimeout(r, 20));
    if (this.outputs.every((o) => o.ended)) return;
    await new Promise((r) => setTimeout(r, 30));
  }

  protected override async terminateRequest(response: DebugProtocol.TerminateResponse): Promise<void> {
    if (this.frozen) {
      // nothing runs: ending the session is all there is to do
      this.sendResponse(response);
      this.sendEvent(new TerminatedEvent());
      return;
    }
    const wasBusy = this.busy;
    try {
      if (this.engine?.pid) this.engine.kill();
    } catch {
      /* already gone */
    }
    this.sendResponse(response);
    // a stopped program has nobody waiting for its end: wait here, so that the editor
    // hears `exited` and `terminated` (a running one's wait loop hears it itself)
    if (!wasBusy && this.engine) void this.run(() => {});
  }

  protected override async disconnectRequest(response: DebugProtocol.DisconnectResponse, args: DebugProtocol.DisconnectArguments): Promise<void> {
    this.frozen = undefined;
    this.imageFile?.close();
    this.imageFile = undefined;
    try {
      if (this.engine) {
        const kill = args?.terminateDebuggee ?? this.launched; // the arguments are optional in DAP
        if (this.engine.pid && !kill) this.engine.detach();
        // the engine kills what it launched itself; a program started in a terminal it attached to
        if (this.engine.pid && kill) this.engine.kill();
        await this.engine.close();
      }
    } catch (e) {
      this.sendEvent(new OutputEvent(`cryo: ${(e as Error).message}\n`, 'console'));
    }
    this.sendResponse(response);
  }

  // ---- running ----

  private invalidate(): void {
    this.stacks.clear();
    this.frameIds.reset();
    this.varRefs.reset();
  }

  /** Resumes with `start` and handles stops until one is for the user. */
  private async run(start: () => void): Promise<void> {
    this.busy = true;
    this.invalidate();
    const periodic = this.periodicPositions();
    try {
      start();
      for (;;) {
        const ev = await this.engine.waitStop();
        if (await this.handleStop(ev)) return;
        this.engine.continue();
      }
    } catch (e) {
      if (!this.restarting) this.sendEvent(new OutputEvent(`cryo: ${(e as Error).message}\n`, 'console'));
    } finally {
      periodic();
      this.busy = false;
    }
  }

  /** While the program runs: a timeline position now and then, so that going back over a
   * long run re-executes only its end. The engine stops at the next recorded syscall,
   * a place re-execution finds again exactly (its log position). Returns the stopper. */
  private periodicPositions(): () => void {
    const t = this.timeline;
    const ms = this.limits.periodMs;
    if (!t || t.unavailable || !ms || !this.engine?.pid) return () => {};
    const timer = setInterval(() => {
      try {
        this.engine.recordStopAt(this.engine.recordPosition());
      } catch {
        /* the process is ending */
      }
    }, ms);
    return () => {
      clearInterval(timer);
      try {
        this.engine.recordStopAt(undefined);
      } catch {
        /* gone */
      }
    };
  }

  /** True when the stop was reported to the user (or the program ended). */
  private async handleStop(ev: EngineEvent): Promise<boolean> {
    if (ev.kind === 'exited' || ev.kind === 'signaled') {
      this.end(ev.kind === 'exited' ? ev.code : 128 + ev.signo, ev.kind === 'signaled' ? `killed by ${signame(ev.signo)}` : undefined);
      return true;
    }
    if (ev.kind !== 'stopped') return false;
    this.currentTid = ev.tid;
    switch (ev.reason) {
      case 'breakpoint': {
        const kind = this.internal.get(ev.addr);
        if (kind === 'entry' || kind === 'loader') {
          this.program.refreshLibraries();
          if (kind === 'entry') {
            this.removeInternal(ev.addr);
            this.armLoaderBreakpoint();
            if (this.stopAtEntry) for (const l of this.program.functionBreakpoints('main')) this.addInternal(l.addr, 'main');
          }
          for (const b of this.bps.resolvePending(this.program)) this.breakpointChanged(b);
          if (!this.bps.at(ev.addr).length) return false;
        }
        if (kind === 'main') {
          this.removeInternal(ev.addr);
          this.report('entry', ev.tid, 'Stopped at the start of main');
          return true;
        }
        const user = this.bps.at(ev.addr);
        if (!user.length) return false;
        this.countRaw(ev.addr);
        const stop = this.shouldStop(user, ev.tid);
        if (!stop.length) return false;
        this.report('breakpoint', ev.tid, undefined, stop.map((b) => b.id));
        return true;
      }
      case 'signal': {
        const name = signame(ev.signo);
        if (this.stopSignals.has(name) || (this.stopOtherSignals && !DEFAULT_STOP_SIGNALS.includes(name))) {
          this.lastSignal.set(ev.tid, { signo: ev.signo, code: ev.code, addr: ev.addr });
          const where = [11, 7, 8, 4].includes(ev.signo) ? ` at address 0x${ev.addr.toString(16)}` : '';
          this.report('exception', ev.tid, `${name}: ${SIGNALS[ev.signo]?.[1] ?? 'signal'}${where}`);
          return true;
        }
        return false; // delivered as the program expects
      }
      case 'interrupt':
        this.report('pause', ev.tid);
        return true;
      case 'syscall':
        // a periodic position (not the user's stop): kept, and the program goes on
        this.timeline?.onStop(ev.tid, 'periodic', this.stack(ev.tid, 1)[0]?.cfa);
        return false;
      case 'watchpoint':
        this.report('data breakpoint', ev.tid);
        return true;
      case 'diverged': {
        // re-execution left the recorded run: from here the program runs live, and says why
        const n = Number(BigInt.asIntN(64, ev.addr));
        const why = n < 0
          ? `the recorded run received ${signame(-n)} here, a signal from outside, which re-execution cannot give at the same instruction`
          : `the program made syscall ${n} where the recorded run made another`;
        this.report('diverged', ev.tid, `Re-execution left the recorded run: ${why}. From here the program runs live, and what it does is recorded anew.`);
        return true;
      }
      case 'exec':
        this.program = new Program((this.target = new LiveTarget(this.engine, this.engine.pid)));
        return false;
      default:
        this.report('step', ev.tid);
        return true;
    }
  }

  private breakpointChanged(b: UserBreakpoint): void {
    this.syncRawHits();
    this.sendEvent({ seq: 0, type: 'event', event: 'breakpoint', body: { reason: 'changed', breakpoint: this.toDap(b) } } as DebugProtocol.BreakpointEvent);
  }

  /** Conditions, hit counts and logpoints of the breakpoints hit; which ones stop. */
  private shouldStop(hit: UserBreakpoint[], tid: number): UserBreakpoint[] {
    const stops: UserBreakpoint[] = [];
    let stack: Frame[] | undefined;
    const frames = () => (stack ??= this.stack(tid));
    for (const b of hit) {
      if (b.condition) {
        try {
          const v = this.program.evaluate(b.condition, frames()[0], frames());
          if (!truthy(v)) continue;
        } catch (e) {
          this.sendEvent(new OutputEvent(`cryo: breakpoint condition "${b.condition}" cannot be evaluated: ${(e as Error).message}; stopping\n`, 'console'));
        }
      }
      b.hits++;
      if (b.hitCondition && !parseHitCondition(b.hitCondition)(b.hits)) continue;
      if (b.logMessage) {
        this.sendEvent(new OutputEvent(this.interpolate(b.logMessage, frames()) + '\n', 'console'));
        continue;
      }
      stops.push(b);
    }
    return stops;
  }

  private countRaw(addr: bigint): void {
    const n = this.rawHits.get(addr);
    if (n !== undefined) this.rawHits.set(addr, n + 1);
  }

  /** After breakpoints changed: count hits at the addresses that have one now. */
  private syncRawHits(): void {
    const now = new Set(this.bps.all().flatMap((b) => b.addrs));
    // positions taken while a breakpoint was there keep its counts (their past is fixed);
    // a breakpoint set anew counts from 0, so older counts at its address are dropped
    for (const a of [...this.rawHits.keys()]) if (!now.has(a)) this.rawHits.delete(a);
    for (const a of now)
      if (!this.rawHits.has(a)) {
        this.timeline?.forgetAddress(a);
        this.rawHits.set(a, 0);
      }
  }

  private conditionHolds(b: UserBreakpoint, tid: number): boolean {
    if (!b.condition) return true;
    try {
      const stack = this.program.backtrace(this.dwarfRegs(tid), 8);
      return truthy(this.program.evaluate(b.condition, stack[0], stack));
    } catch {
      return true; // as at a live stop: a condition that cannot be evaluated stops
    }
  }

  private interpolate(msg: string, stack: Frame[]): string {
    return msg.replace(/\{([^}]+)\}/g, (_, expr: string) => {
      try {
        return this.program.format(this.program.evaluate(expr, stack[0], stack), true);
      } catch (e) {
        return `<${(e as Error).message}>`;
      }
    });
  }

  private flushOut: () => void = () => {};

  /** How to write out at once what the session has sent (main.ts batches a turn's messages). */
  flushWith(f: () => void): void {
    this.flushOut = f;
  }

  private report(reason: string, tid: number, text?: string, ids?: number[], keep = true, ranMs?: number): void {
    const e = new StoppedEvent(reason, tid, text) as DebugProtocol.StoppedEvent;
    e.body.allThreadsStopped = true;
    if (text) e.body.description = text;
    if (ids) e.body.hitBreakpointIds = ids;
    this.sendEvent(e);
    // out now: the editor takes it in while the stop is kept below (its requests are
    // served after this turn, when the position and the top frame are ready)
    this.flushOut();
    // every stop the user sees is a position of the timeline (time travel's own are kept by it)
    if (keep && this.timeline && this.engine?.pid) {
      const sig = reason === 'exception' ? this.lastSignal.get(tid)?.signo : undefined;
      const via: Via = reason === 'breakpoint' ? 'breakpoint' : reason === 'step' ? 'step' : sig ? 'signal' : 'other';
      // the top frame, which the editor asks for first, unwound once: the timeline keeps
      // its CFA (from the CFI alone: the caller's module, often libc with its large
      // DWARF, is read only when the editor asks for the rest of the stack)
      this.timeline.onStop(tid, via, this.stack(tid, 1)[0]?.cfa, sig, ranMs);
      this.reachChangedSoon(); // the view shows how far back the timeline reaches
    }
  }

  private end(code: number, how?: string): void {
    if (this.ended || this.restarting) return;
    this.ended = true;
    void this.drainOutput().then(() => {
      if (how) this.sendEvent(new OutputEvent(`cryo: the program was ${how}\n`, 'console'));
      this.sendEvent(new ExitedEvent(code));
      this.sendEvent(new TerminatedEvent());
    });
  }

  private guardStopped(response: DebugProtocol.Response): boolean {
    if (this.frozen) {
      this.sendErrorResponse(response, 1013, `${this.imageName()} is an image: nothing runs in it. Revive it (the Revive button) to go on as a live process.`);
      return false;
    }
    if (!this.engine?.pid) {
      this.sendErrorResponse(response, 1010, 'The program is not running.');
      return false;
    }
    if (this.busy) {
      this.sendErrorResponse(response, 1011, 'The program is running: pause it first.');
      return false;
    }
    return true;
  }

  protected override continueRequest(response: DebugProtocol.ContinueResponse): void {
    if (!this.guardStopped(response)) return;
    response.body = { allThreadsContinued: true };
    this.sendResponse(response);
    void this.run(() => this.engine.continue());
  }

  protected override pauseRequest(response: DebugProtocol.PauseResponse): void {
    try {
      if (this.frozen) throw new Error('an image does not run: there is nothing to pause');
      this.engine.interrupt();
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1012, (e as Error).message);
    }
  }

  // StepHost
  async singleStep(tid: number): Promise<EngineEvent> {
    this.engine.step(tid);
    return this.engine.waitStop(STEP_SPIN_US);
  }

  async stepRange(tid: number, lo: bigint, hi: bigint, over: boolean): Promise<EngineEvent> {
    const stops = await this.transfersOf(lo, hi);
    this.engine.stepRange(tid, lo, hi, { overCalls: over, stops });
    return this.engine.waitStop(STEP_SPIN_US);
  }

  // the control transfers of the lines stepped, kept with the bytes they were decoded
  // from: code that changes (a library loaded at the same place, a patch) is decoded again
  private transfers = new Map<bigint, { hi: bigint; bytes: Buffer; stops: Transfer[] | undefined }>();

  /** Where the range's instructions may leave straight-line order; undefined: unknown. */
  private async transfersOf(lo: bigint, hi: bigint): Promise<Transfer[] | undefined> {
    if (hi - lo > 4096n) return undefined; // longer lines are stepped instruction by instruction
    const bytes = this.engine.readMemory(lo, Number(hi - lo));
    const known = this.transfers.get(lo);
    if (known && known.hi === hi && known.bytes.equals(bytes)) return known.stops;
    let stops: Transfer[] | undefined;
    try {
      stops = await controlTransfers(bytes, lo, hi);
    } catch {
      stops = undefined; // no decoder: stepped as without it
    }
    if (this.transfers.size > 4096) this.transfers.clear();
    this.transfers.set(lo, { hi, bytes, stops });
    return stops;
  }

  async resumeStep(tid: number): Promise<EngineEvent> {
    void tid;
    this.engine.continue({ keepStep: true });
    return this.engine.waitStop(STEP_SPIN_US);
  }

  async runTo(tid: number, addr: bigint, minSp: bigint): Promise<StepEnd> {
    this.engine.insertBreakpoint(addr);
    try {
      for (;;) {
        this.engine.continue();
        const ev = await this.engine.waitStop(STEP_SPIN_US);
        if (ev.kind === 'stopped' && ev.reason === 'breakpoint' && ev.addr === addr && ev.tid === tid && this.engine.registers(tid).rsp >= minSp) {
          // a user breakpoint at the same place counts too
          if (this.bps.at(addr).length) this.countRaw(addr);
          if (this.bps.at(addr).length && this.shouldStop(this.bps.at(addr), tid).length) return { kind: 'event', event: ev };
          return { kind: 'done' };
        }
        if (ev.kind === 'stopped' && ev.reason === 'breakpoint' && ev.addr === addr) continue; // deeper recursion
        if (ev.kind !== 'stopped' || !(await this.isSilent(ev))) return { kind: 'event', event: ev };
      }
    } finally {
      try {
        this.engine.removeBreakpoint(addr);
      } catch {
        /* process gone */
      }
    }
  }

  /** A stop during a step that the user does not see: internal breakpoints, passing signals, false conditions. */
  async isSilent(ev: EngineEvent): Promise<boolean> {
    if (ev.kind !== 'stopped') return false;
    if (ev.reason === 'breakpoint') {
      const kind = this.internal.get(ev.addr);
      if (kind === 'loader' || kind === 'entry') {
        this.program.refreshLibraries();
        for (const b of this.bps.resolvePending(this.program)) this.breakpointChanged(b);
        return !this.bps.at(ev.addr).length;
      }
      const user = this.bps.at(ev.addr);
      if (user.length) this.countRaw(ev.addr);
      return !user.length || !this.shouldStop(user, ev.tid).length;
    }
    if (ev.reason === 'signal') {
      const name = signame(ev.signo);
      return !(this.stopSignals.has(name) || (this.stopOtherSignals && !DEFAULT_STOP_SIGNALS.includes(name)));
    }
    return false;
  }

  dwarfRegs(tid: number): Map<number, bigint> {
    if (this.frozen) return this.frozen.dwarfRegisters(tid);
    return dwarfRegisters(this.engine.registers(tid), this.engine.xmm(tid));
  }

  // what inspection reads: the image until it is revived, then the live process
  private registersOf(tid: number): EngineRegisters {
    return this.frozen ? this.frozen.registers(tid) : this.engine.registers(tid);
  }

  private readMem(addr: bigint, len: number): Buffer {
    return this.frozen ? this.frozen.image.readMemory(addr, len) : this.engine.readMemory(addr, len);
  }

  private hasProcess(): boolean {
    return !!this.frozen || !!this.engine?.pid;
  }

  private async step(response: DebugProtocol.Response, tid: number, how: 'next' | 'in' | 'out', granularity?: DebugProtocol.SteppingGranularity): Promise<void> {
    if (!this.guardStopped(response)) return;
    this.sendResponse(response);
    this.busy = true;
    this.invalidate();
    const t0 = performance.now();
    try {
      let end: StepEnd;
      if (granularity === 'instruction' && how !== 'out') {
        const ev = await this.singleStep(tid);
        end = ev.kind === 'stopped' && ev.reason === 'step' ? { kind: 'done' } : { kind: 'event', event: ev };
      } else if (how === 'out') end = await finish(this, tid);
      else end = await stepLine(this, tid, how === 'in');
      if (end.kind === 'done') this.report('step', tid, undefined, undefined, true, performance.now() - t0);
      else if (!(await this.handleStop(end.event))) await this.run(() => this.engine.continue());
    } catch (e) {
      this.sendEvent(new OutputEvent(`cryo: step failed: ${(e as Error).message}\n`, 'console'));
      this.report('step', tid);
    } finally {
      this.busy = false;
    }
  }

  /** Whether tid stands at the start of its function's first line (its entry): step back
   * goes to the caller from there. */
  private atFunctionStart(tid: number): boolean {
    const pc = this.engine.registers(tid).rip;
    const f = this.program.functionBounds(pc);
    if (!f?.hasDebugInfo) return false;
    return pc === f.start || this.program.lineRange(pc)?.start === f.start;
  }

  /** The call instruction that entered tid's current function, and its caller's frame. */
  private async callSite(tid: number): Promise<{ addr: bigint; cfa: bigint }> {
    const stack = this.stack(tid, 2);
    const caller = stack[1];
    if (!caller) throw new Error('There is no caller to step back out to: this is the outermost frame.');
    if (caller.signalFrame || stack[0].signalFrame) throw new Error('The caller is a signal frame: step back instead.');
    // the instruction that ends at the return address: decoded from its line's start
    // (x86 does not decode backwards), else the one call encoding that ends there
    const ret = caller.pc;
    const cfa = caller.cfa;
    if (cfa === undefined) throw new Error('The caller\'s frame cannot be told apart (no CFA).');
    const line = this.program.lineRange(ret - 1n);
    if (line && line.start < ret && ret - line.start < 4096n) {
      const ins = await decode(this.engine.readMemory(line.start, Number(ret - line.start)), line.start, 4096);
      const last = ins.find((i) => i.address + BigInt(i.bytes.length) === ret);
      if (last && /^call/.test(last.text)) return { addr: last.address, cfa };
    }
    for (let len = 2n; len <= 15n; len++) {
      const [i] = await decode(this.engine.readMemory(ret - len, Number(len)), ret - len, 1);
      if (i && BigInt(i.bytes.length) === len && /^call/.test(i.text)) return { addr: i.address, cfa };
    }
    throw new Error(`No call instruction ends at 0x${ret.toString(16)}: the caller was not entered by a call (a tail call or a signal).`);
  }

  /**
   * A crash image with a history (cryo run --checkpoint-every): its oldest checkpoint is
   * revived, the recorded inputs replayed up to the same fault, and the session goes on
   * live there with a timeline that reaches back to that checkpoint. Returns the
   * crashing thread.
   */
  private async liveFromHistory(): Promise<number> {
    const img = this.imageFile!;
    const name = basename(img.path);
    const hist = img.history();
    const info = img.describe();
    if (!hist.length || info.reason.kind !== 'crash')
      throw new Error(`${name} holds no past: only the moment it was taken. A crash image made with \`cryo run --on-crash DIR --checkpoint-every MS --keep N\` keeps the last moments before the crash.`);
    const crash = info.reason;
    const progress = this.progress(`Replaying the last moments before the crash (${name})`);
    const cp = img.openCheckpoint(0); // the oldest: reaches furthest back
    let r;
    try {
      r = await this.goLive(cp, img.log()); // the log is replayed, not recorded anew
    } catch (e) {
      progress();
      throw new Error(`${name}: the checkpoint before the crash cannot be revived: ${(e as Error).message}`);
    } finally {
      cp.close();
    }
    const engine = this.engine;
    try {
      this.timeline!.onStop(r.pid, 'other', undefined); // the earliest position: the checkpoint
      // forward, replaying, to the same fault; breakpoints passed on the way only count
      engine.continue();
      for (;;) {
        const ev = await engine.waitStop();
        if (ev.kind !== 'stopped') throw new Error(`the replay ended (${ev.kind}) before the crash came again`);
        if (ev.reason === 'signal' && ev.signo === crash.signal) {
          this.lastSignal.set(ev.tid, { signo: ev.signo, code: ev.code, addr: ev.addr });
          this.currentTid = ev.tid;
          this.invalidate();
          this.timeline!.onStop(ev.tid, 'signal', this.stack(ev.tid, 1)[0]?.cfa, ev.signo);
          this.imageState();
          this.sendEvent(new OutputEvent(`cryo: replayed ${name} from its oldest checkpoint (${hist[0].time.toISOString()}) to the crash: stepping back goes that far\n`, 'console'));
          return ev.tid;
        }
        if (ev.reason === 'diverged') throw new Error('the replay diverged from the recorded run before the crash');
        if (ev.reason === 'breakpoint' && this.bps.at(ev.addr).length) {
          this.countRaw(ev.addr);
          for (const b of this.bps.at(ev.addr)) if (this.conditionHolds(b, ev.tid)) b.hits++;
        } else if (ev.reason === 'breakpoint' && this.internal.get(ev.addr) === 'loader') this.program.refreshLibraries();
        engine.continue();
      }
    } finally {
      progress();
    }
  }

  private async travel(response: DebugProtocol.Response, how: 'back' | 'reverse' | 'out', tid = this.currentTid): Promise<void> {
    if (this.frozen) {
      // an image: its past is reachable only if it carries one
      const frozen = this.frozen;
      const program = this.program;
      this.busy = true;
      try {
        tid = await this.liveFromHistory();
      } catch (e) {
        if (!this.frozen) {
          // back on the image as it was: nothing of the attempt stays
          try {
            await this.engine.close();
          } catch {
            /* gone */
          }
          this.frozen = frozen;
          this.program = program;
          this.timeline = undefined;
          this.invalidate();
          this.imageState();
        }
        this.sendErrorResponse(response, 1092, (e as Error).message);
        return;
      } finally {
        this.busy = false;
      }
    }
    if (!this.guardStopped(response)) return;
    if (!this.timeline) {
      this.sendErrorResponse(response, 1090, 'Time travel needs a launched program.');
      return;
    }
    this.busy = true;
    this.invalidate();
    try {
      const t = this.timeline;
      let a;
      if (how === 'out') {
        const site = await this.callSite(tid);
        a = await t.stepOutBack(site.addr, site.cfa);
      } else if (how === 'back') {
        // at the start of its function, the line before is the call in the caller
        const site = this.atFunctionStart(tid) ? await this.callSite(tid).catch(() => undefined) : undefined;
        a = site ? { ...(await t.stepOutBack(site.addr, site.cfa)), description: 'Stepped back into the caller, at the call.' } : await t.stepBack();
      } else a = await t.reverseContinue();
      this.sendResponse(response);
      this.ended = false;
      this.currentTid = a.tid;
      this.invalidate();
      this.report(a.reason, a.tid, a.description, a.hitIds, false);
    } catch (e) {
      this.sendErrorResponse(response, 1091, (e as Error).message);
    } finally {
      this.busy = false;
    }
  }

  protected override stepBackRequest(response: DebugProtocol.StepBackResponse): void {
    void this.travel(response, 'back');
  }

  protected override reverseContinueRequest(response: DebugProtocol.ReverseContinueResponse): void {
    void this.travel(response, 'reverse');
  }

  protected override nextRequest(response: DebugProtocol.NextResponse, args: DebugProtocol.NextArguments): void {
    void this.step(response, args.threadId, 'next', args.granularity);
  }
  protected override stepInRequest(response: DebugProtocol.StepInResponse, args: DebugProtocol.StepInArguments): void {
    void this.step(response, args.threadId, 'in', args.granularity);
  }
  protected override stepOutRequest(response: DebugProtocol.StepOutResponse, args: DebugProtocol.StepOutArguments): void {
    void this.step(response, args.threadId, 'out', args.granularity);
  }

  // ---- breakpoints ----

  private toDap(b: UserBreakpoint): DebugProtocol.Breakpoint {
    const verified = b.addrs.length > 0;
    const bp = new Breakpoint(verified, b.resolved?.line ?? b.line) as DebugProtocol.Breakpoint;
    bp.id = b.id;
    if (b.message) bp.message = b.message;
    if (b.resolved?.file) bp.source = this.source(b.resolved.file);
    if (b.addrs.length) bp.instructionReference = '0x' + b.addrs[0].toString(16);
    if (!verified) bp.reason = 'pending';
    return bp;
  }

  protected override setBreakPointsRequest(response: DebugProtocol.SetBreakpointsResponse, args: DebugProtocol.SetBreakpointsArguments): void {
    const file = this.toDebuggee(args.source.path ?? '');
    const specs = args.breakpoints ?? [];
    // a condition that does not parse: that breakpoint is refused, saying where
    const bad = specs.map((b) => (b.condition && this.program ? this.syntaxError(b.condition) : undefined));
    const installed = this.bps.setSource(file, specs.filter((_, i) => !bad[i]), this.program);
    let k = 0;
    response.body = {
      breakpoints: specs.map((b, i) => (bad[i] ? { verified: false, line: b.line, message: `Condition "${b.condition}": ${bad[i]}` } : this.toDap(installed[k++]))),
    };
    this.syncRawHits();
    this.sendResponse(response);
  }

  /** A syntax error in an expression, with its column; names are only resolved at a stop. */
  private syntaxError(expr: string): string | undefined {
    try {
      this.program.evaluate(expr);
      return undefined;
    } catch (e) {
      const m = (e as Error).message;
      if (!/syntax error/i.test(m)) return undefined;
      const col = (e as { column?: number }).column;
      return col !== undefined ? `${m} (column ${col + 1})` : m;
    }
  }

  protected override setFunctionBreakPointsRequest(response: DebugProtocol.SetFunctionBreakpointsResponse, args: DebugProtocol.SetFunctionBreakpointsArguments): void {
    try {
      const list = this.bps.setFunctions(args.breakpoints, this.program);
      this.syncRawHits();
      response.body = { breakpoints: list.map((b) => this.toDap(b)) };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1021, (e as Error).message);
    }
  }

  protected override setInstructionBreakpointsRequest(response: DebugProtocol.SetInstructionBreakpointsResponse, args: DebugProtocol.SetInstructionBreakpointsArguments): void {
    try {
      const list = this.bps.setInstructions(args.breakpoints.map((b) => ({ address: BigInt(b.instructionReference) + BigInt(b.offset ?? 0), condition: b.condition, hitCondition: b.hitCondition })));
      response.body = { breakpoints: list.map((b) => this.toDap(b)) };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1022, (e as Error).message);
    }
  }

  // ---- inspection ----

  protected override threadsRequest(response: DebugProtocol.ThreadsResponse): void {
    const tids = this.frozen ? this.frozen.threads() : this.engine?.pid ? this.engine.threads() : [];
    const main = this.frozen ? this.frozen.info.process.pid : this.engine?.pid;
    response.body = { threads: tids.map((t) => new Thread(t, t === main ? `main ${t}` : `thread ${t}`)) };
    this.sendResponse(response);
  }

  /** The stack of tid, unwound as deep as `need` frames (the editor first asks for one). */
  private stack(tid: number, need = 256): Frame[] {
    // unwound once per stop: a stop on the way that the user does not see (a logpoint, a
    // false condition) is another state, which the engine's generation tells apart
    const gen = this.frozen ? -1 : (this.engine?.generation ?? -1);
    const c = this.stacks.get(tid);
    if (c && c.gen === gen && (c.frames.length >= need || c.complete)) return c.frames;
    const frames = this.program.backtrace(this.dwarfRegs(tid), need);
    this.stacks.set(tid, { frames, complete: frames.length < need, gen });
    return frames;
  }

  /** A source the editor can open; one that is not on this machine (libc's, a build
   * elsewhere) has no path, so the editor shows the disassembly rather than an error. */
  private source(file: string): Source {
    const local = this.toLocal(file);
    if (!isAbsolute(local) || !existsSync(local)) {
      const s = new Source(basename(local));
      (s as DebugProtocol.Source).presentationHint = 'deemphasize';
      (s as DebugProtocol.Source).origin = `not on this machine: ${local}`;
      return s;
    }
    return new Source(basename(local), local);
  }

  private toLocal(file: string): string {
    for (const [from, to] of this.sourceMap) if (file.startsWith(from)) return to + file.slice(from.length);
    return file;
  }

  private toDebuggee(file: string): string {
    for (const [from, to] of this.sourceMap) if (file.startsWith(to)) return from + file.slice(to.length);
    return file;
  }

  protected override stackTraceRequest(response: DebugProtocol.StackTraceResponse, args: DebugProtocol.StackTraceArguments): void {
    try {
      const start = args.startFrame ?? 0;
      // as deep as asked, no deeper: whether there is more is left open (totalFrames below)
      const frames = this.stack(args.threadId, args.levels ? start + args.levels : 256);
      const count = args.levels || frames.length;
      const complete = this.stacks.get(args.threadId)?.complete;
      response.body = {
        // unknown depth: one more than we have, so the editor asks for the rest when shown
        totalFrames: complete ? frames.length : frames.length + 1,
        stackFrames: frames.slice(start, start + count).map((f) => {
          const name = f.signalFrame ? '<signal handler called>' : f.function ? `${f.function}${f.inlined ? ' [inlined]' : ''}` : `0x${f.pc.toString(16)}`;
          const src = f.source ? this.source(f.source.file) : undefined;
          const sf = new StackFrame(this.frameIds.create({ tid: args.threadId, index: f.index }), name, src, f.source?.line ?? 0, f.source?.column ?? 0) as DebugProtocol.StackFrame;
          sf.instructionPointerReference = '0x' + f.pc.toString(16);
          if (!src?.path) sf.presentationHint = 'subtle';
          const m = f.module;
          if (m) sf.moduleId = m.path;
          return sf;
        }),
      };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1030, `Cannot read the stack: ${(e as Error).message}`);
    }
  }

  protected override scopesRequest(response: DebugProtocol.ScopesResponse, args: DebugProtocol.ScopesArguments): void {
    const f = this.frameIds.get(args.frameId);
    if (!f) {
      // the editor asks for a frame of the stop before (a stale id): not the user's error
      this.sendErrorResponse(response, { id: 1031, format: 'That frame is gone: the program ran since.', showUser: false });
      return;
    }
    const regs = new Scope('Registers', this.varRefs.create({ kind: 'registers', ...{ tid: f.tid, frame: f.index } }), true) as DebugProtocol.Scope;
    regs.presentationHint = 'registers';
    response.body = {
      scopes: [
        new Scope('Locals', this.varRefs.create({ kind: 'locals', tid: f.tid, frame: f.index }), false),
        new Scope('Arguments', this.varRefs.create({ kind: 'args', tid: f.tid, frame: f.index }), false),
        regs,
      ],
    };
    this.sendResponse(response);
  }

  private variable(name: string, v: Value, top = false, named = false): DebugProtocol.Variable {
    let text: string;
    try {
      text = this.program.format(v, top);
    } catch (e) {
      text = `<${(e as Error).message}>`;
    }
    // a variable whose memory cannot be read: said as gdb's `info locals` says it
    const err = named ? /^<error: (.*)>$/.exec(text) : null;
    if (err) text = `<error reading variable ${name} (${err[1]})>`;
    let expandable = false;
    try {
      expandable = hasChildren(v);
    } catch {
      /* unreadable: not expandable */
    }
    const out: DebugProtocol.Variable = { name, value: text, type: safeTypeName(v), variablesReference: expandable ? this.varRefs.create({ kind: 'value', value: v }) : 0 };
    if (v.addr !== undefined) out.memoryReference = '0x' + v.addr.toString(16);
    return out;
  }

  protected override variablesRequest(response: DebugProtocol.VariablesResponse, args: DebugProtocol.VariablesArguments): void {
    const ref = this.varRefs.get(args.variablesReference);
    try {
      if (!ref) throw new Error('those variables are gone: the program ran since');
      if (ref.kind === 'value') {
        const kids = valueChildren(ref.value, args.start ?? 0, args.count ?? 1000);
        response.body = { variables: kids.map((c) => this.variable(c.name, c.value)) };
      } else if (ref.kind === 'registers') {
        const r = this.registersOf(ref.tid);
        response.body = { variables: REGISTER_NAMES.map((n) => ({ name: n, value: '0x' + r[n].toString(16).padStart(16, '0'), variablesReference: 0 })) };
      } else {
        const stack = this.stack(ref.tid);
        const frame = stack[ref.frame];
        const vars = ref.kind === 'locals' ? this.program.locals(frame, stack) : this.program.args(frame, stack);
        response.body = { variables: vars.map((v) => this.variable(v.name, v.value, false, true)) };
      }
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1032, (e as Error).message);
    }
  }

  /** The values a variables reference lists, by name. */
  private valuesOf(ref: VarRef): { name: string; value: Value }[] {
    if (ref.kind === 'value') return valueChildren(ref.value, 0, 100000);
    if (ref.kind === 'registers') return [];
    const stack = this.stack(ref.tid);
    const frame = stack[ref.frame];
    return ref.kind === 'locals' ? this.program.locals(frame, stack) : this.program.args(frame, stack);
  }

  protected override setVariableRequest(response: DebugProtocol.SetVariableResponse, args: DebugProtocol.SetVariableArguments): void {
    try {
      if (this.busy) throw new Error('the program is running: pause it first');
      if (this.frozen) throw new Error('an image is read-only: revive it first');
      const ref = this.varRefs.get(args.variablesReference);
      if (!ref) throw new Error('that variable is gone: the program ran since');
      if (ref.kind === 'registers') {
        const tid = ref.tid;
        if (!(REGISTER_NAMES as readonly string[]).includes(args.name)) throw new Error(`no register ${args.name}`);
        const v = BigInt(this.program.evaluate(args.value).int());
        this.engine.setRegisters(tid, { [args.name]: v });
        this.timeline?.changed();
        this.stacks.clear();
        response.body = { value: '0x' + BigInt.asUintN(64, v).toString(16).padStart(16, '0') };
        this.sendResponse(response);
        return;
      }
      const target = this.valuesOf(ref).find((v) => v.name === args.name)?.value;
      if (!target) throw new Error(`no variable ${args.name} here`);
      if (target.addr === undefined) throw new Error(`${args.name} lives in a register or was computed: setting it is not supported`);
      if (target.bitSize) throw new Error(`${args.name} is a bitfield: setting it is not supported yet`);
      let frame: Frame | undefined;
      let stack: Frame[] | undefined;
      if (ref.kind !== 'value') {
        stack = this.stack(ref.tid);
        frame = stack[ref.frame];
      }
      const source = this.program.evaluate(args.value, frame, stack);
      this.engine.writeMemory(target.addr, encodeFor(target, source));
      this.timeline?.changed();
      this.stacks.clear();
      const now = this.valuesOf(ref).find((v) => v.name === args.name)!.value;
      const shown = this.variable(args.name, now);
      response.body = { value: shown.value, type: shown.type, variablesReference: shown.variablesReference };
      this.sendResponse(response);
      this.sendEvent({ seq: 0, type: 'event', event: 'invalidated', body: { areas: ['variables'] } } as DebugProtocol.InvalidatedEvent);
    } catch (e) {
      this.sendErrorResponse(response, 1045, `Cannot set ${args.name}: ${(e as Error).message}`);
    }
  }

  protected override evaluateRequest(response: DebugProtocol.EvaluateResponse, args: DebugProtocol.EvaluateArguments): void {
    try {
      if (!this.program) throw new Error('no program');
      let frame: Frame | undefined;
      let stack: Frame[] | undefined;
      const f = args.frameId !== undefined ? this.frameIds.get(args.frameId) : undefined;
      if (f) {
        stack = this.stack(f.tid);
        frame = stack[f.index];
      } else if (this.hasProcess() && !this.busy && this.currentTid) {
        stack = this.stack(this.currentTid);
        frame = stack[0];
      }
      const v = this.program.evaluate(args.expression, frame, stack);
      const shown = this.variable(args.expression, v, true);
      response.body = { result: shown.value, type: shown.type, variablesReference: shown.variablesReference, memoryReference: shown.memoryReference };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1040, (e as Error).message);
    }
  }

  protected override exceptionInfoRequest(response: DebugProtocol.ExceptionInfoResponse, args: DebugProtocol.ExceptionInfoArguments): void {
    const s = this.lastSignal.get(args.threadId);
    if (!s) {
      this.sendErrorResponse(response, 1050, 'This thread did not stop on a signal.');
      return;
    }
    const name = signame(s.signo);
    const fault = [11, 7, 8, 4].includes(s.signo);
    response.body = {
      exceptionId: name,
      description: `${SIGNALS[s.signo]?.[1] ?? 'Signal'} (${name}, si_code ${s.code})${fault ? ` at address 0x${s.addr.toString(16)}` : ''}`,
      breakMode: 'always',
      details: { typeName: name, message: fault ? `faulting address 0x${s.addr.toString(16)}` : undefined },
    };
    this.sendResponse(response);
  }

  protected override readMemoryRequest(response: DebugProtocol.ReadMemoryResponse, args: DebugProtocol.ReadMemoryArguments): void {
    try {
      const addr = BigInt(args.memoryReference) + BigInt(args.offset ?? 0);
      const data = this.readMem(addr, Math.min(args.count, 1 << 24));
      response.body = { address: '0x' + addr.toString(16), data: data.toString('base64'), unreadableBytes: args.count - data.length };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1060, (e as Error).message);
    }
  }

  protected override writeMemoryRequest(response: DebugProtocol.WriteMemoryResponse, args: DebugProtocol.WriteMemoryArguments): void {
    try {
      if (this.frozen) throw new Error('an image is read-only: revive it first');
      const addr = BigInt(args.memoryReference) + BigInt(args.offset ?? 0);
      const data = Buffer.from(args.data, 'base64');
      this.engine.writeMemory(addr, data);
      this.timeline?.changed();
      // values are read again when the editor asks (after `invalidated`): the frames and
      // references it holds stay valid, only the unwound stacks go
      this.stacks.clear();
      response.body = { bytesWritten: data.length };
      this.sendResponse(response);
      this.sendEvent({ seq: 0, type: 'event', event: 'invalidated', body: { areas: ['variables'] } } as DebugProtocol.InvalidatedEvent);
    } catch (e) {
      this.sendErrorResponse(response, 1061, (e as Error).message);
    }
  }

  protected override async disassembleRequest(response: DebugProtocol.DisassembleResponse, args: DebugProtocol.DisassembleArguments): Promise<void> {
    const invalid = (): DebugProtocol.DisassembledInstruction => ({ address: '0x0', instruction: '', presentationHint: 'invalid' });
    // the editor may ask before anything runs (an empty reference): answer with nothing, no error
    if (!args.memoryReference || !this.hasProcess() || this.busy) {
      response.body = { instructions: Array.from({ length: args.instructionCount }, invalid) };
      this.sendResponse(response);
      return;
    }
    try {
      const addr = BigInt(args.memoryReference) + BigInt(args.offset ?? 0);
      const slots = await disassembleAround((a, n) => this.readMem(a, n), this.program, addr, args.instructionOffset ?? 0, args.instructionCount);
      // slots with no instruction still get ordered, distinct addresses: the editor's view
      // finds rows by address and asks for more above its first row
      const firstReal = slots.findIndex((i) => i !== undefined);
      const lastReal = slots.length - 1 - [...slots].reverse().findIndex((i) => i !== undefined);
      const placeholder = (k: number): DebugProtocol.DisassembledInstruction => {
        let a: bigint;
        if (firstReal < 0) a = addr + BigInt(k - Math.max(0, -(args.instructionOffset ?? 0)));
        else if (k < firstReal) a = slots[firstReal]!.address - BigInt(firstReal - k);
        else a = slots[lastReal]!.address + BigInt(slots[lastReal]!.bytes.length) + BigInt(k - lastReal - 1);
        return { address: '0x' + (a < 0n ? 0n : a).toString(16), instruction: '??', presentationHint: 'invalid' };
      };
      let lastLine: string | undefined;
      response.body = {
        instructions: slots.map((i, k) => {
          if (!i) return placeholder(k);
          const d: DebugProtocol.DisassembledInstruction = {
            address: '0x' + i.address.toString(16),
            instructionBytes: i.bytes.toString('hex').replace(/(..)(?!$)/g, '$1 '),
            instruction: i.text,
          };
          if (i.symbol) d.symbol = i.symbol;
          if (i.file && i.line) {
            const key = `${i.file}:${i.line}`;
            if (key !== lastLine) {
              const src = this.source(i.file);
              if (src.path) d.location = src;
              d.line = i.line;
              lastLine = key;
            }
          }
          return d;
        }),
      };
      this.sendResponse(response);
    } catch (e) {
      this.sendErrorResponse(response, 1070, `Cannot disassemble: ${(e as Error).message}`);
    }
  }

  protected override customRequest(command: string, response: DebugProtocol.Response, args: unknown): void {
    if (command === 'modules') return this.modulesRequest(response as DebugProtocol.ModulesResponse);
    // DAP has no reverse step out: the toolbar's command sends this
    if (command === 'cryo/reverseStepOut') {
      void this.travel(response, 'out', Number((args as { threadId?: number })?.threadId) || this.currentTid);
      return;
    }
    if (command.startsWith('cryo/')) {
      // answered once done (a revive is asynchronous: the engine is closed on failure)
      Promise.resolve()
        .then(() => this.checkpointRequest(command.slice(5), (args ?? {}) as Record<string, unknown>))
        .then(
          (body) => {
            response.body = body;
            this.sendResponse(response);
          },
          (e: Error) => this.sendErrorResponse(response, 1080, e.message),
        );
      return;
    }
    this.sendErrorResponse(response, 1098, `unknown request ${command}`);
  }

  // ---- images: a session on a saved process, read-only until revived ----

  private imageFile?: Image;
  private imageArgs?: { program?: string; sourceFileMap?: Record<string, string> };

  private imageName(): string {
    return this.imageFile ? basename(this.imageFile.path) : 'this';
  }

  private async openImage(response: DebugProtocol.Response, image: string, args: { program?: string; cwd?: string; revive?: boolean; sourceFileMap?: Record<string, string> }): Promise<void> {
    try {
      const path = isAbsolute(image) ? image : resolve(args.cwd ?? process.cwd(), image);
      if (!existsSync(path)) throw new Error(`image ${path} does not exist`);
      const img = new Image(path); // validates everything: a damaged image is refused here
      this.imageFile = img;
      this.imageArgs = args;
      const info = img.describe();
      const exe = args.program ? (isAbsolute(args.program) ? args.program : resolve(args.cwd ?? process.cwd(), args.program)) : info.process.exe;
      if (!existsSync(exe))
        throw new Error(`the image's program ${exe} is not on this machine: set "program" in the launch configuration to a copy of it (with its symbols)`);
      this.sourceMap = Object.entries(args.sourceFileMap ?? {});
      const progress = this.progress(`Loading symbols of ${basename(exe)}`);
      try {
        this.frozen = new ImageTarget(img, exe);
        this.program = new Program(this.frozen);
      } finally {
        progress();
      }
      const want = info.process.exe_build_id;
      let have: string | undefined;
      try {
        have = new ElfFile(exe).buildId();
      } catch {
        /* not an ELF file: Program said so already */
      }
      if (want && have && want !== have)
        this.sendEvent(new OutputEvent(`cryo: ${exe} is not the build the image was taken from (build-id ${have}, the image has ${want}): stacks and variables may be wrong. Point "program" at the right build.\n`, 'console'));
      this.sendResponse(response);
      this.sendEvent(new InitializedEvent());
      await this.configured;
      this.reportImageStop();
      if (args.revive) {
        try {
          await this.revive();
        } catch (e) {
          this.sendEvent(new OutputEvent(`cryo: ${(e as Error).message}\n`, 'console'));
        }
      }
    } catch (e) {
      this.imageFile?.close();
      this.imageFile = undefined;
      this.frozen = undefined;
      this.sendErrorResponse(response, 1005, `Cannot open the image: ${(e as Error).message}`);
    }
  }

  /** Tells the editor whether this session is on an image not revived (its Revive button). */
  private imageState(): void {
    this.sendEvent({ seq: 0, type: 'event', event: 'cryo/imageState', body: { frozen: !!this.frozen, image: this.imageFile?.path } } as DebugProtocol.Event);
  }

  /** The stop an image session opens with: the crash on every thread, or the snapshot. */
  private reportImageStop(): void {
    this.imageState();
    const info = this.frozen!.info;
    const tids = this.frozen!.threads();
    const when = info.process.time;
    if (info.reason.kind === 'crash') {
      const r = info.reason;
      const addr = r.address ? BigInt(r.address) : 0n;
      for (const t of tids) this.lastSignal.set(t, { signo: r.signal, code: r.code, addr });
      const where = r.address ? ` at address ${r.address}` : '';
      const text = `${r.signal_name}: ${SIGNALS[r.signal]?.[1] ?? 'signal'}${where} (image of process ${info.process.pid}, ${when})`;
      // the crashing thread last, so that the editor shows it
      for (const t of tids) if (t !== r.tid) this.report('exception', t, `${r.signal_name} in thread ${r.tid} (image of process ${info.process.pid})`);
      this.currentTid = tids.includes(r.tid) ? r.tid : tids[0];
      this.report('exception', this.currentTid, text);
    } else {
      this.currentTid = tids.includes(info.process.pid) ? info.process.pid : tids[0];
      this.report('entry', this.currentTid, `Image of process ${info.process.pid} (${info.process.comm}), taken ${when}: revive it to run`);
    }
  }

  private imageInfo(): unknown {
    if (!this.imageFile) throw new Error('This session is not on an image.');
    const info = this.imageFile.describe();
    return { path: this.imageFile.path, revived: !this.frozen, reason: info.reason, process: { pid: info.process.pid, comm: info.process.comm, exe: info.process.exe } };
  }

  /** cryo/revive: the image becomes a live process, traced by this same session. */
  /**
   * Makes a live process of `image` (the session's image, or one of its checkpoints),
   * traced by this session as if launched, with breakpoints and libraries bound.
   * `log`: a record log to replay from there (else recording starts anew).
   */
  private async goLive(image: Image, log?: Buffer): Promise<{ pid: number; notes: string }> {
    const engine = new Engine();
    engine.keepPumping = true;
    let r;
    try {
      // never the adapter's own stdio: that is the protocol's stream
      r = engine.revive(image, { stdin: { mode: 'null' }, stdout: { mode: 'pipe' }, stderr: { mode: 'pipe' } });
      if (log) engine.replayLog(log);
    } catch (e) {
      await engine.close();
      throw e;
    }
    this.engine = engine;
    this.frozen = undefined;
    this.launched = true; // ours: killed when the session ends
    this.ended = false;
    this.pipeOutput(r.stdout, 'stdout');
    this.pipeOutput(r.stderr, 'stderr');
    this.lastSignal.clear();
    this.startProgram(r.pid, false, !log);
    this.program.refreshLibraries();
    this.armLoaderBreakpoint();
    for (const b of this.bps.resolvePending(this.program)) this.breakpointChanged(b);
    this.syncRawHits();
    return { pid: r.pid, notes: r.notes };
  }

  private async revive(): Promise<{ pid: number; notes: string }> {
    if (!this.frozen || !this.imageFile) throw new Error(this.imageFile ? 'The image is revived already.' : 'This session is not on an image: there is nothing to revive.');
    const img = this.imageFile;
    const problems = img.problems();
    if (problems) throw new Error(`${basename(img.path)} cannot be revived here:\n${problems}`);
    const r = await this.goLive(img);
    if (r.notes.trim()) this.sendEvent(new OutputEvent(`cryo: revived ${basename(img.path)} as process ${r.pid}:\n${r.notes.trim().replace(/^/gm, '  ')}\n`, 'console'));
    this.invalidate();
    this.currentTid = r.pid;
    this.imageState();
    this.report('entry', r.pid, `Revived ${basename(img.path)} as process ${r.pid}`);
    return { pid: r.pid, notes: r.notes };
  }

  // ---- checkpoints (the snapshot button and the Checkpoints view) ----

  private checkpointMeta = new Map<number, CheckpointMeta>();

  private checkpointList(): CheckpointView[] {
    if (!this.engine) return [];
    // the user's snapshots; the timeline's own checkpoints are not listed
    return this.engine.checkpoints().filter((c) => this.checkpointMeta.has(c.id)).map((c) => {
      const m = this.checkpointMeta.get(c.id);
      return { id: c.id, name: m?.name ?? `Checkpoint ${c.id}`, threadId: m?.threadId ?? 0, source: m?.source, line: m?.line, function: m?.function, time: c.createdAt.toISOString(), kind: c.kind, bytes: c.bytes };
    });
  }

  private recordPosition(): bigint | undefined {
    try {
      return this.timeline?.unavailable ? undefined : this.engine.recordPosition();
    } catch {
      return undefined;
    }
  }

  /** The syscalls recorded so far, and how: through the in-process buffer or at ptrace stops. */
  private recordCounts(): { entries: number; buffered: number; trapped: number } | undefined {
    try {
      const r = this.engine.recordStats();
      return r.mode === 'off' ? undefined : { entries: r.entries, buffered: r.buffered, trapped: r.trapped };
    } catch {
      return undefined;
    }
  }

  private reachTimer?: NodeJS.Timeout;

  /** After stops: the view's line is brought up to date once stepping pauses (a message
   * per step would cost each step more than the step). */
  private reachChangedSoon(): void {
    if (this.reachTimer) return;
    this.reachTimer = setTimeout(() => {
      this.reachTimer = undefined;
      if (!this.busy && this.engine?.pid) this.checkpointsChanged();
    }, 200);
    this.reachTimer.unref();
  }

  private checkpointsChanged(): void {
    this.sendEvent({ seq: 0, type: 'event', event: 'cryo/checkpointsChanged', body: { checkpoints: this.checkpointList(), timeline: this.timelineReach() } } as DebugProtocol.Event);
  }

  /** How far back step back can go, for the Checkpoints view. */
  private timelineReach(): { available: boolean; why?: string; positions: number; checkpoints?: number; earliest?: { function?: string; file?: string; line?: number; time: string }; bytes: number } | undefined {
    const t = this.timeline;
    if (!t) return undefined;
    if (t.unavailable) return { available: false, why: t.unavailable, positions: 0, bytes: 0 };
    const r = t.reach();
    let earliest;
    if (r.earliest) {
      const d = this.program.describe(r.earliest.pc);
      earliest = { function: d.function, file: d.source?.file ? this.toLocal(d.source.file) : undefined, line: d.source?.line, time: new Date(r.earliest.at).toISOString() };
    }
    return { available: true, positions: r.positions, checkpoints: r.checkpoints, earliest, bytes: r.bytes };
  }

  private checkpointRequest(what: string, args: Record<string, unknown>): unknown {
    if (what === 'revive') return this.revive();
    if (what === 'image') return this.imageInfo();
    // an image has no checkpoints until it is revived: an empty list, not an error
    if (this.frozen && what === 'checkpoints') return { checkpoints: [] };
    if (this.frozen) throw new Error(`${this.imageName()} is an image: revive it first.`);
    if (!this.engine) throw new Error('No program is being debugged.');
    const id = Number(args.id);
    switch (what) {
      case 'snapshot': {
        if (this.busy) throw new Error('The program is running: pause it first, then take the snapshot.');
        if (!this.engine.pid) throw new Error('The program is not running.');
        const tid = this.currentTid || this.engine.pid;
        const pos = this.recordPosition();
        const cid = this.engine.checkpoint();
        const top = this.stack(tid, 1)[0];
        const meta: CheckpointMeta = {
          name: typeof args.name === 'string' && args.name ? args.name : `Checkpoint ${cid}`,
          threadId: tid,
          source: top?.source ? this.source(top.source.file) : undefined,
          line: top?.source?.line,
          function: top?.function,
          pos,
        };
        this.checkpointMeta.set(cid, meta);
        this.checkpointsChanged();
        return this.checkpointList().find((c) => c.id === cid);
      }
      case 'checkpoints':
        return { checkpoints: this.checkpointList(), mode: this.engine.checkpointMode(), timeline: this.timelineReach(), record: this.recordCounts() };
      case 'restore': {
        if (this.busy) throw new Error('The program is running: pause it first.');
        const meta = this.checkpointMeta.get(id);
        if (!meta) throw new Error(`There is no checkpoint ${id}.`);
        const pid = this.engine.restore(id);
        // re-execution from here replays what was recorded after the snapshot
        let live = '';
        try {
          if (meta.pos !== undefined) this.engine.replayFrom(meta.pos);
        } catch {
          // the log was cut before it (a divergence): the state is the snapshot's, the rest live
          live = ': what was recorded after it is gone, so the program runs live from here';
        }
        this.ended = false;
        this.invalidate();
        this.currentTid = pid;
          this.report('restore', pid, `Restored ${this.checkpointMeta.get(id)?.name ?? `checkpoint ${id}`}${live}`);
        return { pid };
      }
      case 'saveImage': {
        if (this.busy) throw new Error('The program is running: pause it first.');
        if (typeof args.path !== 'string' || !args.path) throw new Error('cryo/saveImage needs a path.');
        const path = resolve(args.path);
        if (args.id !== undefined && !this.checkpointMeta.has(id)) throw new Error(`There is no checkpoint ${id}.`);
        const t0 = process.hrtime.bigint();
        this.engine.saveImage(args.id === undefined ? 0 : id, path);
        return { path, ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: statSync(path).size };
      }
      case 'deleteCheckpoint':
        this.engine.deleteCheckpoint(id);
        this.checkpointMeta.delete(id);
        this.checkpointsChanged();
        return {};
      case 'renameCheckpoint': {
        const m = this.checkpointMeta.get(id);
        if (!m) throw new Error(`There is no checkpoint ${id}.`);
        if (typeof args.name !== 'string' || !args.name.trim()) throw new Error('A checkpoint needs a name.');
        m.name = args.name.trim();
        this.checkpointsChanged();
        return {};
      }
      default:
        throw new Error(`unknown request cryo/${what}`);
    }
  }

  private modulesRequest(response: DebugProtocol.ModulesResponse): void {
    const mods = this.program?.modules ?? [];
    response.body = {
      modules: mods.map((m) => ({
        id: m.path,
        name: basename(m.path),
        path: m.path,
        symbolStatus: m.dwarfElf.section('.debug_info') ? 'Symbols loaded' : 'No debug information',
        addressRange: `0x${m.lo.toString(16)}-0x${m.hi.toString(16)}`,
      })),
      totalModules: mods.length,
    };
    this.sendResponse(response);
  }

  protected override loadedSourcesRequest(response: DebugProtocol.LoadedSourcesResponse): void {
    const files = new Set<string>();
    for (const m of this.program?.modules ?? []) {
      try {
        for (const cu of m.dwarf?.units ?? []) for (const f of m.unitFiles(cu)) files.add(f);
      } catch {
        /* a module without readable line tables */
      }
    }
    response.body = { sources: [...files].sort().map((f) => this.source(f)) };
    this.sendResponse(response);
  }

  protected override dispatchRequest(request: DebugProtocol.Request): void {
    try {
      super.dispatchRequest(request);
    } catch (e) {
      const r = { seq: 0, type: 'response', request_seq: request.seq, command: request.command, success: false } as DebugProtocol.Response;
      this.sendErrorResponse(r, 1099, (e as Error).message);
    }
  }
}

function truthy(v: Value): boolean {
  return v.bytes().some((x: number) => x !== 0);
}

function safeTypeName(v: Value): string | undefined {
  try {
    return typeName(v.type);
  } catch {
    return undefined;
  }
}

async function waitForPidFile(path: string, ms: number): Promise<number> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (pid > 0) {
        rmSync(path, { force: true });
        return pid;
      }
    } catch {
      /* not written yet */
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`the terminal did not start the program within ${ms / 1000} s`);
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2];
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}
