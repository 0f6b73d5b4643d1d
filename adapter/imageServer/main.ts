// The language server of "Cryo: Show Image as Text" documents (language cryo-image,
// URIs cryo-image:/abs/path.cryo): outline, hovers on addresses, go to source from a
// code address, diagnostics for what stops a revive here, and Debug/Revive lenses.
// It also renders the text itself (request cryo/imageText) so that the extension host
// never loads the native engine: one process opens each image, once.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  CodeLens,
  createConnection,
  Diagnostic,
  DiagnosticSeverity,
  DocumentSymbol,
  Hover,
  Location,
  MarkupKind,
  ProposedFeatures,
  Range,
  SymbolKind,
  TextDocuments,
  TextDocumentSyncKind,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { ImageView, problemList } from '../imagetext';
import { addressAt, parseImageText, type ImageText, type TextFrame } from './parse';

// stdout may be the protocol stream: nothing else may write there
console.log = console.info = console.warn = console.error;

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);

/** Open images by path; an entry lives while a document shows it (or until its text is asked again). */
const views = new Map<string, ImageView>();
const openErrors = new Map<string, string>();
const parsed = new Map<string, ImageText>();

function imagePathOf(uri: string): string {
  return decodeURIComponent(new URL(uri).pathname);
}

function view(path: string): ImageView | undefined {
  let v = views.get(path);
  if (!v) {
    try {
      v = new ImageView(path);
      views.set(path, v);
      openErrors.delete(path);
    } catch (e) {
      openErrors.set(path, (e as Error).message);
    }
  }
  return v;
}

function release(path: string): void {
  if (documents.all().some((d) => imagePathOf(d.uri) === path)) return;
  views.get(path)?.close();
  views.delete(path);
  openErrors.delete(path);
}

function textOf(uri: string): ImageText | undefined {
  let t = parsed.get(uri);
  if (!t) {
    const d = documents.get(uri);
    if (!d) return undefined;
    parsed.set(uri, (t = parseImageText(d.getText())));
  }
  return t;
}

connection.onInitialize(() => ({
  capabilities: {
    textDocumentSync: TextDocumentSyncKind.Full,
    documentSymbolProvider: true,
    hoverProvider: true,
    definitionProvider: true,
    codeLensProvider: { resolveProvider: false },
  },
  serverInfo: { name: 'cryo-image' },
}));

connection.onRequest('cryo/imageText', (params: { path: string }) => {
  const v = view(params.path);
  if (!v) throw new Error(openErrors.get(params.path) ?? `cannot open ${params.path}`);
  return v.text();
});

documents.onDidOpen((e) => {
  view(imagePathOf(e.document.uri));
});
documents.onDidChangeContent((e) => {
  parsed.delete(e.document.uri);
  publishDiagnostics(e.document.uri);
});
documents.onDidClose((e) => {
  parsed.delete(e.document.uri);
  void connection.sendDiagnostics({ uri: e.document.uri, diagnostics: [] });
  // the document is still listed while this event runs
  setImmediate(() => release(imagePathOf(e.document.uri)));
});

function lineRange(t: ImageText, line: number, from = 0, to?: number): Range {
  const len = t.lines[line]?.length ?? 0;
  return Range.create(line, Math.min(from, len), line, Math.min(to ?? len, len));
}

function blockRange(t: ImageText, line: number, end: number): Range {
  return Range.create(line, 0, end, t.lines[end]?.length ?? 0);
}

// ---------- diagnostics ----------

const SPECIAL_NOTES: Record<string, string> = {
  vvar: 'the kernel\'s [vvar] data: not stored in the image (unreadable); a revive maps this kernel\'s own here',
  vvar_vclock: 'the kernel\'s [vvar_vclock] clock pages: not stored; a revive maps this kernel\'s own here',
  vsyscall: 'the legacy [vsyscall] page: fixed by the kernel, never stored or restored',
  vdso: 'the kernel\'s [vdso] code: stored (to unwind through it); a revive needs the same kernel',
};

