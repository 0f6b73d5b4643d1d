// The symbolic view of one process (live or saved): modules and shared libraries, source
// lines and breakpoint addresses, call stacks, scopes, variables and their values.
import { existsSync, realpathSync } from 'node:fs';
import { FrameRules } from './cfi';
import { Attr, CompUnit, Die, DW, VClass } from './dwarf';
import { evalExpr, ExprContext, Loc } from './dwexpr';
import { ElfFile, PT_LOAD, PT_PHDR } from './elf';
import { functionName, physname } from './funcname';
import { fileMatches, inRanges, Module, qualifiedName, SourceLocation } from './module';
import { AT_BASE, AT_ENTRY, AT_PHDR, AT_SYSINFO_EHDR, Reg, Registers, Target } from './target';
import { Member, setDeclarationResolver, strip, Type, typeOf } from './types';
import { Evaluator } from './expr';
import { callSiteAt, callSites, returnPc, targetDie, targetExpr } from './callsites';
import { entryOf, entryOpValue, NoEntryValue, paramEntryValue } from './entryvalues';
import { formatValue, OptimizedOut, setStaticMemberResolver, summaryForFrameArgs, Value, ValueContext } from './values';

export interface Frame {
  /** position in the stack, innermost 0 (inline frames count) */
  index: number;
  /** pc of the frame: the current pc for frame 0 and signal-interrupted frames, the return address otherwise */
  pc: bigint;
  /** address used for symbol lookups (pc - 1 for callers) */
  lookupPc: bigint;
  /** canonical frame address of the physical frame */
  cfa?: bigint;
  regs: Registers;
  module?: Module;
  /** function name as gdb shows it, or undefined ("??") */
  function?: string;
  /** the subprogram or inlined_subroutine DIE of this frame */
  funcDie?: Die;
  /** the physical function's subprogram DIE (frame base) */
  physDie?: Die;
  /** blocks from funcDie inward that contain the pc */
  blocks: Die[];
  source?: SourceLocation;
  /** an inlined function's virtual frame */
  inlined: boolean;
  /** glibc's signal trampoline: "<signal handler called>" */
  signalFrame: boolean;
  /** physical frame number (0-based), shared by inline frames of one physical frame */
  physIndex: number;
  /** a frame gdb reconstructs from tail-call sites (no registers of its own) */
  tailCall?: boolean;
}

export interface Variable {
  name: string;
  value: Value;
  die: Die;
  isArg: boolean;
}

export interface BreakLocation {
  addr: bigint;
  file?: string;
  line?: number;
  function?: string;
}

const SIGRETURN = Buffer.from([0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05]);
// ucontext_t: uc_flags, uc_link, uc_stack(24) then mcontext gregs: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip
const SIGCTX_REGS = [8, 9, 10, 11, 12, 13, 14, 15, 5, 4, 6, 3, 1, 0, 2, 7, 16];

export class Program {
  modules: Module[] = [];
  readonly exe: Module;
  private rDebugAddr?: bigint;
  private moduleCache = new Map<string, Module>();

  constructor(readonly target: Target) {
    const elf = new ElfFile(target.exePath);
    this.exe = new Module(target.exePath, this.exeBias(elf), elf);
    this.modules = [this.exe];
    this.exe.program = this;
    installResolvers();
    this.refreshLibraries();
  }

  private exeBias(elf: ElfFile): bigint {
    const t = this.target;
    if (t.exeBias !== undefined) return t.exeBias;
    const phdr = t.auxv?.get(AT_PHDR);
    const ph = elf.segments.find((s) => s.type === PT_PHDR);
    if (phdr !== undefined && ph) return phdr - ph.vaddr;
    const entry = t.auxv?.get(AT_ENTRY);
    if (entry !== undefined) return entry - elf.entry;
    return 0n;
  }

  private read64(addr: bigint): bigint { return this.target.memory.read(addr, 8).readBigUInt64LE(0); }

  private readStr(addr: bigint): string {
    const out: number[] = [];
    for (let a = addr; out.length < 4096; a += 64n) {
      let b: Buffer;
      try { b = this.target.memory.read(a, 64); } catch { b = this.target.memory.read(a, 1); }
      const z = b.indexOf(0);
      if (z >= 0) { out.push(...b.subarray(0, z)); break; }
      out.push(...b);
    }
    return Buffer.from(out).toString('utf8');
  }

  /** Address of r_debug (from DT_DEBUG in the executable's dynamic section), once the loader set it. */
  rDebug(): bigint | undefined {
    if (this.rDebugAddr) return this.rDebugAddr;
    for (const d of this.exe.elf.dynamic()) {
      if (d.tag === 21n) { // DT_DEBUG
        try {
          const v = this.read64(d.vaddr + this.exe.bias + 8n);
          if (v) this.rDebugAddr = v;
        } catch { /* not mapped */ }
      }
    }
    return this.rDebugAddr;
  }

  /** Where the dynamic loader reports library changes (r_brk, i.e. _dl_debug_state): put a breakpoint there. */
  loaderBreakAddress(): bigint | undefined {
    const r = this.rDebug();
    if (r) { try { return this.read64(r + 16n); } catch { /* fall through */ } }
    const base = this.target.auxv?.get(AT_BASE);
    if (base) {
      const ld = this.modules.find((m) => m.lo === base) ?? this.openModule(this.interpreterPath(), base);
      const a = ld?.elfSymbols('_dl_debug_state')[0];
      if (a !== undefined) return a;
    }
    return undefined;
  }

  private interpreterPath(): string {
    const seg = this.exe.elf.segments.find((s) => s.type === 3);
    if (!seg) return '';
    return this.exe.elf.bytes(seg.offset, seg.filesz).toString('latin1').replace(/\0.*$/s, '');
  }

  private openModule(path: string, bias: bigint): Module | undefined {
    const key = `${path}@${bias}`;
    let m = this.moduleCache.get(key);
    if (m) return m;
    if (!path || !existsSync(path)) return undefined;
    try { m = new Module(path, bias); } catch { return undefined; }
    m.program = this;
    this.moduleCache.set(key, m);
    return m;
  }

