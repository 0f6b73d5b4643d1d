// syntaxes/cryo-image.tmLanguage.json on the text of real images (vscode-textmate with
// the oniguruma wasm, as VS Code tokenizes): the tokens to check are found from the
// image's JSON description (its pc, signal, paths, registers...), never written here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import * as onig from 'vscode-oniguruma';
import * as tm from 'vscode-textmate';
import { Image, type ImageDescription } from '../../adapter/engine';
import { renderImage } from '../../adapter/imagetext';
import { repoRoot } from '../helpers/fixtures';
import { assertNoImageProcesses, cleanupDirs, ensureBuilt } from '../images/common';
import { nullCrash, threadsSnapshot } from './images';

const grammarPath = join(repoRoot, 'syntaxes', 'cryo-image.tmLanguage.json');
let grammar: tm.IGrammar;

before(async () => {
  ensureBuilt();
  const wasm = readFileSync(join(repoRoot, 'node_modules', 'vscode-oniguruma', 'release', 'onig.wasm'));
  await onig.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new tm.Registry({
    onigLib: Promise.resolve({ createOnigScanner: (p: string[]) => new onig.OnigScanner(p), createOnigString: (s: string) => new onig.OnigString(s) }),
    loadGrammar: async (scope) => (scope === 'source.cryo-image' ? tm.parseRawGrammar(readFileSync(grammarPath, 'utf8'), grammarPath) : null),
  });
  const g = await registry.loadGrammar('source.cryo-image');
  assert.ok(g, 'the grammar loads');
  grammar = g;
});
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

interface Tok {
  text: string;
  scopes: string[];
}

/** Every line's tokens. */
function tokenize(text: string): Tok[][] {
  let state = tm.INITIAL;
  return text.split('\n').map((line) => {
    const r = grammar.tokenizeLine(line, state);
    state = r.ruleStack;
    return r.tokens.map((t) => ({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes }));
  });
}

/** Asserts that the token equal to `text` on a line matching `where` (the first such, or every one) has `scope`. */
function expectScope(toks: Tok[][], lines: string[], where: (line: string) => boolean, text: string, scope: string, every = false): void {
  const idx = lines.map((l, i) => (where(l) ? i : -1)).filter((i) => i >= 0);
  assert.ok(idx.length, `a line for ${JSON.stringify(text)} (${scope})`);
  for (const i of every ? idx : idx.slice(0, 1)) {
    const t = toks[i].find((x) => x.text === text);
    assert.ok(t, `${JSON.stringify(text)} is one token on line ${i}: ${JSON.stringify(lines[i])} -> ${JSON.stringify(toks[i].map((x) => x.text))}`);
    const scopes = t.scopes.join(' ');
    assert.ok(t.scopes.some((s) => s.startsWith(scope + '.') || s === scope), `${JSON.stringify(text)} on line ${i} has ${scope}: ${scopes}`);
  }
}

function describeImage(path: string): ImageDescription {
  const img = new Image(path);
  try {
    return img.describe();
  } finally {
    img.close();
  }
}

const hex12 = (a: string) => a.replace(/^0x/, '').padStart(12, '0');

