// gdb as the oracle: runs `gdb -batch` on a binary and returns what it printed.
import { execFileSync } from 'node:child_process';

export function gdbBatch(program: string, commands: string[], args: string[] = []): string {
  const cmdArgs = commands.flatMap((c) => ['-ex', c]);
  return execFileSync('gdb', ['-nx', '-batch', '-ex', 'set pagination off', '-ex', 'set confirm off', ...cmdArgs, '--args', program, ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
    killSignal: 'SIGKILL', // a gdb stuck at a prompt or in its inferior would outlast SIGTERM's wait
  });
}
