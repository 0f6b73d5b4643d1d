// C/C++ expressions for watch, hover and breakpoint conditions: variables, members (. ->),
// indexing, dereference, address-of, casts to named types, arithmetic, comparisons, logic.
// Errors say what is wrong and where (column in the expression).
import { DW } from './dwarf';
import type { Frame, Program } from './program';
import { Reg } from './target';
import { isCharType, isSigned, Member, sizeOf, strip, StructType, Type, typeName } from './types';
import { alongPath, field, memberPath, OptimizedOut, Value, ValueContext } from './values';

export class ExpressionError extends Error {
  constructor(message: string, readonly column?: number) { super(message); }
}

type Tok = { k: 'num' | 'float' | 'id' | 'str' | 'char' | 'op' | 'reg' | 'eof'; s: string; pos: number; v?: bigint | number };

const OPS = ['@', '->', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '::', '++', '--', '+', '-', '*', '/', '%', '<', '>', '&', '|', '^', '!', '~', '(', ')', '[', ']', '.', '?', ':', ',', '='];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(src[i + 1] ?? ''))) {
      const m = /^(0[xX][0-9a-fA-F]+|[0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+\.(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|[0-9]+)([uUlLfF]*)/.exec(src.slice(i))!;
      const body = m[1];
      i += m[0].length;
      if (/^0[xX]/.test(body) || /^[0-9]+$/.test(body)) {
        const v = /^0[0-7]+$/.test(body) ? BigInt('0o' + body.slice(1)) : BigInt(body);
        out.push({ k: 'num', s: m[0], pos: start, v });
      } else out.push({ k: 'float', s: m[0], pos: start, v: Number(body) });
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_]\w*/.exec(src.slice(i))!;
      i += m[0].length;
      // gdb's `param@entry`: the parameter's value at the function's entry
      const entry = /^\s*@entry(?!\w)/.exec(src.slice(i));
      if (entry) { i += entry[0].length; out.push({ k: 'id', s: `${m[0]}@entry`, pos: start }); continue; }
      out.push({ k: 'id', s: m[0], pos: start });
      continue;
    }
    if (c === '$') {
      const m = /^\$\w*/.exec(src.slice(i))!;
      i += m[0].length;
      out.push({ k: 'reg', s: m[0], pos: start });
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1; let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') {
          const e = src[j + 1];
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', v: '\v', e: '\x1b' };
          if (/[0-7]/.test(e)) { const m = /^[0-7]{1,3}/.exec(src.slice(j + 1))!; s += String.fromCharCode(parseInt(m[0], 8)); j += 1 + m[0].length; continue; }
          s += map[e] ?? e; j += 2; continue;
        }
        s += src[j++];
      }
      if (j >= src.length) throw new ExpressionError(c === '"' ? 'Unterminated string in expression.' : 'Unmatched single quote.', start);
      i = j + 1;
      out.push({ k: c === '"' ? 'str' : 'char', s, pos: start });
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExpressionError(`Invalid character '${c}' in expression.`, start);
    i += op.length;
    out.push({ k: 'op', s: op, pos: start });
  }
  out.push({ k: 'eof', s: '', pos: src.length });
  return out;
}

// AST
type Node =
  | { t: 'num'; v: bigint; unsigned: boolean; long: boolean; pos: number }
  | { t: 'float'; v: number; single: boolean; pos: number }
  | { t: 'char'; v: number; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'id'; name: string; pos: number }
  | { t: 'reg'; name: string; pos: number }
  | { t: 'un'; op: string; e: Node; pos: number }
  | { t: 'bin'; op: string; l: Node; r: Node; pos: number }
  | { t: 'cond'; c: Node; a: Node; b: Node; pos: number }
  | { t: 'index'; e: Node; i: Node; pos: number }
  | { t: 'member'; e: Node; name: string; arrow: boolean; pos: number }
  | { t: 'cast'; type: Type; e: Node; pos: number }
  | { t: 'sizeof'; type?: Type; e?: Node; pos: number }
  | { t: 'call'; f: Node; pos: number };

const TYPE_WORDS = new Set(['unsigned', 'signed', 'int', 'char', 'short', 'long', 'float', 'double', 'void', '_Bool', 'bool', 'struct', 'union', 'enum', 'class', 'const', 'volatile', 'wchar_t', 'char16_t', 'char32_t']);

const BIN_PREC: Record<string, number> = {
  '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6, '<': 7, '>': 7, '<=': 7, '>=': 7,
  '<<': 8, '>>': 8, '@': 9, '+': 10, '-': 10, '*': 11, '/': 11, '%': 11,
};

