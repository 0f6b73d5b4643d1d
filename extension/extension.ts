// The VS Code side of Cryo: the `cryo` debug type's configurations and the process
// picker. The adapter itself runs as a separate Node process (package.json
// debuggers[].program), so a native fault never takes down the extension host.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import * as vscode from 'vscode';
import { CheckpointsView } from './checkpoints';
import { activateImages } from './images';
import { activateImageText } from './imageText';

export function activate(context: vscode.ExtensionContext): void {
  const provider = new CryoConfigurationProvider();
  context.subscriptions.push(
    vscode.debug.registerDebugConfigurationProvider('cryo', provider),
    vscode.debug.registerDebugConfigurationProvider('cryo', provider, vscode.DebugConfigurationProviderTriggerKind.Dynamic),
    vscode.commands.registerCommand('cryo.pickProcess', pickProcess),
    // DAP has no reverse step out: a custom request of the active cryo session
    vscode.commands.registerCommand('cryo.reverseStepOut', async () => {
      const s = vscode.debug.activeDebugSession;
      if (s?.type !== 'cryo') return;
      const item = vscode.debug.activeStackItem;
      try {
        await s.customRequest('cryo/reverseStepOut', { threadId: item && item.session.id === s.id ? item.threadId : undefined });
      } catch (e) {
        void vscode.window.showErrorMessage(`Cryo: ${(e as Error).message}`);
      }
    }),
  );
  CheckpointsView.register(context);
  activateImages(context);
  activateImageText(context);
}

export function deactivate(): void {}

/** The binary a C/C++ source most likely builds to: same stem beside it, or a.out. */
export function guessBinary(source: string): string | undefined {
  const dir = dirname(source);
  const stem = basename(source, extname(source));
  for (const c of [join(dir, stem), join(dir, 'build', stem), join(dir, 'a.out')]) {
    try {
      if (existsSync(c) && statSync(c).isFile() && (statSync(c).mode & 0o111) !== 0) return c;
    } catch {
      /* unreadable: skip */
    }
  }
  return undefined;
}

class CryoConfigurationProvider implements vscode.DebugConfigurationProvider {
  provideDebugConfigurations(): vscode.DebugConfiguration[] {
    const doc = vscode.window.activeTextEditor?.document;
    const bin = doc && ['c', 'cpp'].includes(doc.languageId) ? guessBinary(doc.uri.fsPath) : undefined;
    const program = bin ?? '${workspaceFolder}/a.out';
    return [{ type: 'cryo', request: 'launch', name: `Cryo: Launch ${basename(program)}`, program, args: [], cwd: '${workspaceFolder}' }];
  }

  resolveDebugConfiguration(folder: vscode.WorkspaceFolder | undefined, config: vscode.DebugConfiguration): vscode.DebugConfiguration | undefined {
    const resolved = this.resolve(config);
    if (resolved && !resolved.timeTravel) {
      const tt = vscode.workspace.getConfiguration('cryo.timeTravel', folder?.uri);
      resolved.timeTravel = { maxPositions: tt.get<number>('maxPositions'), memoryBudgetMiB: tt.get<number>('memoryBudgetMiB'), periodMs: tt.get<number>('periodMs') };
    }
    return resolved;
  }

  private resolve(config: vscode.DebugConfiguration): vscode.DebugConfiguration | undefined {
    if (!config.type && !config.request && !config.name) {
      // F5 with no launch.json: debug the binary of the open C/C++ file
      const doc = vscode.window.activeTextEditor?.document;
      if (!doc || !['c', 'cpp'].includes(doc.languageId)) return config;
      const program = guessBinary(doc.uri.fsPath);
      if (!program) {
        void vscode.window.showErrorMessage(`Cryo: no built binary found for ${basename(doc.uri.fsPath)}; build it with -g, or add a launch configuration with "program".`);
        return undefined;
      }
      return { type: 'cryo', request: 'launch', name: `Cryo: Launch ${basename(program)}`, program, args: [], cwd: dirname(program) };
    }
    return config;
  }
}

interface ProcessItem extends vscode.QuickPickItem {
  pid: number;
}

/** Processes this user can trace, newest first, for `${command:pickProcess}`. */
export function listProcesses(): { pid: number; name: string; cmdline: string }[] {
  const out: { pid: number; name: string; cmdline: string }[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').trim();
      if (!cmdline) continue; // kernel threads
      const name = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      out.push({ pid: Number(p), name, cmdline });
    } catch {
      /* gone meanwhile */
    }
  }
  return out.sort((a, b) => b.pid - a.pid);
}

async function pickProcess(): Promise<string | undefined> {
  const items: ProcessItem[] = listProcesses().map((p) => ({ label: `${p.name}`, description: String(p.pid), detail: p.cmdline, pid: p.pid }));
  const pick = await vscode.window.showQuickPick(items, { placeHolder: 'Pick the process to attach to', matchOnDescription: true, matchOnDetail: true });
  return pick ? String(pick.pid) : undefined;
}
