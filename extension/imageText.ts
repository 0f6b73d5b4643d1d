// "Cryo: Show Image as Text": a read-only document (cryo-image:/abs/path.cryo) with the
// image's text, highlighted by syntaxes/cryo-image.tmLanguage.json and served by the
// image language server (dist/imageServer.js). The server also renders the text
// (request cryo/imageText): the native engine stays out of the extension host, and the
// document's text is exactly what the server reads.
import { extname } from 'node:path';
import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';

export const IMAGE_SCHEME = 'cryo-image';
export const IMAGE_LANGUAGE = 'cryo-image';

export function activateImageText(context: vscode.ExtensionContext): void {
  let client: LanguageClient | undefined;
  let starting: Promise<LanguageClient> | undefined;

  // started on first use: most sessions never show an image as text
  const server = (): Promise<LanguageClient> =>
    (starting ??= (async () => {
      const module = context.asAbsolutePath('dist/imageServer.js');
      const serverOptions: ServerOptions = {
        run: { module, transport: TransportKind.ipc },
        debug: { module, transport: TransportKind.ipc },
      };
      const clientOptions: LanguageClientOptions = {
        documentSelector: [{ scheme: IMAGE_SCHEME, language: IMAGE_LANGUAGE }],
      };
      const c = new LanguageClient('cryoImage', 'Cryo Image', serverOptions, clientOptions);
      await c.start();
      client = c;
      return c;
    })().catch((e: unknown) => {
      starting = undefined;
      throw e;
    }));

  const provider: vscode.TextDocumentContentProvider = {
    async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
      try {
        return await (await server()).sendRequest<string>('cryo/imageText', { path: uri.path });
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        void vscode.window.showErrorMessage(`Cryo: cannot show ${uri.path}: ${msg}`);
        return `cannot read the image ${uri.path}: ${msg}\n`;
      }
    },
  };

  context.subscriptions.push(
    vscode.workspace.registerTextDocumentContentProvider(IMAGE_SCHEME, provider),
    vscode.commands.registerCommand('cryo.showImageAsText', async (arg?: vscode.Uri) => {
      const file = arg instanceof vscode.Uri ? arg : (activeImage() ?? (await pickImage()));
      if (!file) return;
      await showImageAsText(file);
    }),
    { dispose: () => void client?.stop() },
  );
}

/** Opens the text of the image at file (a file: Uri) in an editor. */
export async function showImageAsText(file: vscode.Uri): Promise<void> {
  const uri = vscode.Uri.from({ scheme: IMAGE_SCHEME, path: file.fsPath });
  let doc = await vscode.workspace.openTextDocument(uri);
  // the language's firstLine rule usually picked it already
  if (doc.languageId !== IMAGE_LANGUAGE) doc = await vscode.languages.setTextDocumentLanguage(doc, IMAGE_LANGUAGE);
  await vscode.window.showTextDocument(doc, { preview: false });
}

function isImage(u: vscode.Uri | undefined): u is vscode.Uri {
  return !!u && u.scheme === 'file' && extname(u.fsPath) === '.cryo';
}

/** The .cryo of the active editor: a text editor, or the tab of a file VS Code shows as binary. */
function activeImage(): vscode.Uri | undefined {
  const ed = vscode.window.activeTextEditor?.document.uri;
  if (isImage(ed)) return ed;
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  const uri = input instanceof vscode.TabInputText || input instanceof vscode.TabInputCustom ? input.uri : undefined;
  return isImage(uri) ? uri : undefined;
}

async function pickImage(): Promise<vscode.Uri | undefined> {
  const picked = await vscode.window.showOpenDialog({
    canSelectMany: false,
    openLabel: 'Show as Text',
    filters: { 'Cryo images': ['cryo'] },
  });
  return picked?.[0];
}