class Parser {
  i = 0;
  constructor(readonly toks: Tok[], readonly src: string, readonly typeLookup: (name: string) => Type | undefined) {}
  get cur(): Tok { return this.toks[this.i]; }
  peek(n = 1): Tok { return this.toks[Math.min(this.i + n, this.toks.length - 1)]; }
  isOp(s: string): boolean { return this.cur.k === 'op' && this.cur.s === s; }
  expectOp(s: string): void {
    if (!this.isOp(s)) this.syntax();
    this.i++;
  }
  syntax(): never {
    const t = this.cur;
    if (t.k === 'eof') throw new ExpressionError('A syntax error in expression, near `\'.', t.pos);
    throw new ExpressionError(`A syntax error in expression, near \`${this.src.slice(t.pos)}'.`, t.pos);
  }

  parse(): Node {
    const e = this.expr();
    if (this.cur.k !== 'eof') this.syntax();
    return e;
  }
  expr(): Node {
    const e = this.cond();
    if (this.isOp('=')) throw new ExpressionError('Assignment is not supported in watch, hover or condition expressions.', this.cur.pos);
    if (this.isOp(',')) { this.i++; return this.expr(); }
    return e;
  }
  cond(): Node {
    const c = this.binary(1);
    if (this.isOp('?')) {
      const pos = this.cur.pos; this.i++;
      const a = this.expr(); this.expectOp(':');
      const b = this.cond();
      return { t: 'cond', c, a, b, pos };
    }
    return c;
  }
  binary(minPrec: number): Node {
    let l = this.unary();
    for (;;) {
      const t = this.cur;
      const p = t.k === 'op' ? BIN_PREC[t.s] : undefined;
      if (p === undefined || p < minPrec) return l;
      this.i++;
      const r = this.binary(p + 1);
      l = { t: 'bin', op: t.s, l, r, pos: t.pos };
    }
  }
  /** Tries to parse a type name at the cursor (for casts and sizeof). */
  tryType(): Type | undefined {
    const save = this.i;
    const words: string[] = [];
    while (this.cur.k === 'id' && TYPE_WORDS.has(this.cur.s)) {
      words.push(this.cur.s); this.i++;
      if (['struct', 'union', 'enum', 'class'].includes(words[words.length - 1])) {
        if (this.cur.k !== 'id') { this.i = save; return undefined; }
        words.push(this.cur.s); this.i++;
        break;
      }
    }
    let base: Type | undefined;
    const quals = words.filter((w) => w === 'const' || w === 'volatile');
    const rest = words.filter((w) => w !== 'const' && w !== 'volatile');
    if (rest.length && ['struct', 'union', 'enum', 'class'].includes(rest[0])) {
      base = this.typeLookup(`${rest[0] === 'class' ? 'struct' : rest[0]} ${rest[1]}`);
      if (!base) throw new ExpressionError(`No ${rest[0]} type named ${rest[1]}.`, this.toks[save].pos);
    } else if (rest.length) {
      base = builtinType(rest.join(' '));
      if (!base) { this.i = save; return undefined; }
    } else if (this.cur.k === 'id') {
      // a typedef or class name, maybe qualified with ::
      let name = this.cur.s; let j = this.i + 1;
      while (this.toks[j].k === 'op' && this.toks[j].s === '::' && this.toks[j + 1].k === 'id') { name += '::' + this.toks[j + 1].s; j += 2; }
      const t = this.typeLookup(name);
      if (!t) { this.i = save; return undefined; }
      base = t; this.i = j;
      while (this.cur.k === 'id' && (this.cur.s === 'const' || this.cur.s === 'volatile')) { quals.push(this.cur.s); this.i++; }
    } else { this.i = save; return undefined; }
    let t: Type = base;
    for (const q of quals) t = { k: 'cv', q: q as 'const', to: t };
    for (;;) {
      if (this.isOp('*')) { this.i++; t = { k: 'ptr', to: t, size: 8 }; continue; }
      if (this.isOp('&')) { this.i++; t = { k: 'ref', to: t, rvalue: false, size: 8 }; continue; }
      if (this.cur.k === 'id' && (this.cur.s === 'const' || this.cur.s === 'volatile')) { t = { k: 'cv', q: this.cur.s as 'const', to: t }; this.i++; continue; }
      break;
    }
    return t;
  }
  unary(): Node {
    const t = this.cur;
    if (t.k === 'op' && ['-', '+', '!', '~', '*', '&'].includes(t.s)) {
      this.i++;
      return { t: 'un', op: t.s, e: this.unary(), pos: t.pos };
    }
    if (t.k === 'op' && (t.s === '++' || t.s === '--')) throw new ExpressionError('Increment and decrement are not supported in these expressions.', t.pos);
    if (t.k === 'id' && t.s === 'sizeof') {
      this.i++;
      if (this.isOp('(')) {
        const save = this.i; this.i++;
        const ty = this.tryType();
        if (ty && this.isOp(')')) { this.i++; return { t: 'sizeof', type: ty, pos: t.pos }; }
        this.i = save;
      }
      return { t: 'sizeof', e: this.unary(), pos: t.pos };
    }
    if (this.isOp('(')) {
      const save = this.i; this.i++;
      const ty = this.tryType();
      if (ty && this.isOp(')')) {
        this.i++;
        return { t: 'cast', type: ty, e: this.unary(), pos: t.pos };
      }
      this.i = save;
    }
    return this.postfix();
  }
  postfix(): Node {
    let e = this.primary();
    for (;;) {
      const t = this.cur;
      if (this.isOp('[')) { this.i++; const idx = this.expr(); this.expectOp(']'); e = { t: 'index', e, i: idx, pos: t.pos }; continue; }
      if (this.isOp('.') || this.isOp('->')) {
        this.i++;
        const n = this.cur;
        if (n.k !== 'id') this.syntax();
        this.i++;
        e = { t: 'member', e, name: n.s, arrow: t.s === '->', pos: n.pos };
        continue;
      }
      if (this.isOp('(')) throw new ExpressionError('Calling functions is not supported in watch, hover or condition expressions.', t.pos);
      if (this.isOp('++') || this.isOp('--')) throw new ExpressionError('Increment and decrement are not supported in these expressions.', t.pos);
      return e;
    }
  }
  primary(): Node {
    const t = this.cur;
    switch (t.k) {
      case 'num': {
        this.i++;
        const suf = t.s.replace(/^(0[xX][0-9a-fA-F]+|[0-9]+)/, '').toLowerCase();
        return { t: 'num', v: t.v as bigint, unsigned: suf.includes('u'), long: suf.includes('l'), pos: t.pos };
      }
      case 'float': this.i++; return { t: 'float', v: t.v as number, single: /[fF]$/.test(t.s), pos: t.pos };
      case 'char': this.i++; return { t: 'char', v: t.s.charCodeAt(0) & 0xff, pos: t.pos };
      case 'str': this.i++; return { t: 'str', v: t.s, pos: t.pos };
      case 'reg': this.i++; return { t: 'reg', name: t.s.slice(1), pos: t.pos };
      case 'id': {
        this.i++;
        let name = t.s;
        while (this.isOp('::') && this.peek().k === 'id') { this.i++; name += '::' + this.cur.s; this.i++; }
        return { t: 'id', name, pos: t.pos };
      }
      case 'op':
        if (t.s === '(') { this.i++; const e = this.expr(); this.expectOp(')'); return e; }
        if (t.s === '::' && this.peek().k === 'id') { this.i++; return this.primary(); }
        this.syntax();
      // eslint-disable-next-line no-fallthrough
      case 'eof': this.syntax();
    }
  }
}

