// Call sites: DW_TAG_call_site (DWARF 5) and DW_TAG_GNU_call_site (GCC's DWARF 4 extension)
// describe each call a function makes: where it returns, what it calls, and the values its
// parameters had at the call (DW_TAG_call_site_parameter). Both spellings are read alike.
import { Attr, Die, DW } from './dwarf';

const AT = {
  call_pc: 0x81, call_tail_call: 0x82, call_target: 0x83, call_data_value: 0x86,
  GNU_call_site_data_value: 0x2112, GNU_call_site_target: 0x2113, GNU_tail_call: 0x2115,
} as const;

export function isCallSite(d: Die): boolean {
  return d.tag === DW.TAG_call_site || d.tag === DW.TAG_GNU_call_site;
}

/** Link-time return address of a call (GNU call sites give it as DW_AT_low_pc). */
export function returnPc(site: Die): bigint | undefined {
  const a = site.attr(DW.AT_call_return_pc) ?? site.attr(DW.AT_low_pc);
  return typeof a?.v === 'bigint' ? a.v : undefined;
}

export function isTailCall(site: Die): boolean {
  return site.flag(AT.call_tail_call) || site.flag(AT.GNU_tail_call);
}

/** DW_AT_call_target: an expression giving the address called (indirect calls). */
export function targetExpr(site: Die): Attr | undefined {
  return site.attr(AT.call_target) ?? site.attr(AT.GNU_call_site_target);
}

/** The function a direct call calls (DW_AT_call_origin, GNU's DW_AT_abstract_origin). */
export function targetDie(site: Die): Die | undefined {
  return site.ref(DW.AT_call_origin) ?? site.ref(DW.AT_abstract_origin);
}

/** A parameter's value at the call (DW_AT_call_value). */
export function callValue(param: Die): Attr | undefined {
  return param.attr(DW.AT_call_value) ?? param.attr(DW.AT_GNU_call_site_value);
}

/** The value a reference parameter pointed to at the call (DW_AT_call_data_value). */
export function callDataValue(param: Die): Attr | undefined {
  return param.attr(AT.call_data_value) ?? param.attr(AT.GNU_call_site_data_value);
}

/** Call sites of a function, in its blocks and inlined code but not in nested functions. */
export function callSites(fn: Die, tailOnly = false): Die[] {
  const out: Die[] = [];
  const walk = (d: Die) => {
    for (const ch of d.children) {
      if (isCallSite(ch)) { if (!tailOnly || isTailCall(ch)) out.push(ch); }
      else if (ch.tag !== DW.TAG_subprogram && ch.children.length) walk(ch);
    }
  };
  walk(fn);
  return out;
}

/** The call site of a function that returns to `retAddr` (link-time). */
export function callSiteAt(fn: Die, retAddr: bigint): Die | undefined {
  return callSites(fn).find((s) => returnPc(s) === retAddr);
}
