// Entry values, found as gdb finds them: a parameter's value when its function was entered
// (`x@entry`, DW_OP_entry_value) is the caller's DW_TAG_call_site_parameter for the register
// or stack slot that held it, evaluated in the caller's frame. gdb's rules are followed even
// where they are odd, since gdb is what the answers are checked against:
// - the parameter's location is taken at the function's entry (the physical function's, for
//   inlined code too) and must be a single register or DW_OP_fbreg;
// - the call site must be the one the caller returns to, must call this very function, and
//   the function must not be able to reach itself through tail calls;
// - the call site's value is evaluated in the frame gdb calls the frame's caller
//   (for an inlined frame: the frame it is inlined into).
import { Attr, Die, DW, VClass } from './dwarf';
import { Loc } from './dwexpr';
import { Cursor } from './reader';
import { callDataValue, callSiteAt, callSites, callValue, targetDie, targetExpr } from './callsites';
import type { Module } from './module';
import type { Frame, Program } from './program';
import { strip, typeOf } from './types';
import { OptimizedOut, Value } from './values';

/** gdb's NO_ENTRY_VALUE_ERROR: silent in `bt`, `<optimized out>` in a location, an error in `print x@entry`. */
export class NoEntryValue extends OptimizedOut {
  constructor(reason: string) { super(); this.message = reason; }
}

type Slot = { reg: number } | { fbOffset: bigint };

// ---- expression shapes gdb accepts (dwarf_block_to_dwarf_reg and friends)

/** DW_OP_regN, DW_OP_regx N or DW_OP_regval_type N T alone (xmm registers come typed). */
function singleReg(e: Buffer): number | undefined {
  if (e.length === 1 && e[0] >= 0x50 && e[0] <= 0x6f) return e[0] - 0x50;
  if (e.length >= 2 && (e[0] === 0x90 || e[0] === 0xa5 || e[0] === 0xf5)) {
    const c = new Cursor(e, 1);
    const r = c.uleb();
    if (e[0] !== 0x90) c.uleb();
    if (c.pos === e.length) return r;
  }
  return undefined;
}

/** DW_OP_bregN / DW_OP_bregx N with its offset, and where the operation ends. */
function breg(e: Buffer): { reg: number; off: bigint; next: number } | undefined {
  const c = new Cursor(e, 1);
  if (e.length >= 2 && e[0] >= 0x70 && e[0] <= 0x8f) { const off = c.slebBig(); return { reg: e[0] - 0x70, off, next: c.pos }; }
  if (e.length >= 3 && e[0] === 0x92) { const reg = c.uleb(); const off = c.slebBig(); return { reg, off, next: c.pos }; }
  return undefined;
}

/** DW_OP_fbreg(off) alone: a stack slot relative to the frame base. */
function fbOffset(e: Buffer): bigint | undefined {
  if (e.length < 2 || e[0] !== 0x91) return undefined;
  const c = new Cursor(e, 1);
  const off = c.slebBig();
  return c.pos === e.length ? off : undefined;
}

/** DW_OP_breg7(off) alone: the caller's outgoing argument slot at the call. */
function spOffset(e: Buffer): bigint | undefined {
  const b = breg(e);
  return b && b.reg === 7 && b.next === e.length ? b.off : undefined;
}

/** DW_OP_bregN(0) DW_OP_deref[_size]: what the register pointed to (DW_AT_call_data_value). */
function regDeref(e: Buffer): number | undefined {
  const b = breg(e);
  if (!b || b.off !== 0n) return undefined;
  if (b.next === e.length - 1 && e[b.next] === 0x06) return b.reg;
  if (b.next === e.length - 2 && e[b.next] === 0x94) return b.reg;
  return undefined;
}

// ---- the caller's call site

function sameDie(a: Die, b: Die): boolean { return a.cu === b.cu && a.offset === b.offset; }

/** Link-time start of a function as gdb's block entry: low_pc, else its first range. */
export function entryOf(fn: Die): bigint | undefined {
  return (fn.attr(DW.AT_low_pc)?.v as bigint | undefined) ?? fn.ranges()[0]?.[0];
}

/** A frame's position in its stack (frames may be copies: then by their index). */
function indexIn(stack: Frame[], frame: Frame): number {
  const i = stack.indexOf(frame);
  return i >= 0 ? i : stack[frame.index]?.pc === frame.pc ? frame.index : -1;
}

/** The physical frame of a frame: itself, or the function an inlined frame is part of. */
function physicalFrame(frame: Frame, stack: Frame[]): Frame {
  let i = indexIn(stack, frame);
  if (i < 0) return frame;
  while (stack[i].inlined && !stack[i].tailCall && i + 1 < stack.length) i++;
  return stack[i];
}

/** Runtime entry address of a frame's function (gdb's get_frame_func). */
function frameFunc(frame: Frame): bigint | undefined {
  const fn = frame.physDie, m = frame.module;
  const lo = fn ? entryOf(fn) : undefined;
  return lo === undefined || !m ? undefined : lo + m.bias;
}