function base(name: string, size: number, enc: number): Type { return { k: 'base', name, size, enc }; }
const T = {
  int: base('int', 4, DW.ATE_signed), uint: base('unsigned int', 4, DW.ATE_unsigned),
  long: base('long', 8, DW.ATE_signed), ulong: base('unsigned long', 8, DW.ATE_unsigned),
  llong: base('long long', 8, DW.ATE_signed), ullong: base('unsigned long long', 8, DW.ATE_unsigned),
  char: base('char', 1, DW.ATE_signed_char), double: base('double', 8, DW.ATE_float), float: base('float', 4, DW.ATE_float),
  bool: base('bool', 1, DW.ATE_boolean),
};

function builtinType(words: string): Type | undefined {
  const w = words.replace(/\bsigned (?=(int|long|short|char))/, '').replace(/\b(long|short|unsigned( long)?( long)?) int\b/, '$1');
  const m: Record<string, Type> = {
    int: T.int, signed: T.int, unsigned: T.uint, 'unsigned int': T.uint, long: T.long, 'unsigned long': T.ulong,
    'long long': T.llong, 'unsigned long long': T.ullong, short: base('short', 2, DW.ATE_signed),
    'unsigned short': base('unsigned short', 2, DW.ATE_unsigned), char: T.char, 'signed char': base('signed char', 1, DW.ATE_signed_char),
    'unsigned char': base('unsigned char', 1, DW.ATE_unsigned_char), float: T.float, double: T.double,
    'long double': base('long double', 16, DW.ATE_float), void: { k: 'void' }, _Bool: base('_Bool', 1, DW.ATE_boolean), bool: T.bool,
    wchar_t: base('wchar_t', 4, DW.ATE_signed), char16_t: base('char16_t', 2, DW.ATE_UTF), char32_t: base('char32_t', 4, DW.ATE_UTF),
  };
  return m[w];
}

