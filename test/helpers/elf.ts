// Symbol addresses for engine tests (the engine itself knows no symbols): nm for the
// offset, /proc/PID/maps for where the binary is loaded.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export function symbolOffset(binary: string, name: string): bigint {
  const out = execFileSync('nm', ['--defined-only', binary], { encoding: 'utf8' });
  for (const line of out.split('\n')) {
    const [addr, , sym] = line.trim().split(/\s+/);
    if (sym === name) return BigInt('0x' + addr);
  }
  throw new Error(`symbol ${name} not in ${binary}`);
}

export function loadBase(pid: number, binary: string): bigint {
  const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n');
  const line = maps.find((m) => m.trim().endsWith(binary));
  if (!line) throw new Error(`${binary} not mapped in ${pid}`);
  const type = execFileSync('readelf', ['-h', binary], { encoding: 'utf8' });
  return /Type:\s+DYN/.test(type) ? BigInt('0x' + line.split('-')[0]) : 0n;
}

export function symbolAddress(pid: number, binary: string, name: string): bigint {
  return loadBase(pid, binary) + symbolOffset(binary, name);
}

export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}