/** The lines of the text a revive problem is about (the message names a file, a descriptor...). */
function problemLines(t: ImageText, p: string): number[] {
  let m: RegExpExecArray | null;
  if ((m = /^mapped file (.+?)(?::| changed since)/.exec(p))) {
    const path = m[1];
    const out: number[] = [];
    const first = t.mappings.find((x) => x.path === path);
    if (first) out.push(first.line);
    const exe = t.keys.get('exe');
    if (exe !== undefined && t.lines[exe].trim().endsWith(path)) out.push(exe);
    return out;
  }
  if ((m = /^descriptor (\d+)/.exec(p))) return t.files.filter((f) => f.fd === Number(m![1])).map((f) => f.line);
  if (/^working directory/.test(p)) return keyLine(t, 'cwd');
  if (/kernel [^ ]+, this is|taken on kernel/.test(p)) return keyLine(t, 'taken');
  if (/CPU state|XCR0/.test(p)) return keyLine(t, 'xcr0');
  if (/^the process ran as uid/.test(p)) return keyLine(t, 'uid/gid');
  if ((m = /^thread (\d+) has an xsave/.exec(p))) return t.threads.filter((x) => x.tid === Number(m![1])).map((x) => x.line);
  if ((m = /\b(vdso|vvar_vclock|vvar|vsyscall)\b/i.exec(p))) {
    const kind = m[1].toLowerCase();
    return t.mappings.filter((x) => x.kind === kind).slice(0, 1).map((x) => x.line);
  }
  if (/main thread/.test(p)) return t.sections.filter((s) => s.name === 'threads').map((s) => s.line);
  return [];
}

function keyLine(t: ImageText, key: string): number[] {
  const n = t.keys.get(key);
  return n === undefined ? [] : [n];
}

function diagnostics(uri: string): Diagnostic[] {
  const t = textOf(uri);
  if (!t) return [];
  const path = imagePathOf(uri);
  const v = views.get(path);
  if (!v) return [Diagnostic.create(lineRange(t, 0), `cannot open the image: ${openErrors.get(path) ?? 'unknown error'}`, DiagnosticSeverity.Error, undefined, 'cryo')];
  const out: Diagnostic[] = [];
  const problems = v.image.problems();
  for (const p of problems ? problemList(problems) : []) {
    let lines = problemLines(t, p);
    // otherwise on its own line of the "revive here" list, else the first line
    if (!lines.length) lines = t.problems.filter((x) => x.text === p).map((x) => x.line).slice(0, 1);
    if (!lines.length) lines = [0];
    for (const n of lines) out.push(Diagnostic.create(lineRange(t, n, indent(t.lines[n])), `cannot revive here: ${p}`, DiagnosticSeverity.Warning, undefined, 'cryo'));
  }
  for (const m of t.mappings) {
    const note = SPECIAL_NOTES[m.kind];
    if (note) out.push(Diagnostic.create(lineRange(t, m.line, indent(t.lines[m.line])), note, DiagnosticSeverity.Information, undefined, 'cryo'));
  }
  if (v.programError) out.push(Diagnostic.create(lineRange(t, t.keys.get('exe') ?? 0), `no symbols: ${v.programError}`, DiagnosticSeverity.Warning, undefined, 'cryo'));
  return out;
}

function indent(line: string | undefined): number {
  return line ? line.length - line.trimStart().length : 0;
}

function publishDiagnostics(uri: string): void {
  void connection.sendDiagnostics({ uri, diagnostics: diagnostics(uri) });
}

// ---------- outline ----------