// ------------------------------------------------------------------ evaluation

export class Evaluator {
  private ctx: ValueContext;
  private cxx: boolean;
  constructor(readonly program: Program, readonly frame: Frame | undefined, readonly stack?: Frame[]) {
    this.ctx = frame ? program.valueContext(frame) : { mem: program.target.memory, reg: () => { throw new OptimizedOut(); }, symbolize: (a, d) => program.symbolize(a, d) };
    this.cxx = !!frame?.physDie?.cu.isCxx;
  }

  parse(src: string): Node {
    return new Parser(lex(src), src, (n) => this.program.lookupType(n, this.frame)).parse();
  }

  evaluate(src: string): Value {
    if (!src.trim()) throw new ExpressionError('Empty expression.', 0);
    const ast = this.parse(src);
    const v = this.eval(ast);
    // fetch now so unreadable memory is an error of the expression, as in gdb
    if (!v.optimized && v.size <= 1 << 20 && strip(v.type).k !== 'func') {
      try { v.bytes(); } catch (e) {
        if (e instanceof OptimizedOut) return v;
        throw new ExpressionError((e as Error).message, 0);
      }
    }
    return v;
  }

  private mk(type: Type, v: bigint | number): Value {
    const size = sizeOf(type);
    const b = Buffer.alloc(Math.max(size, 16));
    const s = strip(type);
    if (s.k === 'base' && s.enc === DW.ATE_float) {
      if (size === 4) b.writeFloatLE(Number(v)); else if (size === 8) b.writeDoubleLE(Number(v)); else toX87(Number(v)).copy(b);
    } else b.writeBigUInt64LE(BigInt.asUintN(64, typeof v === 'number' ? BigInt(Math.trunc(v)) : v));
    return new Value(type, this.ctx, undefined, b.subarray(0, size));
  }

  private boolResult(b: boolean): Value { return this.cxx ? this.mk(T.bool, b ? 1n : 0n) : this.mk(T.int, b ? 1n : 0n); }

  private eval(n: Node): Value {
    switch (n.t) {
      case 'num': {
        const fits32 = n.v <= 0x7fffffffn;
        const ty = n.long ? (n.unsigned ? T.ulong : T.long) : n.unsigned ? (n.v <= 0xffffffffn ? T.uint : T.ulong) : fits32 ? T.int : T.long;
        return this.mk(ty, n.v);
      }
      case 'float': return this.mk(n.single ? T.float : T.double, n.v);
      case 'char': return this.mk(T.char, BigInt(n.v));
      case 'str': {
        const b = Buffer.from(n.v + '\0', 'latin1');
        return new Value({ k: 'array', of: T.char, count: b.length }, this.ctx, undefined, b);
      }
      case 'reg': return this.register(n.name, n.pos);
      case 'id': return this.identifier(n.name, n.pos);
      case 'member': {
        // like gdb, `.` on a pointer and `->` on a structure both reach the member
        let v = this.eval(n.e);
        let t = strip(v.type);
        while (t.k === 'ref' || (t.k === 'ptr' && strip(t.to).k === 'struct')) { v = v.deref(); t = strip(v.type); }
        if (t.k !== 'struct') {
          if (n.arrow && t.k !== 'ptr') throw new ExpressionError(`The -> operator needs a pointer to a structure; ${exprText(n.e)} is of type ${typeName(v.type)}.`, n.pos);
          throw new ExpressionError(`Attempt to extract a component of a value that is not a structure pointer (${exprText(n.e)} is of type ${typeName(v.type)}).`, n.pos);
        }
        return this.member(v, n.name, n.pos);
      }
      case 'index': {
        const a = rv(this.eval(n.e));
        const i = rv(this.eval(n.i));
        const vec = strip(a.type);
        if (vec.k === 'struct' && vec.name && /^std::vector<.*>$/.test(vec.name)) {
          // libstdc++'s operator[] (gdb does this through xmethods)
          const start = field(field(a, '_M_impl'), '_M_start');
          return this.indexOf(start, i, n.pos);
        }
        const at = strip(a.type);
        const it = strip(i.type);
        if (at.k !== 'array' && at.k !== 'ptr') {
          if ((it.k === 'array' || it.k === 'ptr') && isInt(a.type)) return this.indexOf(i, a, n.pos);
          throw new ExpressionError(`cannot subscript something of type \`${typeName(a.type)}'`, n.pos);
        }
        if (!isInt(i.type)) throw new ExpressionError(`The array index must be an integer, not ${typeName(i.type)}.`, n.i.pos);
        return this.indexOf(a, i, n.pos);
      }
      case 'un': return this.unaryOp(n.op, n.op === '&' ? this.eval(n.e) : rv(this.eval(n.e)), n);
      case 'bin': {
        if (n.op === '&&' || n.op === '||') {
          const l = this.truth(rv(this.eval(n.l)), n.l.pos);
          if (n.op === '&&' && !l) return this.boolResult(false);
          if (n.op === '||' && l) return this.boolResult(true);
          return this.boolResult(this.truth(rv(this.eval(n.r)), n.r.pos));
        }
        if (n.op === '@') return this.artificialArray(rv(this.eval(n.l)), rv(this.eval(n.r)), n);
        return this.binaryOp(n.op, rv(this.eval(n.l)), rv(this.eval(n.r)), n.pos);
      }
      case 'cond': return this.truth(rv(this.eval(n.c)), n.c.pos) ? this.eval(n.a) : this.eval(n.b);
      case 'cast': return this.cast(strip(n.type).k === 'ref' ? this.eval(n.e) : rv(this.eval(n.e)), n.type, n.pos);
      case 'sizeof': {
        const ty = n.type ?? this.eval(n.e!).type;
        return this.mk(T.ulong, BigInt(sizeOf(ty)));
      }
      case 'call': throw new ExpressionError('Calling functions is not supported.', n.pos);
    }
  }

