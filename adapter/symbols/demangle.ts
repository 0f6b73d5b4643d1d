// A small Itanium C++ ABI demangler: enough for the names a debugger shows
// (functions, methods, vtables, typeinfo, templates with simple arguments).

const BUILTIN: Record<string, string> = {
  v: 'void', w: 'wchar_t', b: 'bool', c: 'char', a: 'signed char', h: 'unsigned char', s: 'short',
  t: 'unsigned short', i: 'int', j: 'unsigned int', l: 'long', m: 'unsigned long', x: 'long long',
  y: 'unsigned long long', n: '__int128', o: 'unsigned __int128', f: 'float', d: 'double', e: 'long double',
  g: '__float128', z: '...',
};
const OPS: Record<string, string> = {
  nw: 'new', na: 'new[]', dl: 'delete', da: 'delete[]', ps: '+', ng: '-', ad: '&', de: '*', co: '~', pl: '+',
  mi: '-', ml: '*', dv: '/', rm: '%', an: '&', or: '|', eo: '^', aS: '=', pL: '+=', mI: '-=', mL: '*=',
  dV: '/=', rM: '%=', aN: '&=', oR: '|=', eO: '^=', ls: '<<', rs: '>>', lS: '<<=', rS: '>>=', eq: '==',
  ne: '!=', lt: '<', gt: '>', le: '<=', ge: '>=', ss: '<=>', nt: '!', aa: '&&', oo: '||', pp: '++', mm: '--',
  cm: ',', pm: '->*', pt: '->', cl: '()', ix: '[]',
};