/**
 * Runtime addresses a call site may call, as gdb resolves its target: an indirect call's
 * expression needs the caller's frame; a declaration is found by its linkage name in the
 * symbol tables; a definition by its code; an abstract instance (no code) resolves to nothing.
 */
function siteTargets(p: Program, site: Die, m: Module, callerFrame: Frame | undefined): bigint[] {
  const expr = targetExpr(site);
  if (expr) {
    if (!callerFrame) throw new NoEntryValue('DW_AT_call_target DWARF block resolving requires known frame which is currently not an unwound one');
    const l = p.locationOf({ ...expr, at: DW.AT_location }, site.cu, callerFrame);
    return [locValue(l, callerFrame)];
  }
  const t = targetDie(site);
  if (t) {
    if (t.flag(DW.AT_declaration) && !t.has(DW.AT_specification)) {
      const name = t.str(DW.AT_linkage_name) ?? t.str(DW.AT_MIPS_linkage_name) ?? t.name;
      for (const mod of name ? p.modules : []) {
        // undefined symbols (value 0) are not where the function is
        const a = mod.elfSymbols(name!, true).filter((x) => x !== mod.bias);
        if (a.length) return [a[0]];
      }
      throw new NoEntryValue(`Cannot find function "${name}" for a call site target`);
    }
    if (t.has(DW.AT_ranges)) return t.ranges().map(([lo]) => lo + m.bias);
    const lo = t.attr(DW.AT_low_pc)?.v;
    if (typeof lo === 'bigint') return [lo + m.bias];
  }
  throw new NoEntryValue('DW_AT_call_target is not specified at DW_TAG_call_site');
}

// verdicts of verifyNoSelfTailCall (a bt asks for every parameter of every frame); keyed by
// the module list's length too, since a library loaded later may resolve a target
const tailCallVerdicts = new WeakMap<Program, Map<string, string | null>>();

/** gdb trusts no entry value of a function that may tail-call itself (directly or in a chain). */
function verifyNoSelfTailCall(p: Program, m: Module, fnEntry: bigint): void {
  let cache = tailCallVerdicts.get(p);
  if (!cache) tailCallVerdicts.set(p, cache = new Map());
  const key = `${m.path}:${fnEntry}:${p.modules.length}`;
  let verdict = cache.get(key);
  if (verdict === undefined) {
    try { searchSelfTailCall(p, m, fnEntry); verdict = null; } catch (e) {
      if (!(e instanceof NoEntryValue)) throw e;
      verdict = e.message;
    }
    cache.set(key, verdict);
  }
  if (verdict !== null) throw new NoEntryValue(verdict);
}

function searchSelfTailCall(p: Program, m: Module, fnEntry: bigint): void {
  const todo = [fnEntry];
  const seen = new Set<bigint>([fnEntry]);
  while (todo.length) {
    const addr = todo.pop()!;
    // a tail call may leave the module (a library function found by its name)
    const mod = p.moduleFor(addr) ?? m;
    const fn = mod.functionAt(addr);
    if (!fn || (entryOf(fn) ?? -1n) + mod.bias !== addr) throw new NoEntryValue(`DW_TAG_call_site resolving failed to find function name for address 0x${addr.toString(16)}`);
    for (const site of callSites(fn, true)) {
      for (const t of siteTargets(p, site, mod, undefined)) {
        if (t === fnEntry) throw new NoEntryValue(`DW_OP_entry_value resolving has found function "${fn.name}" at 0x${fnEntry.toString(16)} can call itself via tail calls`);
        if (!seen.has(t)) { seen.add(t); todo.push(t); }
      }
    }
  }
}

/**
 * The caller's DW_TAG_call_site_parameter for a slot of the frame's function, and the frame
 * its values are evaluated in (gdb's dwarf_expr_reg_to_entry_parameter).
 */
function entryParameter(p: Program, frame: Frame, stack: Frame[], slot: Slot): { param: Die; evalFrame: Frame } {
  const phys = physicalFrame(frame, stack);
  const fnEntry = frameFunc(phys);
  // gdb does not unwind past main: main has no caller
  const at = indexIn(stack, phys);
  const caller = at < 0 || (phys.function === 'main' && !phys.tailCall) ? undefined : stack[at + 1];
  if (!caller || fnEntry === undefined) throw new NoEntryValue('DW_OP_entry_value resolving requires caller of the function');
  const cm = caller.module;
  const site = cm && caller.physDie && !caller.signalFrame ? callSiteAt(caller.physDie, caller.pc - cm.bias) : undefined;
  if (!site || !cm) throw new NoEntryValue(`DW_OP_entry_value resolving cannot find DW_TAG_call_site 0x${caller.pc.toString(16)}`);
  if (!siteTargets(p, site, cm, caller).includes(fnEntry)) throw new NoEntryValue('DW_OP_entry_value resolving expects another callee');
  verifyNoSelfTailCall(p, phys.module!, fnEntry);
  for (const param of site.children) {
    const loc = param.attr(DW.AT_location);
    if (!loc || !Buffer.isBuffer(loc.v)) continue;
    if ('reg' in slot ? singleReg(loc.v) === slot.reg : spOffset(loc.v) === slot.fbOffset) {
      const fi = indexIn(stack, frame);
      const evalFrame = (fi >= 0 ? stack[fi + 1] : undefined) ?? caller;
      return { param, evalFrame };
    }
  }
  const s = cm.elfSymbolAt(caller.pc);
  throw new NoEntryValue(`Cannot find matching parameter at DW_TAG_call_site 0x${caller.pc.toString(16)} at ${s?.name ?? '???'}`);
}