  /** gdb's `x@n`: n objects of x's type starting at x's address. */
  private artificialArray(l: Value, r: Value, n: Extract<Node, { t: 'bin' }>): Value {
    if (!isInt(r.type)) throw new ExpressionError('Only values in memory can be extended with \'@\'.', n.r.pos);
    const count = Number(r.int());
    if (count <= 0) throw new ExpressionError(`Only values in memory can be extended with '@'.`, n.r.pos);
    if (l.addr === undefined || !l.lval) throw new ExpressionError(`Only values in memory can be extended with '@'.`, n.pos);
    return new Value({ k: 'array', of: l.type, count }, this.ctx, l.addr);
  }

  private register(name: string, pos: number): Value {
    const aliases: Record<string, number> = { pc: Reg.rip, sp: Reg.rsp, fp: Reg.rbp };
    const idx = aliases[name] ?? (Reg as Record<string, number>)[name];
    if (idx === undefined) throw new ExpressionError(`Invalid register \`$${name}'.`, pos);
    const v = this.frame?.regs.get(idx);
    if (v === undefined) throw new ExpressionError(`Register $${name} is not available in this frame.`, pos);
    let ty: Type = T.long;
    if (idx === Reg.rip) ty = { k: 'ptr', to: { k: 'func', ret: { k: 'void' }, params: [], varargs: false, proto: false, cxx: false }, size: 8 };
    else if (idx === Reg.rsp || idx === Reg.rbp) ty = { k: 'ptr', to: { k: 'void' }, size: 8 };
    return this.mk(ty, v);
  }

  private identifier(name: string, pos: number): Value {
    if (name === 'true' || name === 'false') return this.mk(T.bool, name === 'true' ? 1n : 0n);
    if (name === 'nullptr' || name === 'NULL') return this.mk({ k: 'ptr', to: { k: 'void' }, size: 8 }, 0n);
    if (name.endsWith('@entry')) {
      try { return this.program.lookupEntryValue(name.slice(0, -6), this.frame, this.stack); } catch (e) {
        throw new ExpressionError((e as Error).message, pos);
      }
    }
    let v: Value | undefined;
    try { v = this.program.lookupVariable(name, this.frame, this.stack); } catch (e) {
      throw new ExpressionError((e as Error).message, pos);
    }
    if (v) return v;
    // a member of *this in C++ methods
    if (this.frame && name !== 'this') {
      const self = this.program.lookupVariable('this', this.frame, this.stack);
      if (self) {
        try { return this.member(self.deref(), name, pos); } catch { /* not a member */ }
      }
    }
    // enumerators and functions
    const f = this.program.lookupFunctionValue(name, this.frame, this.ctx);
    if (f) return f;
    const en = this.program.lookupEnumerator(name, this.frame, this.ctx);
    if (en) return en;
    throw new ExpressionError(`No symbol "${name}" in current context.`, pos);
  }

  private member(v: Value, name: string, pos: number): Value {
    const t = strip(v.type);
    if (t.k !== 'struct') throw new ExpressionError(`Attempt to extract a component of a value that is not a structure${name ? ` (looking for member ${name})` : ''}.`, pos);
    const found = memberPath(t, name);
    if (!found) throw new ExpressionError(this.cxx ? `There is no member or method named ${name}.` : `There is no member named ${name}.`, pos);
    if (found.m.isStatic) {
      const sv = this.program.staticMember(found.m);
      if (!sv) throw new ExpressionError(`static field ${name} has been optimized out`, pos);
      return sv;
    }
    return alongPath(v, found.path).member(found.m);
  }

