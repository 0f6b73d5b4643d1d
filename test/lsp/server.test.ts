// The image language server (dist/imageServer.js) through a real LSP connection, as
// VS Code's client talks to it: outline, hover, definition, diagnostics and code lenses
// on the text of real images, checked against gdb on the same binary at the same crash.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, test } from 'node:test';
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from 'vscode-jsonrpc/node';
import type { CodeLens, Diagnostic, DocumentSymbol, Hover, Location, MarkupContent, PublishDiagnosticsParams } from 'vscode-languageserver-protocol';
import { Image } from '../../adapter/engine';
import { renderImage } from '../../adapter/imagetext';
import { repoRoot } from '../helpers/fixtures';
import { gdbBatch } from '../helpers/gdb';
import { crashImage as sharedCrashImage } from '../helpers/crashimage.cjs';
import { assertNoImageProcesses, cleanupDirs, cryoBin, ensureBuilt, exited, fixture, tmp } from '../images/common';
import { buildBundles, nullCrash, threadsSnapshot } from './images';

const serverPath = join(repoRoot, 'dist', 'imageServer.js');

before(() => {
  ensureBuilt();
  buildBundles();
});
afterEach(() => {
  cleanupDirs();
  assertNoImageProcesses('after test');
});
after(() => assertNoImageProcesses('after suite'));

class Client {
  readonly proc: ChildProcess;
  readonly conn: MessageConnection;
  private diags = new Map<string, Diagnostic[]>();
  private waiters: (() => void)[] = [];
  stderr = '';

  constructor() {
    this.proc = spawn(process.execPath, [serverPath, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stderr!.on('data', (d) => (this.stderr += d));
    this.conn = createMessageConnection(new StreamMessageReader(this.proc.stdout!), new StreamMessageWriter(this.proc.stdin!));
    this.conn.onNotification('textDocument/publishDiagnostics', (p: PublishDiagnosticsParams) => {
      this.diags.set(p.uri, p.diagnostics);
      for (const w of this.waiters.splice(0)) w();
    });
    this.conn.listen();
  }

  async initialize(): Promise<{ capabilities: Record<string, unknown> }> {
    const r = await this.conn.sendRequest<{ capabilities: Record<string, unknown> }>('initialize', { processId: process.pid, rootUri: null, capabilities: {} });
    await this.conn.sendNotification('initialized', {});
    return r;
  }

  async open(image: string): Promise<{ uri: string; text: string }> {
    const uri = 'cryo-image:' + encodeURI(image);
    const text = renderImage(image);
    await this.conn.sendNotification('textDocument/didOpen', { textDocument: { uri, languageId: 'cryo-image', version: 1, text } });
    return { uri, text };
  }

  async diagnostics(uri: string, ms = 20_000): Promise<Diagnostic[]> {
    const end = Date.now() + ms;
    while (!this.diags.has(uri)) {
      if (Date.now() > end) throw new Error(`no diagnostics for ${uri}; server stderr: ${this.stderr}`);
      await new Promise<void>((res) => {
        this.waiters.push(res);
        setTimeout(res, 200);
      });
    }
    return this.diags.get(uri)!;
  }

  /** shutdown then exit, as VS Code stops a server: the process must end by itself. */
  async stop(): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
    const done = exited(this.proc);
    await this.conn.sendRequest('shutdown');
    await this.conn.sendNotification('exit');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    const r = await done;
    clearTimeout(t);
    this.conn.dispose();
    return r;
  }
}

/** The position of the first occurrence of needle at or after line `from`. */
function find(text: string, needle: string, from = 0): { line: number; character: number } {
  const lines = text.split('\n');
  for (let i = from; i < lines.length; i++) {
    const c = lines[i].indexOf(needle);
    if (c >= 0) return { line: i, character: c };
  }
  throw new Error(`${needle} is not in the text`);
}

function hoverText(h: Hover | null): string {
  assert.ok(h, 'a hover');
  return (h.contents as MarkupContent).value;
}

/** gdb at the same crash: the frame names of `bt`, `info symbol $pc`, `info line *$pc`. */
function gdbAtCrash(prog: string) {
  const out = gdbBatch(prog, ['set debuginfod enabled off', 'run', 'bt', 'info symbol $pc', 'info line *$pc'], ['null']);
  const frames = [...out.matchAll(/^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(/gm)].map((m) => m[2]);
  const sym = /^(\S+) \+ (\d+) in section/m.exec(out);
  const line = /^Line (\d+) of "([^"]+)"/m.exec(out);
  assert.ok(frames.length >= 2 && sym && line, `gdb answered:\n${out}`);
  return { frames, symbol: `${sym[1]}+${sym[2]}`, line: Number(line[1]), file: line[2] };
}