class P {
  pos = 0;
  subs: string[] = [];
  tmpl: string[] = [];
  /** parsing the encoding's name (its template arguments are what T_ refers to) */
  inName = true;
  depth = 0;
  retLen = 0;
  /** inside a local name's enclosing function: no return type printed */
  local = false;
  endsWithTemplate = false;
  ctorDtor = false;
  /** inside a lambda's signature: template parameters are its `auto` parameters */
  inLambda = false;
  fnTypes = new Map<string, { ret: string; params: string; q: string }>();
  packs = new Map<string, string[]>();
  arrTypes = new Map<string, { el: string; dim: string }>();
  constructor(readonly s: string) {}
  peek(n = 0): string { return this.s[this.pos + n] ?? ''; }
  next(): string { return this.s[this.pos++] ?? ''; }
  eat(t: string): boolean { if (this.s.startsWith(t, this.pos)) { this.pos += t.length; return true; } return false; }
  num(): number { let m = /^\d+/.exec(this.s.slice(this.pos)); if (!m) throw new Error('num'); this.pos += m[0].length; return Number(m[0]); }
  source(): string { const n = this.num(); const r = this.s.substr(this.pos, n); this.pos += n; return r.startsWith('_GLOBAL__N') ? '(anonymous namespace)' : r; }
  seqId(): string {
    if (this.eat('_')) return this.subs[0];
    let v = 0;
    for (;;) {
      const ch = this.next();
      if (ch === '_') break;
      v = v * 36 + parseInt(ch, 36);
    }
    const r = this.subs[v + 1];
    if (r === undefined) throw new Error('sub');
    return r;
  }
  substitution(): string {
    // after 'S'
    const std: Record<string, string> = { t: 'std', a: 'std::allocator', b: 'std::basic_string', s: 'std::string', i: 'std::istream', o: 'std::ostream', d: 'std::iostream' };
    const c = this.peek();
    if (std[c]) { this.pos++; return std[c]; }
    return this.seqId();
  }
  templateArgs(): string {
    // after 'I'
    const args: string[] = [];
    const was = this.inName;
    this.inName = false;
    while (!this.eat('E')) args.push(this.templateArg());
    this.inName = was;
    if (was) this.tmpl = args;
    const j = args.filter((a) => a !== '').join(', ');
    return '<' + j + (j.endsWith('>') ? ' >' : '>');
  }
  templateArg(): string {
    if (this.eat('L')) {
      if (this.eat('_Z')) { const r = this.encoding(); this.eat('E'); return r; }
      const t = this.type();
      let neg = false; if (this.eat('n')) neg = true;
      const v = this.num();
      this.eat('E');
      if (t === 'bool') return v ? 'true' : 'false';
      const suffix = t === 'unsigned int' ? 'u' : t === 'long' ? 'l' : t === 'unsigned long' ? 'ul' : '';
      return (t === 'int' || suffix) ? (neg ? '-' : '') + v + suffix : `(${t})${neg ? '-' : ''}${v}`;
    }
    // an expression argument that is a template parameter (`in_place_index_t<_Np>`)
    if (this.peek() === 'X' && this.peek(1) === 'T') { this.pos++; this.next(); const r = this.templateParam(); if (!this.eat('E')) throw new Error('expr'); return r; }
    if (this.eat('J')) { const a: string[] = []; while (!this.eat('E')) a.push(this.templateArg()); const j = a.join(', '); this.packs.set(j, a); return j; }
    return this.type();
  }
  abiTags(n: string): string {
    while (this.peek() === 'B') { this.pos++; n += `[abi:${this.source()}]`; }
    return n;
  }
  unqualified(): string {
    const c = this.peek();
    if (/\d/.test(c)) return this.abiTags(this.source());
    if (c === 'C') { this.pos += 2; return 'C'; }
    if (c === 'D' && /[0-9]/.test(this.peek(1))) { this.pos += 2; return 'D'; }
    if (c === 'U' && this.peek(1) === 'l') { // lambda: its parameters (a generic one's are auto:N), then its number
      this.pos += 2;
      const wasLambda = this.inLambda;
      this.inLambda = true;
      const params: string[] = [];
      try { while (!this.eat('E')) params.push(this.type()); } finally { this.inLambda = wasLambda; }
      let n = 1; if (this.peek() !== '_') n = this.num() + 2; this.eat('_');
      const ps = params.length === 1 && params[0] === 'void' ? '' : params.join(', ');
      return `{lambda(${ps})#${n}}`;
    }
    if (c === 'L') { this.pos++; return this.unqualified(); }
    const op = this.s.substr(this.pos, 2);
    if (op === 'cv') { this.pos += 2; return 'operator ' + this.type(); }
    if (OPS[op]) { this.pos += 2; const o = OPS[op]; return 'operator' + (/^[a-z]/.test(o) ? ' ' : '') + o; }
    throw new Error('unq');
  }
  nested(): { name: string; cvq: string } {
    // after 'N'
    let cvq = '';
    while (/[rVK]/.test(this.peek())) { const q = this.next(); if (q === 'K') cvq += ' const'; if (q === 'V') cvq += ' volatile'; }
    if (this.eat('R')) cvq += ' &';
    else if (this.eat('O')) cvq += ' &&';
    let ctorDtor = false, endsWithTemplate = false;
    const parts: string[] = [];
    let full = '';
    let last = '';
    while (!this.eat('E')) {
      if (this.peek() === 'S') {
        this.pos++; full = this.substitution(); parts.length = 0; parts.push(full); last = full.split('::').pop() ?? '';
        continue;
      }
      if (this.peek() === 'I') {
        this.pos++;
        full += (full.endsWith('<') ? ' ' : '') + this.templateArgs();
        if (this.peek() !== 'E') this.subs.push(full);
        endsWithTemplate = this.peek() === 'E';
        continue;
      }
      if (this.peek() === 'T') { this.pos++; full = (full ? full + '::' : '') + this.templateParam(); this.subs.push(full); continue; }
      let n = this.unqualified();
      endsWithTemplate = false;
      ctorDtor = n === 'C' || n === 'D' || n.startsWith('operator ');
      const plain = last.replace(/<.*$/, '').replace(/\[abi:[^\]]*\]/g, '');
      if (n === 'C') n = this.abiTags(plain);
      else if (n === 'D') n = '~' + this.abiTags(plain);
      last = n;
      full = full ? full + '::' + n : n;
      if (this.peek() !== 'E') this.subs.push(full);
    }
    this.endsWithTemplate = endsWithTemplate;
    this.ctorDtor = ctorDtor;
    return { name: full, cvq };
  }
  templateParam(): string {
    let i = 0;
    if (!this.eat('_')) { i = this.num() + 1; this.eat('_'); }
    if (this.inLambda) return `auto:${i + 1}`;
    return this.tmpl[i] ?? 'T';
  }
  /** A local name (after 'Z'): the enclosing function with its parameters, then the entity. */
  localName(): string {
    const wasLocal = this.local, wasIn = this.inName, tmpl = this.tmpl;
    this.local = true;
    let outer: string;
    try { outer = this.encoding(); } finally { this.local = wasLocal; this.inName = wasIn; this.tmpl = tmpl; }
    this.eat('E');
    if (this.eat('s')) { this.discriminator(); return outer + '::string literal'; }
    const entity = this.peek() === 'N' ? (this.pos++, this.nested().name) : this.unqualified();
    this.discriminator();
    return outer + '::' + entity;
  }
  discriminator(): void {
    if (!this.eat('_')) return;
    if (this.eat('_')) { this.num(); this.eat('_'); } else if (/\d/.test(this.peek())) this.pos++;
  }
  type(): string {
    const c = this.next();
    if (BUILTIN[c]) return BUILTIN[c];
    let r: string;
    switch (c) {
      case 'P': r = ptr(this.type(), '*'); break;
      case 'R': r = ptr(this.type(), '&'); break;
      case 'O': r = ptr(this.type(), '&&'); break;
      case 'K': r = this.type() + ' const'; r = r.replace(/^(.*) const$/, (m, t: string) => (/[*&]$/.test(t) ? t + ' const' : t + ' const')); break;
      case 'V': r = this.type() + ' volatile'; break;
      case 'N': r = this.nested().name; break;
      case 'S': {
        r = this.substitution();
        if (this.peek() === 'I') { this.pos++; r += this.templateArgs(); }
        else if (/\d/.test(this.peek()) && r === 'std') { r = 'std::' + this.source(); if (this.peek() === 'I') { this.subs.push(r); this.pos++; r += this.templateArgs(); } }
        else return r;
        break;
      }
      case 'T': r = this.templateParam(); break;
      case 'F': {
        this.eat('Y');
        const ret = this.type();
        const params: string[] = [];
        let refq = '';
        while (!this.eat('E')) {
          if ((this.peek() === 'R' || this.peek() === 'O') && this.peek(1) === 'E') { refq = this.next() === 'R' ? ' &' : ' &&'; continue; }
          params.push(this.type());
        }
        void refq;
        const ps = params.length === 1 && params[0] === 'void' ? '' : params.join(', ');
        r = `${ret} (${ps})`;
        this.fnTypes.set(r, { ret, params: ps, q: '' });
        break;
      }
      case 'A': {
        let n = ''; if (this.peek() !== '_') n = String(this.num()); this.eat('_');
        const el = this.type();
        r = `${el} [${n}]`;
        this.arrTypes.set(r, { el, dim: n });
        break;
      }
      case 'M': {
        const cls = this.type();
        let quals = '';
        while (/[rVK]/.test(this.peek())) { const q = this.next(); if (q === 'K') quals += ' const'; if (q === 'V') quals += ' volatile'; }
        const mem = this.type();
        const f = this.fnTypes.get(mem);
        r = f ? `${f.ret} (${cls}::*)(${f.params})${quals}` : `${mem} ${cls}::*`;
        break;
      }
      case 'D': {
        const d = this.next();
        const m: Record<string, string> = { n: 'decltype(nullptr)', i: 'char32_t', s: 'char16_t', u: 'char8_t', a: 'auto', c: 'decltype(auto)' };
        if (m[d]) return m[d];
        if (d === 'p') {
          // pack expansion: qualifiers applied to each element of a template parameter pack
          const m = /^([ROPK]*)T(\d*)_/.exec(this.s.slice(this.pos));
          const pack = m ? this.packs.get(this.tmpl[m[2] === '' ? 0 : Number(m[2]) + 1] ?? '') : undefined;
          if (m && pack) {
            this.pos += m[0].length;
            const ops = m[1].split('').reverse();
            let cur = pack;
            this.subs.push(cur.join(', '));
            for (const o of ops) {
              cur = cur.map((t) => (o === 'K' ? t + ' const' : ptr(t, o === 'P' ? '*' : o === 'R' ? '&' : '&&')));
              this.subs.push(cur.join(', '));
            }
            r = cur.join(', ');
            break;
          }
          r = this.type(); break;
        }
        throw new Error('D');
      }
      case 'u': return this.source();
      case 'Z': r = this.localName(); break;
      default:
        if (/\d/.test(c)) { this.pos--; r = this.source(); if (this.peek() === 'I') { this.subs.push(r); this.pos++; r += this.templateArgs(); } break; }
        throw new Error('type ' + c);
    }
    this.subs.push(r);
    return r;
  }
  encoding(): string {
    this.depth++;
    try { return this.encoding1(); } finally { this.depth--; }
  }
  encoding1(): string {
    let name: string; let cvq = '';
    let isTemplate = false;
    if (this.eat('N')) { const n = this.nested(); name = n.name; cvq = n.cvq; isTemplate = this.endsWithTemplate; }
    else if (this.eat('Z')) { // local name: the entity then its own parameters
      const wasLocal = this.local;
      this.local = true;
      const outer = this.encoding();
      this.local = wasLocal;
      this.eat('E');
      if (this.eat('s')) { this.eat('_'); if (/\d/.test(this.peek())) this.num(); return outer + '::string literal'; }
      this.inName = true;
      if (this.peek() === 'N') { this.pos++; const n = this.nested(); name = outer + '::' + n.name; cvq = n.cvq; isTemplate = this.endsWithTemplate; }
      else { name = outer + '::' + this.unqualified(); this.ctorDtor = false; }
      if (this.eat('_')) { if (/\d/.test(this.peek())) this.num(); this.eat('_'); }
      if (this.pos >= this.s.length || this.peek() === 'E' || this.peek() === '.') return name;
    } else if (this.eat('St')) name = 'std::' + this.unqualified();
    else if (this.peek() === 'S' && this.peek(1) !== 't') { this.pos++; name = this.substitution(); }
    else { name = this.unqualified(); }
    if (this.peek() === 'I') { this.subs.push(name); this.pos++; name += (name.endsWith('<') ? ' ' : '') + this.templateArgs(); isTemplate = true; }
    if (this.pos >= this.s.length || this.peek() === 'E' || this.peek() === '.') return name;
    this.inName = false;
    const retType = isTemplate && !this.ctorDtor ? this.type() : undefined;
    const ret = this.local ? undefined : retType;
    const params: string[] = [];
    while (this.pos < this.s.length && this.peek() !== 'E' && this.peek() !== '.') params.push(this.type());
    const p = params.length === 1 && params[0] === 'void' ? '' : params.join(', ');
    if (ret !== undefined) {
      const f = this.fnTypes.get(ret);
      if (f) return `${f.ret} (*${name}(${p})${cvq})(${f.params})`;
      if (this.depth === 0) this.retLen = ret.length + 1;
      return `${ret} ${name}(${p})${cvq}`;
    }
    return `${name}(${p})${cvq}`;
  }
}