  private indexOf(a: Value, i: Value, pos: number): Value {
    const at = strip(a.type);
    const idx = i.int();
    if (at.k === 'array') {
      const esz = sizeOf(at.of);
      if (a.addr !== undefined) return new Value(at.of, this.ctx, a.addr + idx * BigInt(esz));
      if (idx < 0n || (at.count !== undefined && idx >= BigInt(at.count))) throw new ExpressionError(`no such vector element`, pos);
      return a.sub(at.of, Number(idx) * esz);
    }
    if (at.k === 'ptr') {
      if (strip(at.to).k === 'void') throw new ExpressionError('Attempt to take contents of a non-pointer value.', pos);
      const esz = BigInt(sizeOf(at.to));
      return new Value(at.to, this.ctx, BigInt.asUintN(64, a.int() + idx * esz));
    }
    throw new ExpressionError(`cannot subscript something of type \`${typeName(a.type)}'`, pos);
  }

  private truth(v: Value, pos: number): boolean {
    const t = strip(v.type);
    if (t.k === 'base' && t.enc === DW.ATE_float) return v.float() !== 0;
    if (t.k === 'base' || t.k === 'ptr' || t.k === 'enum') return v.int() !== 0n;
    if (t.k === 'array') return true;
    throw new ExpressionError(`A value of type ${typeName(v.type)} cannot be used as a condition.`, pos);
  }

  private unaryOp(op: string, v: Value, n: Extract<Node, { t: 'un' }>): Value {
    const t = strip(v.type);
    switch (op) {
      case '*': {
        if (t.k === 'ptr') {
          if (strip(t.to).k === 'void') throw new ExpressionError('Attempt to take contents of a non-pointer value.', n.pos);
          if (strip(t.to).k === 'func') return new Value(t.to, this.ctx, BigInt.asUintN(64, v.int()));
          return v.deref();
        }
        if (t.k === 'array') return new Value(t.of, this.ctx, v.addr, v.addr === undefined ? v.bytes().subarray(0, sizeOf(t.of)) : undefined);
        if (t.k === 'ref') return v.deref();
        if (t.k === 'func') return v;
        if (isInt(v.type)) return new Value(T.long, this.ctx, BigInt.asUintN(64, v.int()));
        throw new ExpressionError(`Attempt to take contents of a non-pointer value (${exprText(n.e)} is of type ${typeName(v.type)}).`, n.pos);
      }
      case '&': {
        if (t.k === 'ref') { const d = v.deref(); return this.mk({ k: 'ptr', to: d.type, size: 8 }, d.addr!); }
        if (v.addr === undefined || !v.lval) throw new ExpressionError(`Attempt to take address of value not located in memory (${exprText(n.e)}).`, n.pos);
        if (v.bitSize) throw new ExpressionError('Attempt to take address of a bitfield.', n.pos);
        return this.mk({ k: 'ptr', to: v.type, size: 8 }, v.addr);
      }
      case '!': return this.boolResult(!this.truth(v, n.e.pos));
      case '-': case '+': case '~': {
        if (t.k === 'base' && t.enc === DW.ATE_float) {
          if (op === '~') throw new ExpressionError('Argument to complement operation not an integer, boolean.', n.pos);
          return this.mk(v.type, op === '-' ? -v.float() : v.float());
        }
        if (!isInt(v.type)) throw new ExpressionError(`Argument to arithmetic operation not a number or boolean.`, n.pos);
        const pt = promote(v.type);
        const x = v.int();
        return this.mk(pt, op === '-' ? -x : op === '~' ? ~x : x);
      }
    }
    throw new ExpressionError(`Unsupported operator ${op}`, n.pos);
  }