connection.onDocumentSymbol(({ textDocument }) => {
  const t = textOf(textDocument.uri);
  if (!t) return [];
  const out: DocumentSymbol[] = [];
  // the selection is the symbol's first line (a thread's heading, a section's title)
  const sym = (name: string, kind: SymbolKind, range: Range, detail?: string, children?: DocumentSymbol[]): DocumentSymbol =>
    DocumentSymbol.create(name || '?', detail, kind, range, range.start.line === range.end.line ? range : lineRange(t, range.start.line), children);
  const section = (name: string) => t.sections.find((s) => s.name === name);

  if (t.process) {
    const kids = [...t.keys].map(([k, n]) => sym(k, k === 'exe' ? SymbolKind.File : SymbolKind.Property, lineRange(t, n, 2), t.lines[n].slice(2 + k.length).trim()));
    out.push(sym(`process ${t.process.pid} (${t.process.comm})`, SymbolKind.Module, blockRange(t, t.process.line, t.process.end), undefined, kids));
  }
  if (t.reason) out.push(sym(`reason: ${t.reason.text.replace(/,.*$/, '')}`, SymbolKind.Event, lineRange(t, t.reason.line)));
  const threads = section('threads');
  if (threads) {
    const kids = t.threads.map((th) =>
      sym(
        `thread ${th.tid}`,
        SymbolKind.Object,
        blockRange(t, th.line, th.end),
        // where the program itself is: the first frame with source outside the libraries
        th.tid === t.reason?.tid ? 'crashed' : (th.frames.find((f) => f.file && !f.module) ?? th.frames[0])?.function,
        th.frames.map((f) => sym(f.function, SymbolKind.Function, lineRange(t, f.line, indent(t.lines[f.line])), `#${f.index}${f.file ? ` ${f.file}:${f.fileLine}` : f.module ? ` (${f.module})` : ''}`)),
      ),
    );
    out.push(sym('threads', SymbolKind.Namespace, blockRange(t, threads.line, threads.end), String(t.threads.length), kids));
  }
  const maps = section('mappings');
  if (maps) {
    const kids = t.mappings.map((m) =>
      sym(m.path || `[${m.kind}]`, m.path.startsWith('/') ? SymbolKind.File : SymbolKind.Variable, lineRange(t, m.line, 2), `${hex(m.start)}-${hex(m.end)} ${m.perms}`),
    );
    out.push(sym('mappings', SymbolKind.Namespace, blockRange(t, maps.line, maps.end), String(t.mappings.length), kids));
  }
  const files = section('files');
  if (files) {
    const kids = t.files.map((f) => sym(`fd ${f.fd}`, SymbolKind.File, lineRange(t, f.line, indent(t.lines[f.line])), `${f.type} ${f.path}`));
    out.push(sym('files', SymbolKind.Namespace, blockRange(t, files.line, files.end), String(t.files.length), kids));
  }
  const sigs = section('signal actions');
  if (sigs) {
    const kids = t.signals.map((s) => sym(s.name, SymbolKind.Event, lineRange(t, s.line, 2), s.text));
    out.push(sym('signal actions', SymbolKind.Namespace, blockRange(t, sigs.line, sigs.end), String(t.signals.length), kids));
  }
  // a crash image with its last moments: the checkpoints it carries
  const hist = section('history');
  if (hist) {
    const kids = t.checkpoints.map((c) => sym(`checkpoint ${c.index}`, SymbolKind.Event, lineRange(t, c.line, 2), c.text));
    out.push(sym('checkpoints', SymbolKind.Namespace, blockRange(t, hist.line, hist.end), t.lines[hist.line].replace(/^history:\s*/, ''), kids));
  }
  const revive = section('revive here');
  if (revive) {
    const kids = t.problems.map((p) => sym(p.text, SymbolKind.String, lineRange(t, p.line, 2)));
    out.push(sym('revive here', SymbolKind.Namespace, blockRange(t, revive.line, revive.end), t.lines[revive.line].replace(/^revive here:\s*/, ''), kids));
  }
  return out;
});

function hex(n: bigint): string {
  return '0x' + n.toString(16);
}

// ---------- hover ----------

type Mapping = ImageView['target']['info']['mappings'][number] & { runs?: [string, number, number][]; content_stored?: boolean };

function mappingAt(v: ImageView, addr: bigint): Mapping | undefined {
  return (v.target.info.mappings as Mapping[]).find((m) => BigInt(m.start) <= addr && addr < BigInt(m.end));
}

/** What the image holds for the page of addr (the mapping's page runs). */
function pageState(m: Mapping, addr: bigint): string {
  let page = Number((addr - BigInt(m.start)) / 4096n);
  for (const [kind, count] of m.runs ?? []) {
    if (page < count) {
      switch (kind) {
        case 'data': return 'the image holds this page';
        case 'zero': return 'the page is all zeros (not stored: nothing to hold)';
        case 'absent': return m.path.startsWith('/') && !m.content_stored ? `never touched: its content is the file's (${m.path}), not in the image` : 'never touched: not in the image (reads as zeros)';
        case 'unreadable': return 'unreadable when the image was taken: not in the image';
        case 'file': return `a clean page of ${m.path}: not in the image, read from the file`;
        default: return `page kind ${kind}`;
      }
    }
    page -= count;
  }
  return 'no page information';
}