let current: P | undefined;
function ptr(t: string, op: string): string {
  // reference collapsing (T = int&: T&& is int&)
  if (op !== '*' && t.endsWith('&')) return t.endsWith('&&') && op === '&' ? t.slice(0, -2) + '&' : t;
  // the same for a reference to a function: `int (&)(int)` stays as it is under `&&`
  const fr = op !== '*' ? /^(.*) \((&&?)\)\((.*)\)$/.exec(t) : null;
  if (fr) return fr[2] === '&&' && op === '&' ? `${fr[1]} (&)(${fr[3]})` : t;
  const f = current?.fnTypes.get(t);
  if (f) { const r = `${f.ret} (${op})(${f.params})`; current!.fnTypes.set(r, { ...f }); return r; }
  const a = current?.arrTypes.get(t);
  if (a) return `${a.el} (${op}) [${a.dim}]`;
  // a pointer to a pointer to function: "ret (*)(args)" -> "ret (**)(args)"
  const m = /^(.*) \((\*+|&+)\)\((.*)\)$/.exec(t);
  if (m) return `${m[1]} (${m[2]}${op})(${m[3]})`;
  return t + op;
}

const cache = new Map<string, string>();

/** gdb's cp_remove_params: the name without its parameter list and qualifiers. */
export function removeParams(name: string): string {
  let end = name.length;
  // trailing qualifiers after the parameter list
  const q = /(\)(?: const| volatile| &&| &)*)$/.exec(name);
  if (!q) return name;
  end = q.index + 1;
  let depth = 0;
  for (let i = end - 1; i >= 0; i--) {
    const ch = name[i];
    if (ch === ')') depth++;
    else if (ch === '(') { depth--; if (depth === 0) return name.slice(0, i); }
  }
  return name;
}