  /** Re-reads the loader's list of shared libraries (call after a stop at the loader break address). */
  refreshLibraries(): Module[] {
    const mods: Module[] = [this.exe];
    const r = this.rDebug();
    const seen = new Set<string>();
    if (r) {
      try {
        let lm = this.read64(r + 8n);
        for (let i = 0; lm && i < 1000; i++) {
          const lAddr = this.read64(lm), lName = this.read64(lm + 8n), next = this.read64(lm + 24n);
          const name = lName ? this.readStr(lName) : '';
          if (name && i > 0) {
            const m = this.openModule(name, lAddr);
            if (m && !seen.has(m.path)) { m.linkMap = lm; mods.push(m); seen.add(m.path); }
          }
          lm = next;
        }
      } catch { /* a partly written list while the loader works */ }
    }
    if (mods.length === 1 && this.target.mappedFiles) {
      // before the loader ran (or static): use the file mappings
      const firsts = new Map<string, bigint>();
      for (const f of this.target.mappedFiles) if (f.offset === 0n && !firsts.has(f.path)) firsts.set(f.path, f.start);
      const same = (a: string, b: string) => { try { return realpathSync(a) === realpathSync(b); } catch { return a === b; } };
      for (const [path, start] of firsts) {
        if (same(path, this.exe.path) || /\/(dev|proc|memfd:)/.test(path) || path.startsWith('[')) continue;
        try {
          const elf = new ElfFile(path);
          if (elf.type !== 3) continue;
          const m = this.openModule(path, start - (elf.firstLoadVaddr & ~0xfffn));
          if (m && !seen.has(m.path)) { mods.push(m); seen.add(m.path); }
        } catch { /* not ELF */ }
      }
    }
    const vdso = this.vdsoModule();
    if (vdso) mods.push(vdso);
    this.modules = mods;
    return mods;
  }

  /** The vDSO, read from memory (AT_SYSINFO_EHDR): its symbols and CFI let stacks pass through it. */
  private vdsoModule(): Module | undefined {
    const base = this.target.auxv?.get(AT_SYSINFO_EHDR);
    if (!base) return undefined;
    const key = `[vdso]@${base}`;
    const cached = this.moduleCache.get(key);
    if (cached) return cached;
    try {
      const mem = this.target.memory;
      const h = mem.read(base, 64);
      if (h.readUInt32BE(0) !== 0x7f454c46) return undefined;
      const phoff = Number(h.readBigUInt64LE(32)), shoff = Number(h.readBigUInt64LE(40));
      const phentsize = h.readUInt16LE(54), phnum = h.readUInt16LE(56), shentsize = h.readUInt16LE(58), shnum = h.readUInt16LE(60);
      let size = Math.max(shoff + shnum * shentsize, phoff + phnum * phentsize);
      const ph = mem.read(base + BigInt(phoff), phnum * phentsize);
      for (let i = 0; i < phnum; i++) {
        const o = i * phentsize;
        if (ph.readUInt32LE(o) === 1) size = Math.max(size, Number(ph.readBigUInt64LE(o + 8)) + Number(ph.readBigUInt64LE(o + 32)));
      }
      if (size <= 0 || size > 1 << 20) return undefined;
      const elf = new ElfFile('[vdso]', mem.read(base, size));
      const m = new Module('[vdso]', base - (elf.firstLoadVaddr & ~0xfffn), elf);
      m.program = this;
      this.moduleCache.set(key, m);
      return m;
    } catch {
      return undefined;
    }
  }

  moduleFor(addr: bigint): Module | undefined {
    for (const m of this.modules) if (m.contains(addr)) return m;
    return undefined;
  }

  resolveDeclaration(d: Die): Die | undefined {
    const name = qualifiedName(d);
    if (!name) return undefined;
    // its own object first (the DWARF's owner: asking every object for its units would read them all)
    const mods = [this.modules.find((m) => m === d.cu.dwarf.owner), ...this.modules];
    for (const m of mods) {
      if (!m) continue;
      for (const t of m.typesNamed(name)) if (t.tag === d.tag && !t.flag(DW.AT_declaration)) return t;
    }
    return undefined;
  }

  // ------------------------------------------------------------------ source lines

  /** Function, file, line and column of an address. */
  describe(addr: bigint): { function?: string; source?: SourceLocation; module?: Module } {
    const m = this.moduleFor(addr);
    if (!m) return {};
    const fn = m.functionAt(addr);
    const name = fn ? functionName(fn) : m.elfSymbolAt(addr)?.name;
    return { function: name, source: m.sourceAt(addr), module: m };
  }

  /** The function containing an address: its name and [start, end) of the range holding addr. */
  functionBounds(addr: bigint): { name: string; start: bigint; end: bigint; hasDebugInfo: boolean } | undefined {
    const m = this.moduleFor(addr);
    if (!m) return undefined;
    const fn = m.functionAt(addr);
    if (fn) {
      const a = addr - m.bias;
      const r = fn.ranges().find(([lo, hi]) => a >= lo && a < hi);
      if (r) return { name: functionName(fn), start: r[0] + m.bias, end: r[1] + m.bias, hasDebugInfo: true };
    }
    const s = m.elfSymbolAt(addr);
    if (!s) return undefined;
    const sym = [...m.elf.symbolsAt(addr - m.bias), ...(m.debugElf?.symbolsAt(addr - m.bias) ?? [])].find((x) => x.value + m.bias === s.addr);
    return { name: s.name, start: s.addr, end: s.addr + BigInt(Math.max(1, sym?.size ?? 1)), hasDebugInfo: false };
  }

  /** Name of the ELF section holding an address (e.g. ".plt", ".plt.sec", ".text"), for stepping through stubs. */
  sectionAt(addr: bigint): string | undefined {
    const m = this.moduleFor(addr);
    if (!m) return undefined;
    const a = addr - m.bias;
    return m.elf.sections.find((sec) => (sec.flags & 2n) !== 0n && a >= sec.addr && a < sec.addr + BigInt(sec.size))?.name;
  }

  /** Source files named by the line tables of every module (for a loaded-sources view). */
  sourceFiles(): string[] {
    const out = new Set<string>();
    for (const m of this.modules) {
      const d = m.dwarf;
      if (!d) continue;
      for (const cu of d.units) { try { for (const f of m.unitFiles(cu)) out.add(f); } catch { /* unreadable unit */ } }
    }
    return [...out];
  }

  /** The line-table entry covering an address: source position and its [start, end) address range. */
  lineRange(addr: bigint): (SourceLocation & { start: bigint; end: bigint }) | undefined {
    const m = this.moduleFor(addr);
    const r = m?.rowFor(addr);
    if (!m || !r || r.row.line === 0) return undefined;
    return { file: r.table.files[r.row.file] ?? '??', line: r.row.line, column: r.row.col, start: r.row.addr + m.bias, end: r.end };
  }

