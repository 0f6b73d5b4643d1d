// Call frame information: .eh_frame and .debug_frame parsing and rule execution.
import { Cursor } from './reader';

export type RegRule =
  | { k: 'undefined' } | { k: 'same' }
  | { k: 'offset'; n: bigint } | { k: 'val_offset'; n: bigint }
  | { k: 'register'; r: number }
  | { k: 'expr'; e: Buffer } | { k: 'val_expr'; e: Buffer };

export interface FrameRules {
  cfa: { reg: number; off: bigint } | { expr: Buffer };
  regs: Map<number, RegRule>;
  retReg: number;
  signalFrame: boolean;
}

interface Cie {
  caf: number; daf: number; retReg: number; fdeEnc: number; lsdaEnc: number;
  hasAug: boolean; signal: boolean; initial: Buffer; addrSize: number;
}
interface Fde { lo: bigint; hi: bigint; cie: Cie; insns: Buffer }

export class CfiTable {
  private fdes: Fde[] = [];
  constructor(buf: Buffer | null, sectionAddr: bigint, isEh: boolean) {
    if (buf) this.parse(buf, sectionAddr, isEh);
    this.fdes.sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  }

  get size(): number { return this.fdes.length; }

  private parse(buf: Buffer, secAddr: bigint, isEh: boolean): void {
    const cies = new Map<number, Cie>();
    const readEnc = (c: Cursor, enc: number): bigint => {
      if (enc === 0xff) return 0n;
      const pcAt = secAddr + BigInt(c.pos);
      let v: bigint;
      switch (enc & 0x0f) {
        case 0x00: v = c.u64(); break;
        case 0x01: v = c.ulebBig(); break;
        case 0x02: v = BigInt(c.u16()); break;
        case 0x03: v = BigInt(c.u32()); break;
        case 0x04: v = c.u64(); break;
        case 0x09: v = c.slebBig(); break;
        case 0x0a: v = BigInt(c.i16()); break;
        case 0x0b: v = BigInt(c.i32()); break;
        case 0x0c: v = c.i64(); break;
        default: throw new Error(`bad CFI: pointer encoding 0x${enc.toString(16)}`);
      }
      if ((enc & 0x70) === 0x10) v += pcAt;
      return BigInt.asUintN(64, v);
    };
    const parseCie = (off: number): Cie => {
      const cached = cies.get(off);
      if (cached) return cached;
      const c = new Cursor(buf, off);
      let len = c.u32(); let os = 4;
      if (len === 0xffffffff) { len = c.u64n(); os = 8; }
      const end = c.pos + len;
      c.skip(os); // id
      const version = c.u8();
      const aug = c.cstr();
      let addrSize = 8;
      if (version >= 4) { addrSize = c.u8(); c.u8(); }
      if (aug.includes('eh')) c.skip(8);
      const caf = c.uleb();
      const daf = c.sleb();
      const retReg = version === 1 ? c.u8() : c.uleb();
      const cie: Cie = { caf, daf, retReg, fdeEnc: 0, lsdaEnc: 0xff, hasAug: aug.startsWith('z'), signal: false, initial: Buffer.alloc(0), addrSize };
      if (aug.startsWith('z')) {
        const alen = c.uleb();
        const aend = c.pos + alen;
        for (const ch of aug.slice(1)) {
          if (ch === 'R') cie.fdeEnc = c.u8();
          else if (ch === 'L') cie.lsdaEnc = c.u8();
          else if (ch === 'P') { const e = c.u8(); readEnc(c, e & 0x7f); }
          else if (ch === 'S') cie.signal = true;
        }
        c.pos = aend;
      }
      cie.initial = buf.subarray(c.pos, end);
      cies.set(off, cie);
      return cie;
    };
    let off = 0;
    while (off + 4 <= buf.length) {
      const c = new Cursor(buf, off);
      let len = c.u32(); let os = 4;
      if (len === 0) { off += 4; if (isEh) break; else continue; }
      if (len === 0xffffffff) { len = c.u64n(); os = 8; }
      const end = c.pos + len;
      const idPos = c.pos;
      const id = os === 8 ? c.u64n() : c.u32();
      const isCie = isEh ? id === 0 : (os === 4 ? id === 0xffffffff : id >= 2 ** 63);
      if (!isCie) {
        try {
          const cieOff = isEh ? idPos - id : id;
          const cie = parseCie(cieOff);
          const enc = isEh ? cie.fdeEnc : 0;
          const lo = isEh ? readEnc(c, enc) : c.u64();
          const range = isEh ? readEnc(c, enc & 0x0f) : c.u64();
          if (cie.hasAug) { const al = c.uleb(); c.skip(al); }
          if (lo !== 0n || range !== 0n) this.fdes.push({ lo, hi: lo + range, cie, insns: buf.subarray(c.pos, end) });
        } catch { /* skip a broken entry */ }
      }
      off = end;
    }
  }

