// Function names as gdb shows them. gdb names a C++ function by its "physname": the
// demangled DW_AT_linkage_name, or, where GCC gives none (lambdas and everything
// instantiated with a lambda type, functions with internal linkage), a name it builds from
// DWARF: scope, DW_AT_name, parameter types as its type printer spells them. Frames show
// that name without its parameters when gdb's C++ name parser can take it apart
// (cp_remove_params), and in full when it cannot.
import { Die, DW } from './dwarf';
import { demangleNoReturn, removeParams } from './demangle';
import { qualifiedName } from './module';
import { strip, typeName, typeOf } from './types';

/** The name gdb gives the function in frames (`bt`, `frame`, stepping). */
export function functionName(die: Die): string {
  if (!die.cu.isCxx) return qualifiedName(die);
  const full = physname(die);
  if (full === undefined) return qualifiedName(die);
  return parsesAsName(full) ? removeParams(full) : full;
}

/** The full name gdb prints for a function in `<...>` (with parameters), C++ only; undefined
 * when our demangler cannot read the linkage name. */
export function physname(die: Die): string | undefined {
  const d = die.lookup(DW.AT_linkage_name) ?? die.lookup(DW.AT_MIPS_linkage_name);
  const ln = d?.str(DW.AT_linkage_name) ?? d?.str(DW.AT_MIPS_linkage_name);
  if (ln) {
    if (!ln.startsWith('_Z')) return undefined;
    const dm = demangleNoReturn(ln);
    return dm !== ln ? dm : undefined;
  }
  return computedPhysname(die);
}

/** gdb's dwarf2_compute_name with physname set: scope::name(params)[ const]. */
function computedPhysname(die: Die): string | undefined {
  const name = die.lookup(DW.AT_name)?.str(DW.AT_name);
  if (name === undefined) return undefined;
  const prefix = scopePrefix(die);
  let out = prefix ? `${prefix}::${name}` : name;
  if (!name.includes('<')) {
    const tps = templateParams(die);
    if (tps.length) { const j = tps.join(', '); out += `<${j}${j.endsWith('>') ? ' >' : '>'}`; }
  }
  const params: string[] = [];
  let constThis = false;
  die.children.forEach((ch, i) => {
    if (ch.tag === DW.TAG_unspecified_parameters) { params.push('...'); return; }
    if (ch.tag !== DW.TAG_formal_parameter) return;
    const type = typeOf(ch.type);
    if (ch.lookup(DW.AT_artificial)?.flag(DW.AT_artificial)) {
      // `this`: a pointer to const makes the method const
      const s = strip(type);
      if (i === firstParam(die) && s.k === 'ptr' && s.to.k === 'cv' && s.to.q.includes('const')) constThis = true;
      return;
    }
    params.push(canonicalBaseNames(typeName(type)));
  });
  return `${out}(${params.length ? params.join(', ') : 'void'})${constThis ? ' const' : ''}`;
}

function firstParam(die: Die): number {
  return die.children.findIndex((c) => c.tag === DW.TAG_formal_parameter);
}

/** The scope gdb prefixes (determine_prefix): namespaces and named classes; an unnamed
 * class (a lambda's closure type) or a function ends it. */
function scopePrefix(die: Die): string {
  let d: Die = die;
  for (let i = 0; i < 8; i++) {
    const o = d.ref(DW.AT_specification) ?? d.ref(DW.AT_abstract_origin);
    if (!o) break;
    d = o;
  }
  const parts: string[] = [];
  for (let p = d.parent; p && p.tag !== DW.TAG_compile_unit && p.tag !== DW.TAG_type_unit; p = p.parent) {
    if (p.tag === DW.TAG_namespace) parts.unshift(p.str(DW.AT_name) ?? '(anonymous namespace)');
    else if (p.tag === DW.TAG_structure_type || p.tag === DW.TAG_class_type || p.tag === DW.TAG_union_type) {
      if (p.str(DW.AT_name) !== undefined) parts.unshift(qualifiedName(p));
      break;
    } else break;
  }
  return parts.join('::');
}

function templateParams(die: Die): string[] {
  const out: string[] = [];
  for (const ch of die.children) {
    if (ch.tag === DW.TAG_template_type_param) out.push(canonicalBaseNames(typeName(typeOf(ch.type))));
    else if (ch.tag === DW.TAG_template_value_param) out.push(String(ch.snum(DW.AT_const_value) ?? '?'));
  }
  return out;
}

/** gdb canonicalizes C++ base type names as it reads them (`long int` is `long`). */
function canonicalBaseNames(t: string): string {
  return t
    .replace(/\blong long unsigned int\b/g, 'unsigned long long')
    .replace(/\blong long int\b/g, 'long long')
    .replace(/\blong unsigned int\b/g, 'unsigned long')
    .replace(/\bshort unsigned int\b/g, 'unsigned short')
    .replace(/\blong int\b/g, 'long')
    .replace(/\bshort int\b/g, 'short');
}

/**
 * Whether gdb's C++ name parser reads a full name, so that frames show it without its
 * parameters. Seen failing with gdb 13: lambda closure types (`{lambda(int)#1}`,
 * `<lambda(int)>`), unnamed classes (`struct {...}`), function types among template arguments
 * (`std::function<int (int)>`, but not pointers or references to functions), ref-qualified
 * methods (`area() const &`), members of classes local to a function.
 */
export function parsesAsName(name: string): boolean {
  const full = name.replace(/\(anonymous namespace\)/g, 'anonymous_namespace');
  if (/\{lambda\(|<lambda\(|\{\.\.\.\}|\{unnamed |string literal/.test(full)) return false;
  if (/\)(?: const| volatile)* &&?$/.test(full)) return false;
  // a class local to a function (`f(int)::Local::m()`)
  if (/\)(?: const| volatile)*::/.test(full)) return false;
  // a '(' inside template arguments right after a type is a function type
  let depth = 0;
  for (let i = 0; i < full.length; i++) {
    const c = full[i];
    if (full.startsWith('operator', i) && !/\w/.test(full[i - 1] ?? '')) {
      // operator<, operator<<, operator(), operator-> ...: not brackets
      i += 8;
      while (i < full.length && /[<>=!+\-*/%^&|~,()[\] ]/.test(full[i]) && !(full[i] === '(' && full[i + 1] !== ')')) {
        if (full[i] === '(' && full[i + 1] === ')') i++;
        i++;
      }
      i--;
      continue;
    }
    if (c === '<') depth++;
    else if (c === '>') depth--;
    else if (c === '(' && depth > 0) {
      let j = i - 1;
      while (j >= 0 && full[j] === ' ') j--;
      if (j >= 0 && /[\w>\]]/.test(full[j]) && !/^\((?:\*|&|[\w:<>, ]+::\*)/.test(full.slice(i))) return false;
    }
  }
  return true;
}