describe('cryo-image grammar', () => {
  test('crash image: headings, addresses, signal, code, paths, registers, permissions, frames', () => {
    const { image } = nullCrash();
    const info = describeImage(image);
    assert.equal(info.reason.kind, 'crash');
    if (info.reason.kind !== 'crash') return;
    const text = renderImage(image);
    const lines = text.split('\n');
    const toks = tokenize(text);

    // section headings (the words before the colon of each unindented section line)
    for (const h of ['reason', 'threads', 'mappings', 'files', 'signal actions', 'revive here'])
      expectScope(toks, lines, (l) => l.startsWith(h + ':'), h, 'markup.heading');
    expectScope(toks, lines, (l) => l.startsWith('process '), 'process', 'markup.heading');

    // the crash: signal name and code name, the pc as an address
    const reason = (l: string) => l.startsWith('reason:');
    expectScope(toks, lines, reason, info.reason.signal_name, 'constant.language.signal');
    expectScope(toks, lines, reason, info.reason.code_name, 'constant.language.signal-code');
    expectScope(toks, lines, reason, info.reason.pc, 'constant.numeric.hex.address');
    expectScope(toks, lines, reason, String(info.reason.signal), 'constant.numeric.decimal');

    // the process block: keys and paths
    expectScope(toks, lines, (l) => /^ {2}exe\s/.test(l), 'exe', 'support.type.property-name');
    expectScope(toks, lines, (l) => /^ {2}exe\s/.test(l), info.process.exe, 'string.unquoted.path');
    expectScope(toks, lines, (l) => /^ {2}cwd\s/.test(l), info.process.cwd, 'string.unquoted.path');
    if (info.process.exe_build_id) expectScope(toks, lines, (l) => /^ {2}build-id\s/.test(l), info.process.exe_build_id, 'constant.other.build-id');

    // every thread's heading: its id, pc and sp; every register name and value
    for (const t of info.threads) {
      const head = (l: string) => l.startsWith(`  thread ${t.tid} `);
      expectScope(toks, lines, head, String(t.tid), 'constant.numeric.decimal');
      expectScope(toks, lines, head, t.pc, 'constant.numeric.hex.address');
      expectScope(toks, lines, head, t.sp, 'constant.numeric.hex.address');
      for (const [name, value] of Object.entries(t.regs)) {
        const padded = '0x' + value.replace(/^0x/, '').padStart(16, '0');
        const row = (l: string) => new RegExp(`\\b${name} ${padded}\\b`).test(l);
        expectScope(toks, lines, row, name, 'variable.language.register');
        expectScope(toks, lines, row, padded, 'constant.numeric.hex');
      }
    }

    // every mapping: both bounds, permissions, kind, path (or special name)
    for (const m of info.mappings) {
      const row = (l: string) => l.startsWith(`  ${hex12(m.start)}-${hex12(m.end)} `);
      expectScope(toks, lines, row, hex12(m.start), 'constant.numeric.hex.address');
      expectScope(toks, lines, row, hex12(m.end), 'constant.numeric.hex.address');
      expectScope(toks, lines, row, m.perms, 'storage.modifier.permissions');
      expectScope(toks, lines, row, m.kind, 'storage.type.mapping-kind');
      if (m.path.startsWith('/')) expectScope(toks, lines, row, m.path, 'string.unquoted.path');
      else if (m.path) expectScope(toks, lines, row, m.path, 'constant.language.special-mapping');
    }

    // descriptors: number, type, octal flags, path
    for (const f of info.files) {
      const row = (l: string) => new RegExp(`^\\s+${f.fd}\\s+${f.type}\\s`).test(l);
      expectScope(toks, lines, row, String(f.fd), 'constant.numeric.decimal');
      expectScope(toks, lines, row, f.type, 'storage.type.file-type');
      expectScope(toks, lines, row, f.flags, 'constant.numeric.octal');
      if (f.path.startsWith('/')) expectScope(toks, lines, row, f.path, 'string.unquoted.path');
    }

    // frame lines (added by imagetext): index, address, function, file:line
    const frames = lines.filter((l) => /^\s+#\d+\s+0x/.test(l));
    assert.ok(frames.length >= 2, 'frame lines');
    const f0 = /^\s+(#0)\s+(0x[0-9a-f]+) in (\S+) at (.+):(\d+)$/.exec(frames[0]);
    assert.ok(f0, frames[0]);
    const isF0 = (l: string) => l === frames[0];
    expectScope(toks, lines, isF0, f0[1], 'constant.numeric.frame-index');
    expectScope(toks, lines, isF0, f0[2], 'constant.numeric.hex.address');
    assert.equal(BigInt(f0[2]), BigInt(info.reason.pc), 'frame 0 is at the crashing pc');
    expectScope(toks, lines, isF0, f0[3], 'entity.name.function');
    expectScope(toks, lines, isF0, f0[4], 'string.unquoted.path');
    expectScope(toks, lines, isF0, f0[5], 'constant.numeric.line');

    // the revive verdict: each problem line is marked
    for (const [i, l] of lines.entries()) if (/^ {2}- /.test(l)) assert.ok(toks[i].some((t) => t.scopes.some((s) => s.startsWith('invalid.illegal.problem'))), `problem on line ${i}`);
  });

  test('snapshot of four threads: every thread heading and frame function', async () => {
    const image = await threadsSnapshot();
    const info = describeImage(image);
    const text = renderImage(image);
    const lines = text.split('\n');
    const toks = tokenize(text);
    expectScope(toks, lines, (l) => l.startsWith('reason:'), 'snapshot', 'keyword.other.reason');
    for (const t of info.threads) expectScope(toks, lines, (l) => l.startsWith(`  thread ${t.tid} `), 'thread', 'keyword.other.thread');
    const fnRows = lines.filter((l) => / in worker at /.test(l));
    assert.equal(fnRows.length, info.threads.length - 1, 'one worker frame per worker thread');
    expectScope(toks, lines, (l) => / in worker at /.test(l), 'worker', 'entity.name.function', true);
    // library frames name their module
    const libRow = lines.find((l) => /^\s+#\d+ .* \(libc\.so\.6\)$/.test(l));
    if (libRow) expectScope(toks, lines, (l) => l === libRow, 'libc.so.6', 'entity.name.module');
    for (const s of info.signals) {
      const row = (l: string) => new RegExp(`^ {2}${s.name.replace('+', '\\+')}\\s`).test(l);
      expectScope(toks, lines, row, s.name, 'constant.language.signal');
    }
  });
});
