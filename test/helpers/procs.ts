// What a test left behind: live processes whose executable is a test build.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { buildDir } from './fixtures';

export interface ProcInfo {
  pid: number;
  state: string;
  exe: string;
}

export function procState(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[0];
  } catch {
    return null;
  }
}

/** Alive (not zombie) processes running a binary under test/.build. */
export function fixtureProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let exe: string;
    try {
      exe = readlinkSync(`/proc/${pid}/exe`);
    } catch {
      continue;
    }
    if (!exe.startsWith(buildDir + '/')) continue;
    const state = procState(pid);
    if (state && state !== 'Z' && state !== 'X') out.push({ pid, state, exe });
  }
  return out;
}

/** Throws if any fixture process is alive; kills them first so one failure does not cascade. */
export function assertNoFixtureProcesses(context: string): void {
  const left = fixtureProcesses();
  if (!left.length) return;
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  throw new Error(`${context}: ${left.length} process(es) left behind: ${left.map((p) => `${p.pid} (${p.state}) ${p.exe}`).join(', ')}`);
}

export function isAlive(pid: number): boolean {
  const s = procState(pid);
  return s !== null && s !== 'Z' && s !== 'X';
}

export async function waitGone(pid: number, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isAlive(pid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return !isAlive(pid);
}