  private binaryOp(op: string, l: Value, r: Value, pos: number): Value {
    const lt = decay(strip(l.type)), rt = decay(strip(r.type));
    const cmp = ['==', '!=', '<', '>', '<=', '>='].includes(op);
    // pointer arithmetic
    if (lt.k === 'ptr' || rt.k === 'ptr') {
      const lp = lt.k === 'ptr', rp = rt.k === 'ptr';
      if (cmp) {
        const a = BigInt.asUintN(64, this.scalarInt(l, pos)), b = BigInt.asUintN(64, this.scalarInt(r, pos));
        return this.boolResult(compare(op, a, b));
      }
      if (op === '+' && (lp !== rp)) {
        const p = lp ? l : r, i = lp ? r : l;
        const pt = (lp ? lt : rt) as Extract<Type, { k: 'ptr' }>;
        if (!isInt(i.type)) throw new ExpressionError('Argument to arithmetic operation not a number or boolean.', pos);
        return this.mk(pt, this.scalarInt(p, pos) + i.int() * BigInt(ptrStep(pt)));
      }
      if (op === '-' && lp && !rp) {
        if (!isInt(r.type)) throw new ExpressionError('Argument to arithmetic operation not a number or boolean.', pos);
        return this.mk(lt, this.scalarInt(l, pos) - r.int() * BigInt(ptrStep(lt as Extract<Type, { k: 'ptr' }>)));
      }
      if (op === '-' && lp && rp) {
        const s1 = ptrStep(lt as Extract<Type, { k: 'ptr' }>), s2 = ptrStep(rt as Extract<Type, { k: 'ptr' }>);
        if (s1 !== s2) throw new ExpressionError(`First argument of \`-' is a pointer and second argument is neither\nan integer nor a pointer of the same type.`, pos);
        return this.mk(T.long, (BigInt.asIntN(64, this.scalarInt(l, pos)) - BigInt.asIntN(64, this.scalarInt(r, pos))) / BigInt(s1));
      }
      throw new ExpressionError(`Invalid operands to ${op}: ${typeName(l.type)} and ${typeName(r.type)}.`, pos);
    }
    if (!isArith(l.type) || !isArith(r.type)) {
      throw new ExpressionError(`Argument to arithmetic operation not a number or boolean (${typeName(!isArith(l.type) ? l.type : r.type)}).`, pos);
    }
    const lf = isFloat(l.type), rf = isFloat(r.type);
    if (lf || rf) {
      const a = lf ? l.float() : Number(l.int()), b = rf ? r.float() : Number(r.int());
      if (cmp) return this.boolResult(compare(op, a, b));
      const ty = lf && rf ? (sizeOf(l.type) >= sizeOf(r.type) ? strip(l.type) : strip(r.type)) : lf ? strip(l.type) : strip(r.type);
      let x: number;
      switch (op) {
        case '+': x = a + b; break; case '-': x = a - b; break; case '*': x = a * b; break; case '/': x = a / b; break;
        default: throw new ExpressionError(`Integer only operation ${op} on a floating point value.`, pos);
      }
      return this.mk(ty, x);
    }
    const ty = arithType(l.type, r.type);
    if (sizeOf(ty) > 8) throw new ExpressionError('That operation is not available on integers of more than 8 bytes.', pos);
    const uns = !isSigned(ty);
    const bits = BigInt(sizeOf(ty) * 8);
    const norm = (v: bigint) => (uns ? BigInt.asUintN(Number(bits), v) : BigInt.asIntN(Number(bits), v));
    const a = norm(l.int()), b = norm(r.int());
    if (cmp) return this.boolResult(compare(op, a, b));
    let x: bigint;
    switch (op) {
      case '+': x = a + b; break; case '-': x = a - b; break; case '*': x = a * b; break;
      case '/': if (b === 0n) throw new ExpressionError('Division by zero', pos); x = a / b; break;
      case '%': if (b === 0n) throw new ExpressionError('Division by zero', pos); x = a % b; break;
      case '<<': x = a << b; break; case '>>': x = a >> b; break;
      case '&': x = a & b; break; case '|': x = a | b; break; case '^': x = a ^ b; break;
      default: throw new ExpressionError(`Unsupported operator ${op}`, pos);
    }
    const rty = op === '<<' || op === '>>' ? promote(l.type) : ty;
    return this.mk(rty, x);
  }

  private scalarInt(v: Value, pos: number): bigint {
    const t = strip(v.type);
    if (t.k === 'array') { if (v.addr === undefined) throw new ExpressionError('Attempt to take address of value not located in memory.', pos); return v.addr; }
    if (t.k === 'func') return v.addr ?? 0n;
    return v.int();
  }