describe('image language server', () => {
  test('crash image: outline, hover, definition and lenses agree with gdb; exits on shutdown', async () => {
    const { prog, image } = nullCrash();
    const g = gdbAtCrash(prog);
    const img = new Image(image);
    const info = img.describe();
    img.close();
    assert.equal(info.reason.kind, 'crash');
    const pc = info.reason.kind === 'crash' ? info.reason.pc : '';
    const tid = info.reason.kind === 'crash' ? info.reason.tid : 0;

    const c = new Client();
    try {
      const init = await c.initialize();
      for (const cap of ['documentSymbolProvider', 'hoverProvider', 'definitionProvider', 'codeLensProvider']) assert.ok(init.capabilities[cap], cap);
      const { uri, text } = await c.open(image);

      // outline: the process, the crashing thread with gdb's frames, every mapping
      const syms = await c.conn.sendRequest<DocumentSymbol[]>('textDocument/documentSymbol', { textDocument: { uri } });
      const names = syms.map((s) => s.name);
      assert.ok(names.includes(`process ${info.process.pid} (${info.process.comm})`), `process in ${names}`);
      const threads = syms.find((s) => s.name === 'threads');
      assert.ok(threads?.children, 'threads');
      const crashed = threads.children!.find((t) => t.name === `thread ${tid}`);
      assert.ok(crashed, `thread ${tid} in ${threads.children!.map((t) => t.name)}`);
      assert.equal(crashed.detail, 'crashed');
      assert.deepEqual(crashed.children!.slice(0, g.frames.length).map((f) => f.name), g.frames, "frames are gdb's bt");
      const maps = syms.find((s) => s.name === 'mappings');
      assert.equal(maps?.children?.length, info.mappings.length, 'one symbol per mapping');
      assert.ok(maps!.children!.some((m) => m.name === prog), 'the executable is among the mappings');
      for (const m of maps!.children!) assert.ok(m.detail?.startsWith('0x'), `range of ${m.name}`);

      // hover on the crashing pc (the thread's heading line): function+offset and file:line as gdb says
      const at = find(text, `pc ${pc}`, find(text, `thread ${tid}`).line);
      const pos = { line: at.line, character: at.character + 5 };
      const hover = hoverText(await c.conn.sendRequest<Hover | null>('textDocument/hover', { textDocument: { uri }, position: pos }));
      assert.ok(hover.includes(g.symbol), `${g.symbol} in hover:\n${hover}`);
      assert.ok(hover.includes(`${g.file}:${g.line}`), `${g.file}:${g.line} in hover:\n${hover}`);
      assert.ok(hover.includes('r-xp') && hover.includes(prog), `mapping in hover:\n${hover}`);

      // hover on a data address: the stack pointer's page is held by the image
      const sp = find(text, `sp ${info.threads.find((t) => t.tid === tid)!.sp}`, at.line);
      const spHover = hoverText(await c.conn.sendRequest<Hover | null>('textDocument/hover', { textDocument: { uri }, position: { line: sp.line, character: sp.character + 5 } }));
      assert.match(spHover, /\[stack\]/);
      assert.match(spHover, /the image holds this page/);

      // definition: the source line gdb gives
      const def = await c.conn.sendRequest<Location | Location[] | null>('textDocument/definition', { textDocument: { uri }, position: pos });
      const loc = Array.isArray(def) ? def[0] : def;
      assert.ok(loc, 'a definition');
      assert.equal(fileURLToPath(loc.uri), g.file);
      assert.equal(loc.range.start.line, g.line - 1);
      assert.equal(readFileSync(g.file, 'utf8').split('\n')[g.line - 1].includes('n->next->value'), true, 'the line of the fault');

      // lenses at the top: Debug and Revive of this image
      const lenses = await c.conn.sendRequest<CodeLens[]>('textDocument/codeLens', { textDocument: { uri } });
      const byCmd = new Map(lenses.map((l) => [l.command?.command, l]));
      for (const [cmd, title] of [['cryo.debugImage', 'Debug'], ['cryo.reviveImage', 'Revive']]) {
        const l = byCmd.get(cmd);
        assert.ok(l, `${cmd} lens`);
        assert.equal(l.command!.title, title);
        assert.deepEqual(l.command!.arguments, [image]);
        assert.equal(l.range.start.line, 0);
      }

      // special mappings are information, not problems
      const diags = await c.diagnostics(uri);
      const vvar = info.mappings.findIndex((m) => m.kind === 'vvar');
      if (vvar >= 0) {
        const line = find(text, info.mappings[vvar].start.replace(/^0x/, '').padStart(12, '0') + '-').line;
        assert.ok(diags.some((d) => d.range.start.line === line && d.severity === 3), `vvar note on line ${line}: ${JSON.stringify(diags)}`);
      }
    } finally {
      const r = await c.stop();
      assert.equal(r.status, 0, `the server exits 0 after shutdown+exit; stderr: ${c.stderr}`);
    }
  });

  test('a mapped file rebuilt since the image was taken is named by a diagnostic on its mapping', async () => {
    const { prog, image } = nullCrash();
    // same source, other flags: another build-id at the same path
    const cc = spawnSync('gcc', ['-O1', '-g', '-DREBUILT', '-o', prog, join(repoRoot, 'test', 'fixtures', 'img_crash.c')], { encoding: 'utf8' });
    assert.equal(cc.status, 0, cc.stderr);
    const c = new Client();
    try {
      await c.initialize();
      const { uri, text } = await c.open(image);
      const diags = await c.diagnostics(uri);
      const named = diags.filter((d) => d.message.includes(prog));
      assert.ok(named.length, `a diagnostic names ${prog}: ${JSON.stringify(diags)}`);
      assert.ok(named.some((d) => /build-id/.test(d.message)), 'says the build-id differs');
      const lines = text.split('\n');
      const mapLine = lines.findIndex((l) => /^ {2}[0-9a-f]+-[0-9a-f]+ /.test(l) && l.endsWith(prog));
      assert.ok(named.some((d) => d.range.start.line === mapLine), `on the mapping line ${mapLine}`);
      assert.ok(named.every((d) => d.severity === 2), 'a warning');
      // the rebuilt binary's symbols would lie about the image: no frames, no symbol in hovers
      assert.ok(lines.some((l) => l.includes('(no backtrace:') && l.includes(prog)), 'the frames say why they are missing');
      const pcAt = find(text, ' pc 0x', find(text, 'threads:').line);
      const hover = hoverText(await c.conn.sendRequest<Hover | null>('textDocument/hover', { textDocument: { uri }, position: { line: pcAt.line, character: pcAt.character + 6 } }));
      assert.match(hover, /no symbols: .* changed since the image was taken/);
      const def = await c.conn.sendRequest<Location | null>('textDocument/definition', { textDocument: { uri }, position: { line: pcAt.line, character: pcAt.character + 6 } });
      assert.equal(def, null, 'no definition from stale symbols');
    } finally {
      await c.stop();
    }
  });

  test('a crash image with its last moments lists its checkpoints in the outline', async () => {
    const prog = fixture('img_bundle.c', { name: 'img_bundle' });
    const dir = tmp('cryo-lsp-');
    const data = join(dir, 'data.bin');
    writeFileSync(data, Buffer.alloc(4096, 7));
    const input = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const image = sharedCrashImage(cryoBin, dir, prog, [data, '30'], { run: ['--checkpoint-every', '20', '--keep', '3'], input, timeout: 120_000 });
    const img = new Image(image);
    const hist = img.history();
    img.close();
    assert.ok(hist.length >= 1, 'the image carries checkpoints');
    const c = new Client();
    try {
      await c.initialize();
      const { uri } = await c.open(image);
      const syms = await c.conn.sendRequest<DocumentSymbol[]>('textDocument/documentSymbol', { textDocument: { uri } });
      const cps = syms.find((s) => s.name === 'checkpoints');
      assert.ok(cps, `an outline entry for the checkpoints: ${syms.map((s) => s.name)}`);
      assert.deepEqual(cps.children!.map((k) => k.name), hist.map((h) => `checkpoint ${h.index}`));
      for (const [i, k] of cps.children!.entries()) assert.match(k.detail ?? '', new RegExp(`pc 0x${hist[i].pc.toString(16)}`));
    } finally {
      await c.stop();
    }
  });

  test('snapshot of four threads: each thread with its frames in the outline', async () => {
    const image = await threadsSnapshot();
    const img = new Image(image);
    const info = img.describe();
    img.close();
    const c = new Client();
    try {
      await c.initialize();
      const { uri } = await c.open(image);
      const syms = await c.conn.sendRequest<DocumentSymbol[]>('textDocument/documentSymbol', { textDocument: { uri } });
      const threads = syms.find((s) => s.name === 'threads')!;
      assert.deepEqual(threads.children!.map((t) => t.name), info.threads.map((t) => `thread ${t.tid}`));
      const fns = threads.children!.map((t) => t.children!.map((f) => f.name));
      assert.ok(fns[0].includes('main'), `main thread: ${fns[0]}`);
      for (const w of fns.slice(1)) assert.ok(w.includes('worker'), `worker thread: ${w}`);
      // children lie inside their parents (VS Code's outline needs it)
      for (const t of threads.children!)
        for (const f of t.children!) assert.ok(f.range.start.line > t.range.start.line && f.range.end.line <= t.range.end.line, `${f.name} inside ${t.name}`);
      await c.conn.sendNotification('textDocument/didClose', { textDocument: { uri } });
    } finally {
      await c.stop();
    }
  });
});
