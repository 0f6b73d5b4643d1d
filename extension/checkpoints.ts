// The Checkpoints view (Run and Debug side bar) and the snapshot button: lists the
// active cryo session's checkpoints, kept current by the adapter's
// cryo/checkpointsChanged event; restore, rename, delete and go to source act on them.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { isFrozen } from './images';

interface CheckpointView {
  id: number;
  name: string;
  threadId: number;
  source?: { path?: string };
  line?: number;
  function?: string;
  time: string;
  kind: 'full' | 'delta';
  bytes: number;
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

interface Reach {
  available: boolean;
  why?: string;
  positions: number;
  checkpoints?: number;
  earliest?: { function?: string; file?: string; line?: number; time: string };
  bytes: number;
}

/** The line above the list: how far back Step Back can go. */
export function reachText(r: Reach | undefined): string | undefined {
  if (!r) return undefined;
  if (!r.available) return `Time travel is off: ${r.why ?? 'unavailable'}`;
  const e = r.earliest;
  const where = e ? `${e.function ?? '?'}${e.file ? ` (${basename(e.file)}:${e.line})` : ''}, ${age(e.time)}` : 'the start';
  return `Step back reaches ${where} · ${r.positions} stop${r.positions === 1 ? '' : 's'}, ${r.checkpoints ?? r.positions} checkpoints, ${(r.bytes / 1048576).toFixed(1)} MiB`;
}

class CheckpointItem extends vscode.TreeItem {
  constructor(readonly checkpoint: CheckpointView) {
    super(checkpoint.name, vscode.TreeItemCollapsibleState.None);
    const where = checkpoint.source?.path ? `${basename(checkpoint.source.path)}:${checkpoint.line}` : '';
    this.description = [checkpoint.function, where, age(checkpoint.time)].filter(Boolean).join(' · ');
    this.tooltip = `${checkpoint.name}\n${checkpoint.function ?? '?'} at ${where || 'unknown'}\ntaken ${new Date(checkpoint.time).toLocaleTimeString()} (${checkpoint.kind === 'delta' ? `${Math.round(checkpoint.bytes / 1024)} KiB of changed pages` : 'a frozen copy of the process'})`;
    this.contextValue = 'cryoCheckpoint';
    this.iconPath = new vscode.ThemeIcon('device-camera');
    this.id = `cryo-checkpoint-${checkpoint.id}`;
  }
}

export class CheckpointsView implements vscode.TreeDataProvider<CheckpointItem> {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private items: CheckpointView[] = [];
  static readonly AGE_REFRESH_MS = 5000;