  /** lineRange, reaching on over the rows that follow it without a gap for the same line
   * of the same file (a line's statements and views, often a dozen rows): the whole of
   * it that a step goes through without stopping. */
  lineExtent(addr: bigint): (SourceLocation & { start: bigint; end: bigint }) | undefined {
    const first = this.lineRange(addr);
    if (!first) return undefined;
    let end = first.end;
    for (let n = 0; n < 256 && end - first.start < 4096n; n++) {
      const next = this.lineRange(end);
      if (!next || next.start !== end || next.end <= end || next.line !== first.line || next.file !== first.file) break;
      end = next.end;
    }
    return { ...first, end };
  }

  /** gdb's prologue analysis on x86-64 (endbr64; push %rbp; mov %rsp,%rbp) then the mid-line rule. */
  postPrologue(m: Module, entry: bigint, fnEnd?: bigint): bigint {
    let pc = entry;
    let code: Buffer;
    try { code = this.target.memory.read(entry, 16); } catch {
      code = m.elf.readVaddr(entry - m.bias, 16) ?? Buffer.alloc(16);
    }
    let i = 0;
    if (code[0] === 0xf3 && code[1] === 0x0f && code[2] === 0x1e && code[3] === 0xfa) i = 4;
    let frameless = true;
    if (code[i] === 0x55) {
      const b = code.subarray(i + 1, i + 4);
      if ((b[0] === 0x48 && b[1] === 0x89 && b[2] === 0xe5) || (b[0] === 0x48 && b[1] === 0x8b && b[2] === 0xec)) { frameless = false; pc = entry + BigInt(i + 4); }
      else if ((b[0] === 0x89 && b[1] === 0xe5) || (b[0] === 0x8b && b[1] === 0xec)) { frameless = false; pc = entry + BigInt(i + 3); }
    }
    if (frameless) pc = entry;
    const r = m.rowFor(pc);
    if (r && m.bias + r.row.addr !== pc && r.end > pc && (fnEnd === undefined || r.end < fnEnd)) pc = r.end;
    return pc;
  }

  /** Addresses for `break FUNC`. */
  functionBreakpoints(name: string): BreakLocation[] {
    const out: BreakLocation[] = [];
    const add = (m: Module, entry: bigint, end: bigint | undefined, fn: string) => {
      const pc = this.postPrologue(m, entry, end);
      if (out.some((o) => o.addr === pc)) return;
      const src = m.sourceAt(pc);
      out.push({ addr: pc, file: src?.file, line: src?.line, function: fn });
    };
    for (const m of this.modules) {
      if (m !== this.exe) {
        // libraries: their symbol tables say whether they define the name, so their debug
        // information is not indexed for it (libc's would take a second); the line table alone
        // places the breakpoint after the prologue
        for (const a of m.elfSymbols(name, true)) {
          const fn = m.functionAt(a);
          const r = fn?.ranges().find(([lo, hi]) => a - m.bias >= lo && a - m.bias < hi);
          add(m, a, r ? r[1] + m.bias : undefined, fn ? functionName(fn) : name);
        }
        continue;
      }
      const dies = m.functionsNamed(name);
      for (const d of dies) {
        const r = d.ranges();
        if (!r.length) continue;
        const lowA = d.attr(DW.AT_low_pc) ? (d.attr(DW.AT_low_pc)!.v as bigint) : r[0][0];
        const end = r.find(([lo]) => lo === lowA)?.[1];
        add(m, lowA + m.bias, end === undefined ? undefined : end + m.bias, qualifiedName(d));
      }
      for (const d of m.inlinedNamed(name)) {
        const pc = m.entryPc(d);
        if (pc === undefined || out.some((o) => o.addr === pc)) continue;
        const src = m.sourceAt(pc);
        out.push({ addr: pc, file: src?.file, line: src?.line, function: name });
      }
      if (!out.length) for (const a of m.elfSymbols(name, true)) add(m, a, undefined, name);
      if (out.length) break;
    }
    return out;
  }


