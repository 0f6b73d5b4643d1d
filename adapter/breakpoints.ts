// User breakpoints: where they resolve, which addresses they hold in the engine,
// and whether a hit should stop (condition, hit count) or log (logpoint).
import type { Session as Engine } from './engine';
import type { BreakLocation, Program } from './symbols';

export interface UserBreakpoint {
  id: number;
  kind: 'line' | 'function' | 'instruction';
  file?: string;
  line?: number;
  name?: string;
  address?: bigint;
  condition?: string;
  hitCondition?: string;
  logMessage?: string;
  hits: number;
  addrs: bigint[];
  /** where it resolved (the first location) */
  resolved?: BreakLocation;
  message?: string;
  /** refused as written (a hit condition that does not parse): never installed */
  invalid?: boolean;
}

export type HitCheck = (n: number) => boolean;

/** DAP hit conditions as people type them: "5", "==5", ">5", ">=5", "<5", "<=5", "%5". */
export function parseHitCondition(text: string): HitCheck {
  const m = /^\s*(==|=|>=|<=|>|<|%)?\s*(\d+)\s*$/.exec(text);
  if (!m) throw new Error(`hit condition "${text}" is not understood: write a number (break on that hit), or >N, >=N, <N, <=N, ==N, %N (every Nth hit)`);
  const n = Number(m[2]);
  switch (m[1]) {
    case '>':
      return (h) => h > n;
    case '>=':
      return (h) => h >= n;
    case '<':
      return (h) => h < n;
    case '<=':
      return (h) => h <= n;
    case '%':
      return (h) => n > 0 && h % n === 0;
    default:
      return (h) => h === n;
  }
}

export class Breakpoints {
  private nextId = 1;
  private bySource = new Map<string, UserBreakpoint[]>();
  private functions: UserBreakpoint[] = [];
  private instructions: UserBreakpoint[] = [];

  constructor(private readonly engine: () => Engine | undefined) {}

  all(): UserBreakpoint[] {
    return [...[...this.bySource.values()].flat(), ...this.functions, ...this.instructions];
  }

  /** User breakpoints holding an address. */
  at(addr: bigint): UserBreakpoint[] {
    return this.all().filter((b) => b.addrs.includes(addr));
  }

  private uninstall(bps: UserBreakpoint[]): void {
    const e = this.engine();
    for (const b of bps) {
      for (const a of b.addrs) {
        try {
          e?.removeBreakpoint(a);
        } catch {
          /* the process is gone: nothing to remove */
        }
      }
      b.addrs = [];
    }
  }

  private make(kind: UserBreakpoint['kind'], fields: Partial<UserBreakpoint>): UserBreakpoint {
    const b: UserBreakpoint = { id: this.nextId++, kind, hits: 0, addrs: [], ...fields };
    if (b.hitCondition) parseHitCondition(b.hitCondition); // refuse bad ones now, with a message
    return b;
  }

  setSource(file: string, specs: { line: number; condition?: string; hitCondition?: string; logMessage?: string }[], program?: Program): UserBreakpoint[] {
    this.uninstall(this.bySource.get(file) ?? []);
    const list = specs.map((s) => {
      try {
        return this.make('line', { file, line: s.line, condition: s.condition, hitCondition: s.hitCondition, logMessage: s.logMessage });
      } catch (e) {
        return { ...this.make('line', { file, line: s.line }), message: (e as Error).message, invalid: true };
      }
    });
    this.bySource.set(file, list);
    if (program) for (const b of list) this.resolve(b, program);
    return list;
  }

  setFunctions(specs: { name: string; condition?: string; hitCondition?: string }[], program?: Program): UserBreakpoint[] {
    this.uninstall(this.functions);
    this.functions = specs.map((s) => this.make('function', { name: s.name, condition: s.condition, hitCondition: s.hitCondition }));
    if (program) for (const b of this.functions) this.resolve(b, program);
    return this.functions;
  }

  setInstructions(specs: { address: bigint; condition?: string; hitCondition?: string }[]): UserBreakpoint[] {
    this.uninstall(this.instructions);
    this.instructions = specs.map((s) => this.make('instruction', { address: s.address, condition: s.condition, hitCondition: s.hitCondition }));
    for (const b of this.instructions) this.install(b, [{ addr: b.address! }]);
    return this.instructions;
  }

  /** Forgets every address (a new process): resolvePending binds them again. */
  unbind(): void {
    for (const b of this.all()) if (b.kind !== 'instruction') b.addrs = [];
  }

  /** Resolves every breakpoint that has no address yet (after libraries load). Returns those that changed. */
  resolvePending(program: Program): UserBreakpoint[] {
    const changed: UserBreakpoint[] = [];
    for (const b of this.all()) {
      if (b.kind === 'instruction' || b.addrs.length) continue;
      if (this.resolve(b, program)) changed.push(b);
    }
    return changed;
  }

  private resolve(b: UserBreakpoint, program: Program): boolean {
    if (b.invalid) return false;
    let locs: BreakLocation[] = [];
    try {
      locs = b.kind === 'line' ? program.lineBreakpoints(b.file!, b.line!) : program.functionBreakpoints(b.name!);
    } catch (e) {
      b.message = (e as Error).message;
      return false;
    }
    if (!locs.length) {
      b.message = b.kind === 'line' ? `no code at ${b.file}:${b.line} in the loaded program yet (it binds when a library that has it loads)` : `no function "${b.name}" in the loaded program yet (it binds when a library that has it loads)`;
      return false;
    }
    return this.install(b, locs);
  }

  private install(b: UserBreakpoint, locs: BreakLocation[]): boolean {
    const e = this.engine();
    if (!e) return false;
    for (const l of locs) {
      try {
        e.insertBreakpoint(l.addr);
        b.addrs.push(l.addr);
      } catch (err) {
        b.message = (err as Error).message;
      }
    }
    if (b.addrs.length) {
      b.resolved = locs[0];
      b.message = undefined;
    }
    return b.addrs.length > 0;
  }

}