  static register(context: vscode.ExtensionContext): CheckpointsView {
    const view = new CheckpointsView();
    const tree = vscode.window.createTreeView('cryo.checkpoints', { treeDataProvider: view, showCollapseAll: false });
    const session = () => {
      const s = vscode.debug.activeDebugSession;
      if (!s || s.type !== 'cryo') throw new Error('No Cryo debug session is active.');
      return s;
    };
    const run = (f: () => Promise<unknown>) => async () => {
      try {
        await f();
      } catch (e) {
        void vscode.window.showErrorMessage(`Cryo: ${(e as Error).message}`);
      }
    };
    const pick = async (item?: CheckpointItem): Promise<CheckpointView | undefined> => {
      if (item) return item.checkpoint;
      const chosen = await vscode.window.showQuickPick(
        view.items.map((c) => ({ label: c.name, description: `${c.function ?? ''} ${c.source?.path ? basename(c.source.path) + ':' + c.line : ''}`, c })),
        { placeHolder: 'Which checkpoint?' },
      );
      return chosen?.c;
    };
    // A row's description says how long ago its checkpoint was taken, but rows are only built
    // when the list changes: rebuild them now and then, or the view says "0s ago" for ever.
    const ticker = setInterval(() => {
      if (view.items.length && tree.visible) view.changed.fire();
    }, CheckpointsView.AGE_REFRESH_MS);
    context.subscriptions.push(
      tree,
      new vscode.Disposable(() => clearInterval(ticker)),
      vscode.commands.registerCommand('cryo.snapshot', run(async () => {
        const r = await session().customRequest('cryo/snapshot', {});
        void vscode.window.setStatusBarMessage(`Cryo: ${r.name} taken`, 3000);
      })),
      vscode.commands.registerCommand('cryo.checkpoint.restore', (item?: CheckpointItem) => run(async () => {
        const c = await pick(item);
        if (c) await session().customRequest('cryo/restore', { id: c.id });
      })()),
      vscode.commands.registerCommand('cryo.checkpoint.delete', (item?: CheckpointItem) => run(async () => {
        const c = await pick(item);
        if (c) await session().customRequest('cryo/deleteCheckpoint', { id: c.id });
      })()),
      vscode.commands.registerCommand('cryo.checkpoint.saveImage', (item?: CheckpointItem) => run(async () => {
        const c = await pick(item);
        if (!c) return;
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const safe = c.name.replace(/[^\w.-]+/g, '_');
        const to = await vscode.window.showSaveDialog({ defaultUri: folder ? vscode.Uri.joinPath(folder, `${safe}.cryo`) : undefined, filters: { 'Cryo images': ['cryo'] }, saveLabel: 'Save Image' });
        if (!to) return;
        const r = (await session().customRequest('cryo/saveImage', { id: c.id, path: to.fsPath })) as { bytes: number; ms: number };
        void vscode.window.showInformationMessage(`Cryo: ${c.name} saved as ${to.fsPath} (${(r.bytes / 1048576).toFixed(1)} MiB, ${Math.round(r.ms)} ms)`);
      })()),
      vscode.commands.registerCommand('cryo.checkpoint.rename', (item?: CheckpointItem) => run(async () => {
        const c = await pick(item);
        if (!c) return;
        const name = await vscode.window.showInputBox({ prompt: 'New name of the checkpoint', value: c.name });
        if (name) await session().customRequest('cryo/renameCheckpoint', { id: c.id, name });
      })()),
      vscode.commands.registerCommand('cryo.checkpoint.goToSource', (item?: CheckpointItem) => run(async () => {
        const c = await pick(item);
        if (!c?.source?.path || !c.line) return;
        const doc = await vscode.workspace.openTextDocument(c.source.path);
        const pos = new vscode.Position(c.line - 1, 0);
        await vscode.window.showTextDocument(doc, { selection: new vscode.Range(pos, pos) });
      })()),
      vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => {
        if (e.session.type === 'cryo' && e.event === 'cryo/checkpointsChanged') {
          view.set(e.body.checkpoints as CheckpointView[]);
          // in the view's title bar: a message in the view would hide its welcome text
          const reach = reachText(e.body.timeline as Reach | undefined);
          tree.description = reach?.replace(/^Step back reaches /, 'back to ');

        }
      }),
      vscode.debug.onDidChangeActiveDebugSession(() => void view.refresh()),
      vscode.debug.onDidTerminateDebugSession(() => {
        view.set([]);
        tree.description = undefined;
      }),
    );
    return view;
  }

  set(items: CheckpointView[]): void {
    this.items = items;
    this.changed.fire();
  }

  async refresh(): Promise<void> {
    const s = vscode.debug.activeDebugSession;
    // an image not revived has none, and the adapter's refusal would show as an error
    if (!s || s.type !== 'cryo' || isFrozen(s)) return this.set([]);
    try {
      const r = await s.customRequest('cryo/checkpoints', {});
      this.set(r.checkpoints as CheckpointView[]);
    } catch {
      this.set([]);
    }
  }

  getTreeItem(item: CheckpointItem): vscode.TreeItem {
    return item;
  }

  getChildren(): CheckpointItem[] {
    return this.items.map((c) => new CheckpointItem(c));
  }
}