/** The demangled name without return type (gdb's DMGL_RET_DROP), e.g. for frame names. */
export function demangleNoReturn(s: string): string {
  const d = demangle(s);
  if (d === s) return s;
  const r = retTypeLen.get(s);
  return r ? d.slice(r) : d;
}
const retTypeLen = new Map<string, number>();

export function demangle(s: string): string {
  if (!s.startsWith('_Z')) return s;
  const at = s.indexOf('@');
  if (at > 0) return demangle(s.slice(0, at)) + s.slice(at);
  const c = cache.get(s);
  if (c !== undefined) return c;
  let out = s;
  try {
    const p = new P(s);
    p.pos = 2;
    current = p;
    const special: Record<string, string> = { TV: 'vtable for ', TI: 'typeinfo for ', TS: 'typeinfo name for ', TT: 'VTT for ' };
    const k = s.substr(2, 2);
    const callOffset = () => {
      const kind = p.next();
      if (kind === 'h') { p.eat('n'); p.num(); p.eat('_'); }
      else { p.eat('n'); p.num(); p.eat('_'); p.eat('n'); p.num(); p.eat('_'); }
    };
    if (special[k]) { p.pos = 4; out = special[k] + p.type(); }
    else if (k === 'GV') { p.pos = 4; out = 'guard variable for ' + p.encoding(); }
    else if (s.startsWith('_ZGTt')) { p.pos = 5; out = 'transaction clone for ' + p.encoding(); }
    else if (k === 'GR') { p.pos = 4; out = 'reference temporary #0 for ' + p.encoding(); }
    else if (k === 'TH') { p.pos = 4; out = 'TLS init function for ' + p.encoding(); }
    else if (k === 'TW') { p.pos = 4; out = 'TLS wrapper function for ' + p.encoding(); }
    else if (k === 'Th' || k === 'Tv') { p.pos = 3; callOffset(); out = (k === 'Th' ? 'non-virtual thunk to ' : 'virtual thunk to ') + p.encoding(); }
    else if (k === 'Tc') { p.pos = 4; callOffset(); callOffset(); out = 'covariant return thunk to ' + p.encoding(); }
    else { p.depth = -1; out = p.encoding(); if (p.retLen) retTypeLen.set(s, p.retLen); }
    const dot = s.indexOf('.', p.pos);
    if (dot >= 0 && p.pos === dot) out += ' [clone ' + s.slice(dot) + ']';
  } catch {
    out = s;
  }
  cache.set(s, out);
  return out;
}