  find(pc: bigint): Fde | undefined {
    const f = this.fdes;
    let lo = 0, hi = f.length - 1, best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (f[mid].lo <= pc) { best = mid; lo = mid + 1; } else hi = mid - 1;
    }
    for (let i = best; i >= 0 && i > best - 4; i--) if (pc >= f[i].lo && pc < f[i].hi) return f[i];
    return undefined;
  }

  /** Rules in effect at pc (link-time address), or undefined when no FDE covers it. */
  rulesAt(pc: bigint): FrameRules | undefined {
    const fde = this.find(pc);
    if (!fde) return undefined;
    const cie = fde.cie;
    const state: FrameRules = { cfa: { reg: 7, off: 8n }, regs: new Map(), retReg: cie.retReg, signalFrame: cie.signal };
    run(cie.initial, cie, state, fde.lo, undefined, undefined);
    const initial = new Map(state.regs);
    run(fde.insns, cie, state, fde.lo, pc, initial);
    return state;
  }
}

function run(insns: Buffer, cie: Cie, st: FrameRules, start: bigint, pc: bigint | undefined, initial: Map<number, RegRule> | undefined): void {
  const c = new Cursor(insns);
  let loc = start;
  const stack: { cfa: FrameRules['cfa']; regs: Map<number, RegRule> }[] = [];
  const caf = BigInt(cie.caf), daf = BigInt(cie.daf);
  const restore = (r: number) => {
    const i = initial?.get(r);
    if (i) st.regs.set(r, i); else st.regs.delete(r);
  };
  const advance = (d: bigint) => { loc += d; return pc !== undefined && loc > pc; };
  while (c.pos < c.end) {
    const b = c.u8();
    const hi2 = b & 0xc0, low = b & 0x3f;
    if (hi2 === 0x40) { if (advance(BigInt(low) * caf)) return; continue; }
    if (hi2 === 0x80) { st.regs.set(low, { k: 'offset', n: BigInt(c.uleb()) * daf }); continue; }
    if (hi2 === 0xc0) { restore(low); continue; }
    switch (b) {
      case 0x00: break;
      case 0x01: { const a = c.u64(); loc = a; if (pc !== undefined && loc > pc) return; break; }
      case 0x02: if (advance(BigInt(c.u8()) * caf)) return; break;
      case 0x03: if (advance(BigInt(c.u16()) * caf)) return; break;
      case 0x04: if (advance(BigInt(c.u32()) * caf)) return; break;
      case 0x05: { const r = c.uleb(); st.regs.set(r, { k: 'offset', n: BigInt(c.uleb()) * daf }); break; }
      case 0x06: restore(c.uleb()); break;
      case 0x07: st.regs.set(c.uleb(), { k: 'undefined' }); break;
      case 0x08: st.regs.set(c.uleb(), { k: 'same' }); break;
      case 0x09: { const r = c.uleb(); st.regs.set(r, { k: 'register', r: c.uleb() }); break; }
      case 0x0a: stack.push({ cfa: { ...st.cfa }, regs: new Map(st.regs) }); break;
      case 0x0b: { const s = stack.pop(); if (s) { st.cfa = s.cfa; st.regs = s.regs; } break; }
      case 0x0c: { const r = c.uleb(); st.cfa = { reg: r, off: BigInt(c.uleb()) }; break; }
      case 0x0d: { const r = c.uleb(); st.cfa = { reg: r, off: 'off' in st.cfa ? st.cfa.off : 0n }; break; }
      case 0x0e: { const o = BigInt(c.uleb()); st.cfa = { reg: 'reg' in st.cfa ? st.cfa.reg : 7, off: o }; break; }
      case 0x0f: { const n = c.uleb(); st.cfa = { expr: c.bytes(n) }; break; }
      case 0x10: { const r = c.uleb(); const n = c.uleb(); st.regs.set(r, { k: 'expr', e: c.bytes(n) }); break; }
      case 0x11: { const r = c.uleb(); st.regs.set(r, { k: 'offset', n: c.slebBig() * daf }); break; }
      case 0x12: { const r = c.uleb(); st.cfa = { reg: r, off: c.slebBig() * daf }; break; }
      case 0x13: { const o = c.slebBig() * daf; st.cfa = { reg: 'reg' in st.cfa ? st.cfa.reg : 7, off: o }; break; }
      case 0x14: { const r = c.uleb(); st.regs.set(r, { k: 'val_offset', n: BigInt(c.uleb()) * daf }); break; }
      case 0x15: { const r = c.uleb(); st.regs.set(r, { k: 'val_offset', n: c.slebBig() * daf }); break; }
      case 0x16: { const r = c.uleb(); const n = c.uleb(); st.regs.set(r, { k: 'val_expr', e: c.bytes(n) }); break; }
      case 0x2e: c.uleb(); break; // GNU_args_size
      case 0x2f: { const r = c.uleb(); st.regs.set(r, { k: 'offset', n: -BigInt(c.uleb()) * daf }); break; }
      default: throw new Error(`bad CFI: opcode 0x${b.toString(16)}`);
    }
  }
}
