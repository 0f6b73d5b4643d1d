// Test-only extension installed beside Cryo by test/editor/run.mjs: logs the DAP traffic
// between VS Code and the cryo adapter (one JSON object a line) to $CRYO_E2E_DAP_LOG, so a
// failing editor test leaves the adapter's side of the story in test/.artifacts/editor/.
const fs = require('node:fs');
const vscode = require('vscode');

function activate(context) {
  const file = process.env.CRYO_E2E_DAP_LOG;
  if (!file) return;
  const t0 = Date.now();
  const write = (o) => {
    try {
      fs.appendFileSync(file, JSON.stringify({ ms: Date.now() - t0, ...o }) + '\n');
    } catch {
      /* best effort */
    }
  };
  write({ event: 'tracer activated' });
  context.subscriptions.push(
    vscode.debug.registerDebugAdapterTrackerFactory('*', {
      createDebugAdapterTracker(session) {
        const s = { session: session.name, type: session.type };
        write({ ...s, event: 'session created', configuration: session.configuration });
        return {
          onWillReceiveMessage: (m) => write({ ...s, to: 'adapter', m }),
          onDidSendMessage: (m) => write({ ...s, from: 'adapter', m }),
          onError: (e) => write({ ...s, event: 'error', error: String(e && e.stack || e) }),
          onExit: (code, signal) => write({ ...s, event: 'adapter exited', code, signal }),
        };
      },
    }),
  );
}

module.exports = { activate, deactivate() {} };