function locValue(l: Loc, frame: Frame): bigint {
  // a call site's values are DWARF expressions (gdb appends DW_OP_stack_value): an address
  // left on the stack is the value itself
  if (l.kind === 'value') return l.value;
  if (l.kind === 'memory') return l.addr;
  if (l.kind === 'register') { const v = frame.regs.get(l.reg); if (v !== undefined) return v; }
  throw new NoEntryValue('call site value unavailable');
}

function evalSiteValue(p: Program, a: Attr | undefined, param: Die, evalFrame: Frame, stack: Frame[], what: string): bigint {
  if (!a || a.cls !== VClass.Block) throw new NoEntryValue(`Cannot resolve ${what}`);
  return locValue(p.locationOf(a, param.cu, evalFrame, stack), evalFrame);
}

/** DW_OP_entry_value(sub) inside a location: the register's value at entry, or what it pointed to. */
export function entryOpValue(p: Program, frame: Frame, stack: Frame[] | undefined, sub: Buffer): bigint {
  if (!stack) throw new NoEntryValue('DW_OP_entry_value needs the stack');
  const reg = singleReg(sub);
  if (reg !== undefined) {
    const { param, evalFrame } = entryParameter(p, frame, stack, { reg });
    return evalSiteValue(p, callValue(param), param, evalFrame, stack, 'DW_AT_call_value');
  }
  const dreg = regDeref(sub);
  if (dreg !== undefined) {
    const { param, evalFrame } = entryParameter(p, frame, stack, { reg: dreg });
    return evalSiteValue(p, callDataValue(param), param, evalFrame, stack, 'DW_AT_call_data_value');
  }
  throw new Error('DWARF-2 expression error: DW_OP_entry_value is supported only for single DW_OP_reg* or for DW_OP_breg*(0)+DW_OP_deref*');
}

/**
 * A parameter's value at its function's entry (gdb's read_variable_at_entry): an optimized-out
 * value when its location list says nothing at the entry; throws NoEntryValue when gdb finds
 * none, other errors as gdb shows them.
 */
export function paramEntryValue(p: Program, die: Die, frame: Frame, stack: Frame[] | undefined): Value {
  const a = die.attr(DW.AT_location);
  const type = typeOf(die.lookup(DW.AT_type)?.ref(DW.AT_type));
  const ctx = p.valueContext(frame);
  if (!a) throw new NoEntryValue(`Symbol "${die.name}" does not have any specific entry value`);
  if (!stack) throw new NoEntryValue('DW_OP_entry_value needs the stack');
  let expr: Buffer | undefined;
  if (a.cls === VClass.Block) expr = a.v as Buffer;
  else if (a.cls === VClass.SecOffset || a.cls === VClass.LocListX) {
    const phys = physicalFrame(frame, stack);
    const pc = phys.physDie ? entryOf(phys.physDie) : undefined;
    // gdb looks the location up at the function's entry, where it is still the incoming one
    if (pc !== undefined) expr = die.cu.locAt(a, pc, pc);
    if (!expr) return new Value(type, ctx, undefined, undefined, 0, 0, true);
  }
  if (!expr) throw new NoEntryValue('no location');
  const reg = singleReg(expr), fb = fbOffset(expr);
  if (reg === undefined && fb === undefined) throw new NoEntryValue('DWARF-2 expression error: DW_OP_entry_value is supported only for single DW_OP_reg* or for DW_OP_fbreg(*)');
  const { param, evalFrame } = entryParameter(p, frame, stack, reg !== undefined ? { reg } : { fbOffset: fb! });
  const v = evalSiteValue(p, callValue(param), param, evalFrame, stack, 'DW_AT_call_value');
  const outer = Value.fromLoc(type, { kind: 'value', value: v }, ctx);
  const t = strip(type);
  if (t.k !== 'ref') return outer;
  // a reference's entry value refers to what it pointed to at the call, not to memory now
  const data = evalSiteValue(p, callDataValue(param), param, evalFrame, stack, 'DW_AT_call_data_value');
  const bytes = Value.fromLoc(t.to, { kind: 'value', value: data }, ctx).bytes();
  // still at the reference's address: `&r@entry` is that address, as in gdb
  outer.referent = new Value(t.to, ctx, BigInt.asUintN(64, v), bytes);
  return outer;
}
