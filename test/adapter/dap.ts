// Drives the real adapter bundle (dist/adapter.js) over DAP, as VS Code does.
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import { assertNoFixtureProcesses } from '../helpers/procs';
import { repoRoot } from '../helpers/fixtures';

export const adapterPath = join(repoRoot, 'dist', 'adapter.js');

export async function startClient(): Promise<DebugClient> {
  const dc = new DebugClient('node', adapterPath, 'cryo');
  dc.defaultTimeout = 20000;
  await dc.start();
  return dc;
}

/** A test file's DAP clients: each test's are disconnected (debuggee killed) and stopped
 * after it, and no fixture process may be left behind. */
export function clientPool(): () => Promise<DebugClient> {
  const clients: DebugClient[] = [];
  afterEach(async () => {
    for (const dc of clients.splice(0)) {
      try {
        await dc.disconnectRequest({ terminateDebuggee: true });
      } catch {
        /* already ended */
      }
      await dc.stop();
    }
    await new Promise((r) => setTimeout(r, 100));
    assertNoFixtureProcesses('after test');
  });
  after(() => assertNoFixtureProcesses('after suite'));
  return async () => {
    const dc = await startClient();
    clients.push(dc);
    return dc;
  };
}

/** initialize, launch, breakpoints, configurationDone; resolves with the first stop (or end). */
export async function launchTo(
  dc: DebugClient,
  launch: Record<string, unknown>,
  file: string,
  bps: DebugProtocol.SourceBreakpoint[],
  configure?: () => Promise<unknown>,
): Promise<DebugProtocol.StoppedEvent> {
  await dc.initializeRequest();
  const initialized = dc.waitForEvent('initialized');
  const launched = dc.launch(launch);
  await initialized;
  const stopped = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
  if (bps.length) await dc.setBreakpointsRequest({ source: { path: file }, breakpoints: bps });
  if (configure) await configure();
  await dc.configurationDoneRequest();
  await launched;
  return stopped;
}

export function collectOutput(dc: DebugClient): { text: (category?: string) => string } {
  const chunks: { category: string; output: string }[] = [];
  dc.on('output', (e: DebugProtocol.OutputEvent) => chunks.push({ category: e.body.category ?? 'console', output: e.body.output }));
  return { text: (c?: string) => chunks.filter((x) => !c || x.category === c).map((x) => x.output).join('') };
}

/**
 * Plays VS Code's integrated terminal for `console: integratedTerminal`: runs what the
 * adapter asks for with a pipe as the terminal, types `input` into it, collects its output.
 */
export function fakeTerminal(dc: DebugClient, input: string): { output: () => string; stdin: () => NodeJS.WritableStream | undefined } {
  let out = '';
  let stdin: NodeJS.WritableStream | undefined;
  const raw = dc as unknown as { dispatch(body: string): void; outputStream: NodeJS.WritableStream };
  const original = raw.dispatch.bind(dc);
  raw.dispatch = (body: string) => {
    const m = JSON.parse(body);
    if (m.type !== 'request' || m.command !== 'runInTerminal') return original(body);
    const a = m.arguments as DebugProtocol.RunInTerminalRequestArguments;
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const [k, v] of Object.entries(a.env ?? {})) {
      if (v === null) delete env[k];
      else env[k] = v as string;
    }
    const term = spawn(a.args[0], a.args.slice(1), { cwd: a.cwd, env });
    term.stdout.on('data', (d) => (out += d));
    stdin = term.stdin;
    term.stdin.write(input);
    const reply = JSON.stringify({ type: 'response', seq: 0, request_seq: m.seq, command: m.command, success: true, body: { processId: term.pid } });
    raw.outputStream.write(`Content-Length: ${Buffer.byteLength(reply)}\r\n\r\n${reply}`);
  };
  return { output: () => out, stdin: () => stdin };
}