  private cast(v: Value, to: Type, pos: number): Value {
    const ts = strip(to), vs = strip(v.type);
    if (ts.k === 'void') return new Value(to, this.ctx, undefined, Buffer.alloc(0));
    if (ts.k === 'struct' || ts.k === 'array') {
      if (vs.k === 'struct' && v.addr !== undefined) return new Value(to, this.ctx, v.addr);
      throw new ExpressionError(`Invalid cast to ${typeName(to)}.`, pos);
    }
    if (ts.k === 'ref') {
      if (v.addr === undefined) throw new ExpressionError('Attempt to take address of value not located in memory.', pos);
      return new Value(ts.to, this.ctx, v.addr);
    }
    if (ts.k === 'base' && ts.enc === DW.ATE_float) {
      if (isFloat(v.type)) return this.mk(to, v.float());
      if (isInt(v.type)) return this.mk(to, Number(v.int()));
      throw new ExpressionError(`Invalid cast to ${typeName(to)} from ${typeName(v.type)}.`, pos);
    }
    // integers, enums, pointers
    let x: bigint;
    if (isFloat(v.type)) x = BigInt(Math.trunc(v.float()));
    else if (vs.k === 'array' || vs.k === 'func') x = this.scalarInt(v, pos);
    else if (vs.k === 'base' || vs.k === 'ptr' || vs.k === 'enum') x = v.int();
    else throw new ExpressionError(`Invalid cast to ${typeName(to)} from ${typeName(v.type)}.`, pos);
    if (ts.k === 'base' && ts.enc === DW.ATE_boolean) x = x !== 0n ? 1n : 0n;
    const size = sizeOf(to);
    x = isSigned(to) ? BigInt.asIntN(size * 8, x) : BigInt.asUintN(size * 8, x);
    return this.mk(to, x);
  }
}

function exprText(n: Node): string {
  switch (n.t) {
    case 'id': return n.name;
    case 'member': return `${exprText(n.e)}${n.arrow ? '->' : '.'}${n.name}`;
    case 'index': return `${exprText(n.e)}[${exprText(n.i)}]`;
    case 'un': return `${n.op}${exprText(n.e)}`;
    case 'num': return String(n.v);
    default: return 'the expression';
  }
}

/** a reference used as a value is its referent */
function rv(v: Value): Value {
  return strip(v.type).k === 'ref' ? v.deref() : v;
}

function decay(t: Type): Type {
  if (t.k === 'array') return { k: 'ptr', to: t.of, size: 8 };
  if (t.k === 'func') return { k: 'ptr', to: t, size: 8 };
  return t;
}
function ptrStep(p: Extract<Type, { k: 'ptr' }>): number {
  const s = strip(p.to);
  return s.k === 'void' || s.k === 'func' ? 1 : sizeOf(p.to) || 1;
}
function isInt(t: Type): boolean {
  const s = strip(t);
  return (s.k === 'base' && s.enc !== DW.ATE_float) || s.k === 'enum';
}
function isFloat(t: Type): boolean { const s = strip(t); return s.k === 'base' && s.enc === DW.ATE_float; }
function isArith(t: Type): boolean { return isInt(t) || isFloat(t); }
function promote(t: Type): Type {
  const s = strip(t);
  const size = sizeOf(s);
  if (size < 4) return T.int;
  if (s.k === 'enum') return size > 4 ? (s.signed ? T.long : T.ulong) : s.signed ? T.int : T.uint;
  if (s.k === 'base' && s.enc === DW.ATE_boolean) return T.int;
  return s;
}
function arithType(a: Type, b: Type): Type {
  const pa = promote(a), pb = promote(b);
  const sa = sizeOf(pa), sb = sizeOf(pb);
  if (sa !== sb) return sa > sb ? pa : pb;
  if (!isSigned(pa)) return pa;
  if (!isSigned(pb)) return pb;
  return pa;
}
function compare(op: string, a: bigint | number, b: bigint | number): boolean {
  switch (op) {
    case '==': return a === b; case '!=': return a !== b; case '<': return a < b;
    case '>': return a > b; case '<=': return a <= b; default: return a >= b;
  }
}

export { isCharType, field };

/** x87 80-bit extended encoding of a double (long double values). */
function toX87(x: number): Buffer {
  const b = Buffer.alloc(16);
  if (x === 0) { if (Object.is(x, -0)) b.writeUInt16LE(0x8000, 8); return b; }
  const sign = x < 0 ? 0x8000 : 0;
  let a = Math.abs(x);
  if (!Number.isFinite(a)) { b.writeBigUInt64LE(1n << 63n); b.writeUInt16LE(sign | 0x7fff, 8); return b; }
  if (Number.isNaN(x)) { b.writeBigUInt64LE(3n << 62n); b.writeUInt16LE(0x7fff, 8); return b; }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const d = Buffer.alloc(8); d.writeDoubleLE(a);
  const bits = d.readBigUInt64LE(0);
  const exp = Number((bits >> 52n) & 0x7ffn);
  let mant = bits & ((1n << 52n) - 1n);
  if (exp) mant |= 1n << 52n; // normal
  else { // subnormal double: normalise
    while (!(mant & (1n << 52n))) mant <<= 1n;
  }
  b.writeBigUInt64LE(mant << 11n);
  b.writeUInt16LE(sign | (e + 16383), 8);
  a = 0;
  return b;
}