  /** Addresses for `break FILE:LINE` (a line without code moves to the next line with code). */
  lineBreakpoints(file: string, line: number): BreakLocation[] {
    type Cand = { m: Module; addr: bigint; line: number; file: string };
    const exact: Cand[] = [];
    let bestLine = Infinity;
    const later: Cand[] = [];
    for (const m of this.modules) {
      for (const { cu, fileIdx } of m.unitsForFile(file)) {
        const t = m.lineTable(cu);
        if (!t) continue;
        const set = new Set(fileIdx);
        const lines = t.lines, files = t.fileIdx;
        for (let i = 0; i < t.count; i++) {
          const rl = lines[i];
          if (rl < line || rl > bestLine || t.endSeq(i) || !t.isStmt(i) || !set.has(files[i])) continue;
          const c = { m, addr: t.addr(i) + m.bias, line: rl, file: t.files[files[i]] };
          if (rl === line) exact.push(c);
          else if (rl > line && rl <= bestLine) {
            if (rl < bestLine) { later.length = 0; bestLine = rl; }
            later.push(c);
          }
        }
      }
    }
    const cands = exact.length ? exact : later;
    cands.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    // one location per block (the lowest address), as gdb does
    const blocks = new Set<Die | string>();
    const out: BreakLocation[] = [];
    for (const c of cands) {
      const chain = c.m.scopeChain(c.addr);
      const blk: Die | string = chain.length ? chain[chain.length - 1] : `${c.m.path}:${c.addr}`;
      if (blocks.has(blk)) continue;
      blocks.add(blk);
      let addr = c.addr;
      let ln = c.line;
      const fn = chain[0];
      if (fn) {
        const r = fn.ranges();
        const low = (fn.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? r[0]?.[0];
        if (low !== undefined) {
          const end = r.find(([lo]) => lo === low)?.[1];
          const post = this.postPrologue(c.m, low + c.m.bias, end === undefined ? undefined : end + c.m.bias);
          if (addr <= post) { addr = post; ln = c.m.sourceAt(post)?.line ?? ln; }
        }
      }
      if (!out.some((o) => o.addr === addr)) out.push({ addr, file: c.file, line: ln, function: fn ? qualifiedName(fn) : undefined });
    }
    return out;
  }

  // ------------------------------------------------------------------ unwinding

  /** The call stack of a stopped thread, innermost first, with inlined functions as frames. */
  backtrace(regs: Registers, maxFrames = 256): Frame[] {
    const frames: Frame[] = [];
    let cur: Registers = new Map(regs);
    let adjust = false; // callers look up pc - 1
    const seen = new Set<string>();
    for (let phys = 0; frames.length < maxFrames; phys++) {
      const pc = cur.get(16);
      if (pc === undefined || pc === 0n) break;
      const key = `${pc}:${cur.get(7)}`;
      if (seen.has(key)) break;
      seen.add(key);
      const lookupPc = adjust ? pc - 1n : pc;
      const m = this.moduleFor(lookupPc);
      // signal trampoline
      let isSig = false;
      try { isSig = this.target.memory.read(pc, SIGRETURN.length).equals(SIGRETURN); } catch { /* unreadable */ }
      if (isSig) {
        const sp = cur.get(7)!;
        const next: Registers = new Map(cur);
        const gregs = sp + 40n;
        for (let i = 0; i < SIGCTX_REGS.length; i++) next.set(SIGCTX_REGS[i], this.read64(gregs + BigInt(i * 8)));
        frames.push({ index: frames.length, pc, lookupPc: pc, regs: cur, module: m, blocks: [], inlined: false, signalFrame: true, physIndex: phys, cfa: sp });
        cur = next;
        adjust = false;
        continue;
      }
      let rules: FrameRules | undefined;
      try { rules = m?.frameRules(lookupPc); } catch { rules = undefined; }
      let cfa: bigint | undefined;
      let caller: Registers | undefined;
      try {
        if (rules) ({ cfa, caller } = this.applyRules(rules, cur, m!));
        else if (m && cur.has(7) && (this.heuristicRules(m, lookupPc, pc) !== undefined)) {
          const h = this.heuristicRules(m, lookupPc, pc)!;
          ({ cfa, caller } = this.applyRules(h, cur, m));
        } else if (cur.has(6)) {
          const rbp = cur.get(6)!;
          cfa = rbp + 16n;
          caller = new Map(cur);
          caller.set(16, this.read64(rbp + 8n));
          caller.set(6, this.read64(rbp));
          caller.set(7, cfa);
        }
      } catch { caller = undefined; }
      this.pushFrames(frames, pc, lookupPc, cur, m, cfa, phys);
      if (!caller) break;
      const npc = caller.get(16);
      if (npc === undefined || npc === 0n) break;
      const nsp = caller.get(7);
      if (nsp !== undefined && cur.get(7) !== undefined && nsp < cur.get(7)!) break;
      cur = caller;
      adjust = true;
    }
    const withTail = this.insertTailCalls(frames);
    withTail.forEach((f, i) => (f.index = i));
    return withTail;
  }

  // ---- tail calls (as gdb's tailcall frames): a caller's call site whose target is not the
  // callee but reaches it through a unique chain of DW_AT_call_tail_call sites

  /** Link-time entry address of a call site's target, when it is known statically. */
  private siteTarget(m: Module, site: Die, callerFrame?: Frame): { addr: bigint; fn?: Die } | undefined {
    const o = targetDie(site);
    if (o) {
      let def: Die | undefined = o;
      if (!o.ranges().length) {
        const ln = o.lookup(DW.AT_linkage_name)?.str(DW.AT_linkage_name);
        const cands = [...(ln ? m.functionsNamed(ln) : []), ...m.functionsNamed(qualifiedName(o))];
        def = cands.find((d) => d.ranges().length && (d.ref(DW.AT_specification) === o || d.ref(DW.AT_abstract_origin) === o || qualifiedName(d) === qualifiedName(o)))
          ?? cands.find((d) => d.ranges().length && d.name === o.name);
      }
      if (!def) return undefined;
      const lo = (def.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? def.ranges()[0]?.[0];
      return lo === undefined ? undefined : { addr: lo, fn: def };
    }
    const t = targetExpr(site);
    if (t && callerFrame) {
      try {
        const l = this.locationOf({ ...t, at: DW.AT_location }, site.cu, callerFrame);
        const a = l.kind === 'memory' ? l.addr : l.kind === 'value' ? l.value : undefined;
        if (a === undefined) return undefined;
        const fn = m.functionAt(a);
        return { addr: a - m.bias, fn };
      } catch { return undefined; }
    }
    return undefined;
  }

  private insertTailCalls(frames: Frame[]): Frame[] {
    const out: Frame[] = [];
    for (let i = 0; i < frames.length; i++) {
      out.push(frames[i]);
      const callee = frames[i];
      const caller = frames[i + 1];
      if (!caller || caller.physIndex === callee.physIndex || caller.signalFrame || callee.signalFrame) continue;
      const m = caller.module;
      if (!m || m !== callee.module || !caller.physDie || !callee.physDie) continue;
      try {
        const site = callSiteAt(caller.physDie, caller.pc - m.bias);
        if (!site) continue;
        const calleeLo = (callee.physDie.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? callee.physDie.ranges()[0]?.[0];
        const target = this.siteTarget(m, site, caller);
        if (!target || calleeLo === undefined || target.addr === calleeLo || !target.fn) continue;
        // depth-first search for chains of tail calls from the target to the callee
        const chains: { fn: Die; site: Die }[][] = [];
        const dfs = (fn: Die, path: { fn: Die; site: Die }[], depth: number) => {
          if (depth > 6 || chains.length > 1) return;
          for (const st of callSites(fn, true)) {
            const t = this.siteTarget(m, st);
            if (!t) continue;
            const p = [...path, { fn, site: st }];
            if (t.addr === calleeLo) chains.push(p);
            else if (t.fn && !path.some((x) => x.fn === t.fn)) dfs(t.fn, p, depth + 1);
          }
        };
        dfs(target.fn, [], 0);
        if (chains.length !== 1) continue;
        // innermost first: the function that tail-called the callee comes right above it
        for (const link of [...chains[0]].reverse()) {
          const rp = returnPc(link.site)!;
          const pc = rp + m.bias;
          // gdb names a tail-call frame by the innermost (inlined) function at its pc
          const chain = m.scopeChain(pc - 1n);
          let fd: Die = link.fn;
          for (const d of chain) if (d.tag === DW.TAG_inlined_subroutine) fd = d;
          const blocks = chain.slice(Math.max(0, chain.indexOf(fd)));
          out.push({
            index: 0, pc, lookupPc: pc - 1n, regs: caller.regs, module: m, cfa: caller.cfa, function: functionName(fd),
            funcDie: fd, physDie: link.fn, blocks: blocks.length ? blocks : [link.fn], source: m.sourceAt(pc - 1n), inlined: false, signalFrame: false,
            physIndex: callee.physIndex, tailCall: true,
          });
        }
      } catch { /* no tail call information */ }
    }
    return out;
  }

  /**
   * Without CFI (gaps between FDEs, hand-written code), gdb analyses the prologue: after
   * `push %rbp; mov %rsp,%rbp` the frame is rbp-based, after the push only CFA = rsp+16,
   * and a function without them is frameless (return address at the stack pointer).
   */
  private heuristicRules(m: Module, lookupPc: bigint, pc: bigint): FrameRules | undefined {
    const fn = m.functionAt(lookupPc);
    let start: bigint | undefined;
    if (fn) { const lo = (fn.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? fn.ranges()[0]?.[0]; if (lo !== undefined) start = lo + m.bias; }
    if (start === undefined) start = m.elfSymbolAt(lookupPc)?.addr;
    if (start === undefined) return undefined;
    let code: Buffer;
    try { code = this.target.memory.read(start, 8); } catch { return undefined; }
    let i = 0;
    if (code[0] === 0xf3 && code[1] === 0x0f && code[2] === 0x1e && code[3] === 0xfa) i = 4;
    const regs = new Map<number, { k: 'offset'; n: bigint }>([[16, { k: 'offset', n: -8n }]]);
    if (code[i] === 0x55 && pc > start + BigInt(i)) {
      const b = code.subarray(i + 1, i + 4);
      const mov = (b[0] === 0x48 && b[1] === 0x89 && b[2] === 0xe5) || (b[0] === 0x48 && b[1] === 0x8b && b[2] === 0xec);
      regs.set(6, { k: 'offset', n: -16n });
      if (mov && pc >= start + BigInt(i + 4)) return { cfa: { reg: 6, off: 16n }, regs, retReg: 16, signalFrame: false };
      return { cfa: { reg: 7, off: 16n }, regs, retReg: 16, signalFrame: false };
    }
    return { cfa: { reg: 7, off: 8n }, regs, retReg: 16, signalFrame: false };
  }

  private applyRules(rules: FrameRules, regs: Registers, m: Module): { cfa: bigint; caller: Registers } {
    const mem = this.target.memory;
    const reg = (n: number) => { const v = regs.get(n); if (v === undefined) throw new Error(`register ${n} unavailable`); return v; };
    const ctx: ExprContext = { reg, mem: (a, s) => mem.read(a, s), bias: m.bias };
    let cfa: bigint;
    if ('expr' in rules.cfa) {
      const l = evalExpr(rules.cfa.expr, ctx);
      if (l.kind !== 'memory') throw new Error('bad CFA expression');
      cfa = l.addr;
    } else cfa = BigInt.asUintN(64, reg(rules.cfa.reg) + rules.cfa.off);
    const caller: Registers = new Map();
    for (const [k, v] of regs) if (k !== 16) caller.set(k, v);
    caller.set(7, cfa);
    for (const [r, rule] of rules.regs) {
      switch (rule.k) {
        case 'undefined': caller.delete(r); break;
        case 'same': break;
        case 'offset': caller.set(r, this.read64(cfa + rule.n)); break;
        case 'val_offset': caller.set(r, cfa + rule.n); break;
        case 'register': { const v = regs.get(rule.r); if (v === undefined) caller.delete(r); else caller.set(r, v); break; }
        case 'expr': { const l = evalExpr(rule.e, { ...ctx, cfa: () => cfa }, [cfa]); if (l.kind === 'memory') caller.set(r, this.read64(l.addr)); break; }
        case 'val_expr': { const l = evalExpr(rule.e, { ...ctx, cfa: () => cfa }, [cfa]); if (l.kind === 'memory') caller.set(r, l.addr); else if (l.kind === 'value') caller.set(r, l.value); break; }
      }
    }
    if (rules.retReg !== 16) {
      const ra = caller.get(rules.retReg);
      if (ra === undefined) caller.delete(16); else caller.set(16, ra);
    } else if (!rules.regs.has(16)) caller.delete(16);
    return { cfa, caller };
  }

  private pushFrames(frames: Frame[], pc: bigint, lookupPc: bigint, regs: Registers, m: Module | undefined, cfa: bigint | undefined, phys: number): void {
    const base = { pc, lookupPc, regs, module: m, cfa, signalFrame: false, physIndex: phys };
    if (!m) { frames.push({ ...base, index: 0, blocks: [], inlined: false }); return; }
    let chain: Die[] = [];
    try { chain = m.scopeChain(lookupPc); } catch { chain = []; }
    if (!chain.length) {
      const s = m.elfSymbolAt(lookupPc);
      frames.push({ ...base, index: 0, function: s?.name, blocks: [], inlined: false, source: m.sourceAt(lookupPc) });
      return;
    }
    // split the chain at inlined subroutines: innermost inline first
    const groups: Die[][] = [];
    let g: Die[] = [];
    for (const d of chain) {
      if (d.tag === DW.TAG_inlined_subroutine && g.length) { groups.push(g); g = []; }
      g.push(d);
    }
    groups.push(g);
    let source = m.sourceAt(lookupPc);
    for (let i = groups.length - 1; i >= 0; i--) {
      const grp = groups[i];
      const fd = grp[0];
      frames.push({ ...base, index: 0, function: functionName(fd), funcDie: fd, physDie: chain[0], blocks: grp, inlined: i > 0, source });
      if (i > 0) {
        // the caller of an inlined function is at its call site
        const files = m.unitFiles(fd.cu);
        const cf = fd.num(DW.AT_call_file), cl = fd.num(DW.AT_call_line);
        source = cl !== undefined ? { file: cf !== undefined ? files[cf] ?? '??' : source?.file ?? '??', line: cl, column: fd.num(DW.AT_call_column) ?? 0 } : source;
      }
    }
  }

  // ------------------------------------------------------------------ variables

  /** Context to read values of a frame: its registers and memory. */
  valueContext(frame: Frame): ValueContext {
    return {
      mem: this.target.memory,
      reg: (n) => { const v = frame.regs.get(n); if (v === undefined) throw new OptimizedOut(); return v; },
      symbolize: (a, dataOnly) => this.symbolize(a, dataOnly),
      lookupType: (n) => this.lookupType(n, frame),
    };
  }

  /** `sym+off` for an address in a module's symbol table (as gdb's <...>). */
  symbolize(addr: bigint, dataOnly: boolean): string | undefined {
    const m = this.moduleFor(addr);
    if (!m) return undefined;
    const s = m.elfSymbolAt(addr);
    // gdb names code by the function's debug symbol (its full name, with parameters) unless
    // an ELF symbol starts between the function's entry and the address
    const fn = dataOnly ? undefined : m.functionAt(addr);
    if (fn) {
      const entry = ((fn.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? fn.ranges()[0]?.[0] ?? -1n) + m.bias;
      if (entry >= m.bias && (!s || entry >= s.addr)) {
        const name = (fn.cu.isCxx ? physname(fn) : undefined) ?? qualifiedName(fn);
        return addr > entry ? `${name}+${addr - entry}` : name;
      }
    }
    if (!s) return undefined;
    // function-local statics are `name.N` in the symbol table; gdb shows the variable's name
    const name = s.name.replace(/^([A-Za-z_]\w*)\.\d+$/, '$1');
    return s.offset ? `${name}+${s.offset}` : name;
  }

  /** Evaluates a DIE's location in a frame. */
  location(die: Die, frame: Frame | undefined, stack?: Frame[]): Loc {
    const a = die.attr(DW.AT_location);
    if (!a) return { kind: 'optimized' };
    return this.locationOf(a, die.cu, frame, stack);
  }

  locationOf(a: Attr, cu: CompUnit, frame: Frame | undefined, stack?: Frame[]): Loc {
    const die = { cu };
    const m = (cu.dwarf.owner as Module | undefined) ?? frame?.module;
    const bias = m?.bias ?? 0n;
    let expr: Buffer | undefined;
    if (a.cls === VClass.Block) expr = a.v as Buffer;
    else if (a.cls === VClass.SecOffset || a.cls === VClass.LocListX) {
      if (!frame) return { kind: 'optimized' };
      const fn = frame.physDie;
      expr = die.cu.locAt(a, frame.lookupPc - bias, fn && entryOf(fn));
    }
    if (!expr || !expr.length) return { kind: 'optimized' };
    const ctx: ExprContext = {
      reg: (n) => { const v = frame?.regs.get(n); if (v === undefined) throw new OptimizedOut(); return v; },
      mem: (ad, s) => this.target.memory.read(ad, s),
      bias,
      addrx: (i) => die.cu.addrx(i),
      frameBase: () => this.frameBase(frame!),
      cfa: () => { if (frame?.cfa === undefined) throw new OptimizedOut(); return frame.cfa; },
      entryValue: (sub) => entryOpValue(this, frame!, stack, sub),
      baseType: (off) => {
        const d = cu.dwarf.dieAt(cu.offset + off);
        return d?.tag === DW.TAG_base_type ? { enc: d.num(DW.AT_encoding) ?? 0, size: d.num(DW.AT_byte_size) ?? 8 } : undefined;
      },
      tls: (off) => this.tlsAddress(off, frame, m),
    };
    return evalExpr(expr, ctx);
  }

  /** Thread-local storage (x86-64 variant II): the executable's block sits just below fs_base. */
  private tlsAddress(off: bigint, frame: Frame | undefined, m: Module | undefined): bigint {
    const fsBase = frame?.regs.get(Reg.fs_base) ?? this.threadFsBase;
    if (fsBase === undefined) throw new Error('Cannot access thread-local variables: fs_base unknown');
    if (!m) throw new Error("Cannot access thread-local variables: unknown module");
    if (m !== this.exe) return this.dtvTlsAddress(off, fsBase, m);
    const tls = m.elf.segments.find((p) => p.type === 7 /* PT_TLS */);
    if (!tls) throw new Error('Cannot access thread-local variables: no PT_TLS segment');
    const a = BigInt(tlsAlign(m) || 1);
    const size = (BigInt(tls.memsz) + a - 1n) / a * a;
    return fsBase - size + off;
  }

  /**
   * TLS of a shared library through the thread's DTV, with the layout glibc publishes for
   * libthread_db (_thread_db_* descriptors in libc: {bits, count, offset}).
   */
  private dtvTlsAddress(off: bigint, fsBase: bigint, m: Module): bigint {
    if (m.linkMap === undefined) throw new Error(`Cannot access thread-local variables of ${m.name}: not in the loader's list`);
    const desc = (sym: string): { bytes: number; offset: bigint } => {
      for (const lib of this.modules) {
        const a = lib.elfSymbols(sym)[0];
        if (a === undefined) continue;
        const b = this.target.memory.read(a, 12);
        return { bytes: b.readUInt32LE(0) / 8, offset: BigInt(b.readUInt32LE(8)) };
      }
      throw new Error(`Cannot access thread-local variables: ${sym} not found (libc without libthread_db support)`);
    };
    const modidD = desc('_thread_db_link_map_l_tls_modid');
    const dtvpD = desc('_thread_db_pthread_dtvp');
    const valD = desc('_thread_db_dtv_t_pointer_val');
    const rdN = (a: bigint, n: number) => { const b = this.target.memory.read(a, n); let v = 0n; for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]); return v; };
    const modid = rdN(m.linkMap + modidD.offset, modidD.bytes);
    const dtv = rdN(fsBase + dtvpD.offset, 8);
    const block = rdN(dtv + modid * 16n + valD.offset, 8);
    if (block === 0n || block === 0xffffffffffffffffn) throw new Error(`Cannot access thread-local variables of ${m.name}: not allocated in this thread`);
    return block + off;
  }

  /** fs_base of the thread whose frames are evaluated without registers (globals). */
  threadFsBase?: bigint;

  private frameBase(frame: Frame): bigint {
    const fd = frame.physDie;
    if (!fd) throw new Error('no frame base');
    const fb = fd.lookup(DW.AT_frame_base);
    if (!fb) throw new Error('no frame base');
    const l = this.locationOf(fb.attr(DW.AT_frame_base)!, fb.cu, frame);
    if (l.kind === 'memory') return l.addr;
    if (l.kind === 'register') { const v = frame.regs.get(l.reg); if (v === undefined) throw new OptimizedOut(); return v; }
    if (l.kind === 'value') return l.value;
    throw new OptimizedOut();
  }

  /** A parameter's value at its function's entry (`x@entry`, see entryvalues.ts); throws NoEntryValue when unknown. */
  paramEntryValue(die: Die, frame: Frame, stack?: Frame[]): Value {
    return paramEntryValue(this, die, frame, stack);
  }

  /** `name@entry` in an expression. */
  lookupEntryValue(name: string, frame: Frame | undefined, stack?: Frame[]): Value {
    const d = frame?.funcDie ? this.collect(frame.funcDie, true).find((x) => x.name === name) : undefined;
    if (!frame || !d) throw new Error(`@entry can be used only for function parameters, not for "${name}"`);
    return this.paramEntryValue(d, frame, stack);
  }

  /** Value of a variable or parameter DIE in a frame. */
  variableValue(die: Die, frame: Frame | undefined, stack?: Frame[]): Value {
    const tdie = die.lookup(DW.AT_type)?.ref(DW.AT_type);
    const type = typeOf(tdie);
    const ctx = frame ? this.valueContext(frame) : { mem: this.target.memory, reg: () => { throw new OptimizedOut(); }, symbolize: (a: bigint, d: boolean) => this.symbolize(a, d), lookupType: (n: string) => this.lookupType(n) };
    let locDie: Die = die;
    if (!die.has(DW.AT_location) && !die.has(DW.AT_const_value)) {
      // a declaration: find the definition (DW_AT_specification pointing to it)
      const def = this.findDefinition(die);
      if (def) locDie = def;
      else if (die.flag(DW.AT_declaration) || die.parent?.tag === DW.TAG_compile_unit || die.parent?.tag === DW.TAG_namespace) {
        // gdb resolves an extern declaration through the symbol table (e.g. environ, an alias)
        const sym = die.lookup(DW.AT_linkage_name)?.str(DW.AT_linkage_name) ?? die.name;
        for (const m of sym ? this.modules : []) {
          const a = m.elfSymbols(sym!).find((x) => x !== m.bias);
          if (a !== undefined) return new Value(type, ctx, a);
        }
      }
    }
    const cv = locDie.attr(DW.AT_const_value);
    if (cv && !locDie.has(DW.AT_location)) {
      let b: Buffer;
      if (Buffer.isBuffer(cv.v)) b = Buffer.from(cv.v);
      else if (typeof cv.v === 'string') b = Buffer.from(cv.v + '\0', 'latin1');
      else { b = Buffer.alloc(16); b.writeBigInt64LE(BigInt.asIntN(64, BigInt(locDie.snum(DW.AT_const_value) ?? 0))); }
      return new Value(type, ctx, undefined, b);
    }
    let loc: Loc;
    try { loc = this.location(locDie, frame, stack); } catch (e) {
      if (e instanceof OptimizedOut) loc = { kind: 'optimized' };
      else {
        // an expression we cannot evaluate must not take the other variables down with it
        const v = new Value(type, ctx, undefined, undefined, 0, 0, true);
        v.error = (e as Error).message;
        return v;
      }
    }
    try {
      return Value.fromLoc(type, loc, ctx);
    } catch (e) {
      if (e instanceof OptimizedOut) return new Value(type, ctx, undefined, undefined, 0, 0, true);
      throw e;
    }
  }

  findDefinition(decl: Die): Die | undefined {
    const name = qualifiedName(decl);
    for (const m of this.modules) {
      for (const d of m.globalsNamed(name)) if (d !== decl && d.has(DW.AT_location)) return d;
    }
    return undefined;
  }

  /** Arguments of a frame in declaration order (gdb's `info args`). */
  args(frame: Frame, stack?: Frame[]): Variable[] {
    const fd = frame.funcDie;
    if (!fd) return [];
    return this.collect(fd, true).map((d) => ({ name: d.name ?? '', value: this.variableValue(d, frame, stack), die: d, isArg: true }));
  }

  /** Locals of a frame, innermost block first (gdb's `info locals`). */
  locals(frame: Frame, stack?: Frame[]): Variable[] {
    const out: Variable[] = [];
    for (let i = frame.blocks.length - 1; i >= 0; i--) {
      for (const d of this.collect(frame.blocks[i], false)) {
        // gdb leaves out constants kept as bytes (block or string DW_AT_const_value)
        const cv = d.lookup(DW.AT_const_value)?.attr(DW.AT_const_value);
        if (cv && (cv.cls === VClass.Block || cv.cls === VClass.String) && !d.has(DW.AT_location)) continue;
        out.push({ name: d.name ?? '', value: this.variableValue(d, frame, stack), die: d, isArg: false });
      }
    }
    return out;
  }

  /** Variables or parameters directly in a block; inherits abstract-origin children missing from a concrete instance. */
  private collect(block: Die, params: boolean): Die[] {
    const tag = params ? DW.TAG_formal_parameter : DW.TAG_variable;
    const out: Die[] = [];
    const origins = new Set<Die>();
    for (const ch of block.children) {
      if (ch.tag !== tag) continue;
      const o = ch.ref(DW.AT_abstract_origin);
      if (o) origins.add(o);
      if (!ch.name) continue;
      if (!params && ch.flag(DW.AT_declaration) && !ch.has(DW.AT_location)) { /* extern declaration in a block */ }
      out.push(ch);
    }
    for (const ch of block.children) {
      const o = ch.ref(DW.AT_abstract_origin);
      if (o && ch.tag === DW.TAG_lexical_block) origins.add(o);
    }
    const origin = block.ref(DW.AT_abstract_origin);
    if (origin) {
      // gdb inherits the abstract instance's children the concrete one does not mention;
      // an inherited lexical block without code ranges gives its variables to this block
      const inherit = (d: Die) => {
        for (const ch of d.children) {
          if (origins.has(ch)) continue;
          if (ch.tag === tag && ch.name) out.push(ch);
          else if (ch.tag === DW.TAG_lexical_block && !params) inherit(ch);
        }
      };
      inherit(origin);
    }
    return out;
  }

  /** Globals and file statics visible from a frame's unit (its own unit first). */
  globalsOf(frame: Frame): Variable[] {
    const fd = frame.physDie;
    if (!fd) return [];
    const out: Variable[] = [];
    for (const ch of fd.cu.unitDie.children) {
      if (ch.tag !== DW.TAG_variable || !ch.name) continue;
      if (!ch.has(DW.AT_location) && !ch.has(DW.AT_const_value) && !this.findDefinition(ch)) continue;
      out.push({ name: ch.name, value: this.variableValue(ch, frame), die: ch, isArg: false });
    }
    return out;
  }

  /** Finds a variable by name as seen from a frame: locals, args, then unit and program globals. */
  lookupVariable(name: string, frame: Frame | undefined, stack?: Frame[]): Value | undefined {
    if (frame) {
      for (let i = frame.blocks.length - 1; i >= 0; i--) {
        for (const d of this.collect(frame.blocks[i], false)) if (d.name === name) return this.variableValue(d, frame, stack);
      }
      if (frame.funcDie) for (const d of this.collect(frame.funcDie, true)) if (d.name === name) return this.variableValue(d, frame, stack);
      const cu = frame.physDie?.cu;
      if (cu) for (const ch of cu.unitDie.children) {
        if (ch.tag === DW.TAG_variable && ch.name === name && (ch.has(DW.AT_location) || ch.has(DW.AT_const_value))) return this.variableValue(ch, frame);
      }
    }
    for (const m of this.searchOrder(name, frame)) {
      const ds = m.globalsNamed(name);
      const d = ds.find((x) => x.has(DW.AT_location)) ?? ds.find((x) => x.has(DW.AT_const_value));
      if (d) return this.variableValue(d, frame);
      if (ds.length) { const v = this.variableValue(ds[0], frame); if (!v.optimized) return v; }
    }
    return undefined;
  }

  /**
   * Modules to search for a name: the frame's module and the executable always; other libraries
   * only when their symbol tables define the name (so a lookup does not index libc's debug
   * information for a name it does not have). `always` adds libraries regardless (types).
   */
  private searchOrder(name: string, frame: Frame | undefined, always = false): Module[] {
    const first = frame?.module ? [frame.module] : [];
    if (!first.includes(this.exe)) first.push(this.exe);
    const rest = this.modules.filter((m) => !first.includes(m) && (always || m.names.accel !== undefined || m.definesName(name)));
    return [...first, ...rest];
  }

  /** A function named in an expression, as a value of function type at its entry address. */
  lookupFunctionValue(name: string, frame: Frame | undefined, ctx: ValueContext): Value | undefined {
    for (const m of this.searchOrder(name, frame)) {
      for (const d of m.functionsNamed(name)) {
        const r = d.ranges();
        const lo = (d.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? r[0]?.[0];
        if (lo === undefined) continue;
        return new Value(typeOf(d.ref(DW.AT_specification) ?? d.ref(DW.AT_abstract_origin) ?? d), ctx, lo + m.bias);
      }
    }
    return undefined;
  }

  /** An enumerator named in an expression. */
  lookupEnumerator(name: string, frame: Frame | undefined, ctx: ValueContext): Value | undefined {
    for (const m of this.searchOrder(name, frame)) {
      for (const e of m.enumeratorsNamed(name)) {
        const et = typeOf(e.parent);
        const s = strip(et);
        if (s.k !== 'enum') continue;
        const idx = e.parent!.children.filter((c) => c.tag === DW.TAG_enumerator).indexOf(e);
        const v = s.values[idx];
        if (!v) continue;
        const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, v[1]));
        return new Value(et, ctx, undefined, b.subarray(0, s.size));
      }
    }
    return undefined;
  }

  /** Value of a static data member (from its definition). */
  staticMember(m: Member): Value | undefined {
    const def = this.findDefinition(m.die);
    return def ? this.variableValue(def, undefined) : undefined;
  }

  /**
   * Evaluates a watch / hover / condition expression in a frame (undefined: globals only).
   * Throws ExpressionError with a message saying what is wrong and the column where.
   */
  evaluate(expression: string, frame?: Frame, stack?: Frame[]): Value {
    return new Evaluator(this, frame, stack).evaluate(expression);
  }

  /** A named type (struct/class/union/enum/typedef/base) as seen from a frame. */
  lookupType(name: string, frame?: Frame): Type | undefined {
    const n = name.replace(/^(struct|union|enum|class)\s+/, '');
    const mods = frame?.module ? [frame.module, ...this.modules] : this.modules;
    for (const m of mods) {
      const ds = m.typesNamed(n);
      const want = /^struct\s/.test(name) ? [DW.TAG_structure_type, DW.TAG_class_type] : /^union\s/.test(name) ? [DW.TAG_union_type] : /^enum\s/.test(name) ? [DW.TAG_enumeration_type] : undefined;
      const d = ds.find((x) => (!want || want.includes(x.tag as never)) && !x.flag(DW.AT_declaration)) ?? ds.find((x) => !want || want.includes(x.tag as never));
      if (d) return typeOf(d);
    }
    return undefined;
  }

  /** Arguments as gdb's `bt` shows them (`print frame-arguments scalars`: aggregates as `...`). */
  frameArgs(frame: Frame, stack?: Frame[]): string {
    if (frame.signalFrame) return '';
    const text = (v: Value) => {
      let t = v.type;
      for (;;) { const s = strip(t); if (s.k === 'ref') t = s.to; else break; }
      const k = strip(t).k;
      const scalar = k !== 'struct' && k !== 'array';
      return scalar ? this.format(v) : safeSummary(v) ?? '...';
    };
    return this.args(frame, stack).map((a) => {
      const val = text(a.value);
      // `print entry-values default` (gdb's read_frame_arg): the entry value too when known,
      // `x=x@entry=V` when it equals the current value (a reference: both the address and
      // what it points to); silent when gdb finds none
      let entry: Value;
      try { entry = this.paramEntryValue(a.die, frame, stack); } catch (e) {
        if (e instanceof OptimizedOut) return `${a.name}=${val}`;
        return `${a.name}=${val}, ${a.name}@entry=<error: ${(e as Error).message}>`;
      }
      if (entry.optimized) return `${a.name}=${val}`;
      const same = (x: Value, y: Value) => { try { return x.bytes().equals(y.bytes()); } catch { return false; } };
      let equal = same(a.value, entry);
      if (equal && strip(a.value.type).k === 'ref') {
        try { equal = same(a.value.deref(), entry.deref()); } catch (e) { equal = e instanceof NoEntryValue; }
      }
      return equal ? `${a.name}=${a.name}@entry=${val}` : `${a.name}=${val}, ${a.name}@entry=${text(entry)}`;
    }).join(', ');
  }

  /** A value formatted the way gdb's `print` (top) or `info locals` shows it. */
  format(v: Value, top = false, hex = false): string {
    return formatValue(v, { top, hex });
  }
}

/** Declarations and static members are resolved by the Program that owns the DIE's module
 * (several Programs may live side by side: sessions, images). */
let resolversInstalled = false;
function installResolvers(): void {
  if (resolversInstalled) return;
  resolversInstalled = true;
  const programOf = (d: Die) => (d.cu.dwarf.owner as Module | undefined)?.program as Program | undefined;
  setDeclarationResolver((d) => programOf(d)?.resolveDeclaration(d));
  setStaticMemberResolver((m) => {
    const p = programOf(m.die);
    const def = p?.findDefinition(m.die);
    if (def && p) return p.variableValue(def, undefined);
    // a constant static member (static constexpr) has its value on the declaration
    return p && m.die.has(DW.AT_const_value) ? p.variableValue(m.die, undefined) : undefined;
  });
}

function tlsAlign(m: Module): number {
  // p_align of PT_TLS (not kept in Segment): read the program header again
  const h = m.elf.bytes(0, 64);
  const phoff = Number(h.readBigUInt64LE(32)), phentsize = h.readUInt16LE(54), phnum = h.readUInt16LE(56);
  const d = m.elf.bytes(phoff, phnum * phentsize);
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (d.readUInt32LE(o) === 7) return Number(d.readBigUInt64LE(o + 48));
  }
  return 1;
}

function safeSummary(v: Value): string | undefined {
  try { return summaryForFrameArgs(v); } catch { return undefined; }
}

export { inRanges, fileMatches };