/** The frame a line shows, when the line is one of the frame lines. */
function frameOnLine(t: ImageText, line: number): TextFrame | undefined {
  for (const th of t.threads) for (const f of th.frames) if (f.line === line) return f;
  return undefined;
}

/** Where a code address is in the sources. A frame line's own address is its frame's:
 * the line printed there (callers' frames are at the call, pc-1, not the return address). */
function sourceOf(v: ImageView, addr: bigint, frame?: TextFrame): { file: string; line: number } | undefined {
  if (frame && frame.pc === addr) {
    if (frame.file && frame.fileLine) return { file: frame.file, line: frame.fileLine };
    if (frame.index > 0) addr -= 1n;
  }
  const mod = v.program?.moduleFor(addr);
  if (!mod || v.stale.has(mod)) return undefined;
  const s = v.program?.describe(addr).source;
  return s && s.line ? { file: s.file, line: s.line } : undefined;
}

connection.onHover(({ textDocument, position }): Hover | null => {
  const t = textOf(textDocument.uri);
  const v = views.get(imagePathOf(textDocument.uri));
  if (!t || !v) return null;
  const line = t.lines[position.line] ?? '';
  const a = addressAt(line, position.character);
  if (!a) return null;
  const addr = a.value;
  const md: string[] = [`**${hex(addr)}**`];
  const m = mappingAt(v, addr);
  if (!m) md.push('not in any mapping of the image');
  else {
    const what = m.path || `anonymous (${m.kind})`;
    md.push(`mapping \`${m.start.replace(/^0x/, '')}-${m.end.replace(/^0x/, '')}\` \`${m.perms}\` ${m.kind}: \`${what}\`` + (m.path.startsWith('/') ? ` at file offset ${hex(addr - BigInt(m.start) + BigInt(m.offset))}` : ''));
    const p = v.program;
    const frame = frameOnLine(t, position.line);
    const mod = p?.moduleFor(addr);
    if (mod && v.stale.has(mod)) md.push(`no symbols: ${mod.path} changed since the image was taken (another build-id)`);
    else if (p && mod) {
      const isCode = m.perms.includes('x');
      const lookup = frame && frame.index > 0 && frame.pc === addr ? addr - 1n : addr;
      const sym = p.symbolize(addr, !isCode);
      if (isCode) {
        const fn = p.describe(lookup).function;
        const src = sourceOf(v, addr, frame);
        md.push(`code: \`${sym ?? fn ?? '??'}\`${fn && sym && !sym.startsWith(fn) ? ` in \`${fn}\`` : ''}${src ? ` at ${src.file}:${src.line}` : ''}`);
      } else if (sym) md.push(`data: \`${sym}\``);
    }
    md.push(pageState(m, addr));
  }
  return {
    contents: { kind: MarkupKind.Markdown, value: md.join('\n\n') },
    range: Range.create(position.line, a.start, position.line, a.end),
  };
});

// ---------- definition ----------

connection.onDefinition(({ textDocument, position }): Location | null => {
  const t = textOf(textDocument.uri);
  const v = views.get(imagePathOf(textDocument.uri));
  if (!t || !v) return null;
  const frame = frameOnLine(t, position.line);
  const a = addressAt(t.lines[position.line] ?? '', position.character);
  let src: { file: string; line: number } | undefined;
  if (a) {
    const m = mappingAt(v, a.value);
    if (!m || !m.perms.includes('x')) return null;
    src = sourceOf(v, a.value, frame);
  } else if (frame?.file && frame.fileLine) src = { file: frame.file, line: frame.fileLine }; // anywhere else on a frame line
  if (!src || !isAbsolute(src.file) || !existsSync(src.file)) return null;
  return Location.create(pathToFileURL(src.file).toString(), Range.create(src.line - 1, 0, src.line - 1, 0));
});

// ---------- code lenses ----------

connection.onCodeLens(({ textDocument }): CodeLens[] => {
  const path = imagePathOf(textDocument.uri);
  const top = Range.create(0, 0, 0, 0);
  return [
    { range: top, command: { title: 'Debug', command: 'cryo.debugImage', arguments: [path] } },
    { range: top, command: { title: 'Revive', command: 'cryo.reviveImage', arguments: [path] } },
  ];
});

connection.onShutdown(() => {
  for (const v of views.values()) v.close();
  views.clear();
});

documents.listen(connection);
connection.listen();
