// Images in the editor: the .cryo custom editor (a summary with Debug and Revive),
// "Cryo: Debug Image…", Revive (toolbar, editor, code lens), and the vscode:// link a
// crash report can carry. The summary comes from the adapter's process
// (`adapter.js --summary`): reading an image loads the native engine, which stays out
// of the extension host.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import * as vscode from 'vscode';
import type { ImageSummary } from '../adapter/imagesummary';

// the type only: the summary itself is computed in the adapter's process
type Summary = ImageSummary;

/** Sessions opened on an image and not revived yet (the Revive button shows for them). */
const frozen = new Set<string>();
/** Sessions already sorted into frozen or not. */
const known = new Set<string>();

/** Whether s is a session on an image not revived yet: nothing runs in it, it has no
 *  checkpoints. Whatever VS Code reports first, the session's start or its activation. */
export function isFrozen(s: vscode.DebugSession): boolean {
  if (!known.has(s.id)) {
    known.add(s.id);
    if (s.type === 'cryo' && s.configuration.image && !s.configuration.revive) frozen.add(s.id);
  }
  return frozen.has(s.id);
}

function setFrozenContext(): void {
  const s = vscode.debug.activeDebugSession;
  void vscode.commands.executeCommand('setContext', 'cryo.frozen', !!s && isFrozen(s));
}

function toPath(arg: unknown): string | undefined {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (typeof arg === 'string' && arg) return arg.startsWith('file:') ? vscode.Uri.parse(arg).fsPath : arg;
  const active = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  if (active instanceof vscode.TabInputCustom && active.uri.fsPath.endsWith('.cryo')) return active.uri.fsPath;
  return undefined;
}

async function pickImage(): Promise<string | undefined> {
  const picked = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'Cryo images': ['cryo'] }, openLabel: 'Debug Image' });
  return picked?.[0]?.fsPath;
}

/** Starts a debug session on the image: stopped at its crash, or revived at once. */
export async function debugImage(arg: unknown, revive = false): Promise<boolean> {
  const image = toPath(arg) ?? (await pickImage());
  if (!image) return false;
  const folder = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(image)) ?? vscode.workspace.workspaceFolders?.[0];
  return vscode.debug.startDebugging(folder, {
    type: 'cryo',
    request: 'launch',
    name: `${revive ? 'Revive' : 'Debug'} ${basename(image)}`,
    image,
    revive,
  });
}

async function reviveActive(): Promise<void> {
  const s = vscode.debug.activeDebugSession;
  if (!s || s.type !== 'cryo') throw new Error('No Cryo debug session is active.');
  const r = (await s.customRequest('cryo/revive')) as { pid: number };
  frozen.delete(s.id);
  setFrozenContext();
  void vscode.window.setStatusBarMessage(`Cryo: revived as process ${r.pid}`, 5000);
}

function summarize(adapter: string, image: string): Promise<Summary> {
  return new Promise((resolve, reject) => {
    // the extension host's own runtime as plain Node (Electron's or code-server's)
    execFile(process.execPath, [adapter, '--summary', image], { env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, timeout: 60_000, maxBuffer: 16 << 20 }, (err, stdout) => {
      try {
        const j = JSON.parse(stdout) as Summary;
        if (j.error && !j.threads) reject(new Error(j.error));
        else resolve(j);
      } catch {
        reject(new Error(err?.message ?? 'no summary'));
      }
    });
  });
}

const esc = (s: unknown) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function render(s: Summary | undefined, error: string | undefined, nonce: string, image: string): string {
  let body: string;
  if (error) body = `<p class="error">This image cannot be read: ${esc(error)}</p>`;
  else if (!s) body = '<p>Reading the image…</p>';
  else {
    const threads = s.threads
      .map(
        (t) =>
          `<h3>Thread ${t.tid}${t.crashed ? ' <span class="crash">crashed</span>' : ''}</h3><ol start="0">${t.frames
            .map((f) => `<li><code>${esc(f.name)}</code>${f.file ? ` at ${esc(basename(f.file))}:${f.line}` : ''} <span class="pc">${esc(f.pc)}</span></li>`)
            .join('')}</ol>`,
      )
      .join('');
    body = `
      <h1 class="${s.crash ? 'crashed' : ''}">${esc(s.crash ? `${s.crash.signal} in ${basename(s.program)}` : `Snapshot of ${basename(s.program)}`)}</h1>
      <table>
        <tr><th>Reason</th><td id="reason">${esc(s.reason)}</td></tr>
        <tr><th>Program</th><td id="program">${esc(s.program)}${s.programFound ? '' : ' <span class="error">(not on this machine)</span>'}</td></tr>
        <tr><th>Command line</th><td>${esc(s.cmdline.join(' '))}</td></tr>
        <tr><th>Process</th><td>${s.pid} on ${esc(s.host)}, ${esc(s.time)}</td></tr>
        <tr><th>Threads</th><td id="threads">${s.threads.length}</td></tr>
      </table>
      <div class="buttons">
        <button id="debug">Debug</button>
        <button id="revive" ${s.problems ? 'title="cannot be revived here"' : ''}>Revive</button>
        <button id="text" class="secondary">Show as Text</button>
      </div>
      ${s.problems ? `<p class="warn">Cannot be revived on this machine:</p><pre class="warn">${esc(s.problems)}</pre>` : ''}
      ${s.error ? `<p class="warn">${esc(s.error)}</p>` : ''}
      <h2>Stacks</h2>${threads}`;
  }
  return `<!DOCTYPE html><html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<style nonce="${nonce}">
  body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 20px; }
  h1.crashed, .crash, .error { color: var(--vscode-errorForeground); }
  .warn { color: var(--vscode-editorWarning-foreground); }
  th { text-align: left; padding-right: 16px; font-weight: 600; }
  .pc { opacity: .6; font-family: var(--vscode-editor-font-family); }
  button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: none; padding: 6px 14px; margin: 12px 8px 12px 0; cursor: pointer; }
  button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
</style></head><body data-image="${esc(image)}">${body}
<script nonce="${nonce}">
  const vscode = acquireVsCodeApi();
  for (const id of ['debug', 'revive', 'text']) document.getElementById(id)?.addEventListener('click', () => vscode.postMessage({ command: id }));
</script></body></html>`;
}

