// Drives the real adapter bundle (dist/adapter.js) over DAP, as VS Code does.
import { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { join } from 'node:path';
import { repoRoot } from '../helpers/fixtures';

export const adapterPath = join(repoRoot, 'dist', 'adapter.js');

export async function startClient(): Promise<DebugClient> {
  const dc = new DebugClient('node', adapterPath, 'cryo');
  dc.defaultTimeout = 20000;
  await dc.start();
  return dc;
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