class ImageEditor implements vscode.CustomReadonlyEditorProvider {
  constructor(private readonly adapter: string) {}

  openCustomDocument(uri: vscode.Uri): vscode.CustomDocument {
    return { uri, dispose: () => {} };
  }

  async resolveCustomEditor(doc: vscode.CustomDocument, panel: vscode.WebviewPanel): Promise<void> {
    const image = doc.uri.fsPath;
    const nonce = randomBytes(16).toString('hex');
    panel.webview.options = { enableScripts: true, localResourceRoots: [] };
    panel.webview.html = render(undefined, undefined, nonce, image);
    panel.webview.onDidReceiveMessage((m: { command: string }) => {
      const run = async () => {
        if (m.command === 'debug') await debugImage(doc.uri);
        else if (m.command === 'revive') await debugImage(doc.uri, true);
        else if (m.command === 'text') await vscode.commands.executeCommand('cryo.showImageAsText', doc.uri);
      };
      run().catch((e: Error) => vscode.window.showErrorMessage(`Cryo: ${e.message}`));
    });
    try {
      panel.webview.html = render(await summarize(this.adapter, image), undefined, nonce, image);
    } catch (e) {
      panel.webview.html = render(undefined, (e as Error).message, nonce, image);
    }
  }
}

export function activateImages(context: vscode.ExtensionContext): void {
  const adapter = context.asAbsolutePath('dist/adapter.js');
  const guard = (f: (...a: unknown[]) => Promise<unknown>) => async (...a: unknown[]) => {
    try {
      await f(...a);
    } catch (e) {
      void vscode.window.showErrorMessage(`Cryo: ${(e as Error).message}`);
    }
  };
  context.subscriptions.push(
    vscode.window.registerCustomEditorProvider('cryo.imageEditor', new ImageEditor(adapter), { supportsMultipleEditorsPerDocument: true }),
    vscode.commands.registerCommand('cryo.debugImage', guard((arg) => debugImage(arg))),
    // from an image session: revive it in place; from a file (editor, explorer, code lens): a new session, revived
    vscode.commands.registerCommand(
      'cryo.reviveImage',
      guard(async (arg) => {
        const s = vscode.debug.activeDebugSession;
        if (s && isFrozen(s) && (!arg || toPath(arg) === s.configuration.image)) return reviveActive();
        return debugImage(arg, true);
      }),
    ),
    vscode.debug.onDidStartDebugSession((s) => {
      isFrozen(s);
      setFrozenContext();
    }),
    vscode.debug.onDidTerminateDebugSession((s) => {
      frozen.delete(s.id);
      known.delete(s.id);
      setFrozenContext();
    }),
    vscode.debug.onDidChangeActiveDebugSession(setFrozenContext),
    // the adapter says when a session is on an image and when it was revived (a revive
    // asked in the launch configuration may also fail and leave it on the image)
    vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
      if (e.session.type !== 'cryo' || e.event !== 'cryo/imageState') return;
      known.add(e.session.id);
      if (e.body?.frozen) frozen.add(e.session.id);
      else frozen.delete(e.session.id);
      setFrozenContext();
    }),
    // vscode://cryo.cryo/debug?image=/path/to/x.cryo[&revive=1]: a crash report's link
    vscode.window.registerUriHandler({
      handleUri(uri: vscode.Uri) {
        const q = new URLSearchParams(uri.query);
        const image = q.get('image');
        if (!image) {
          void vscode.window.showErrorMessage(`Cryo: the link ${uri.toString()} names no image (?image=PATH)`);
          return;
        }
        void debugImage(image, q.get('revive') === '1' || uri.path === '/revive');
      },
    }),
  );
}
