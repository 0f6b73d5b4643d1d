// What the .cryo editor shows of an image: why it was taken, the program, each thread's
// top frames. Computed in the adapter's process (`adapter.js --summary IMAGE`), never in
// the extension host: reading an image loads the native engine.
import { existsSync } from 'node:fs';
import { Image } from './engine';
import { ImageTarget } from './image';
import { Program } from './symbols';

export interface ImageSummary {
  path: string;
  reason: string;
  crash?: { signal: string; code: string; address: string | null; tid: number };
  program: string;
  programFound: boolean;
  cmdline: string[];
  pid: number;
  time: string;
  host: string;
  threads: { tid: number; crashed: boolean; frames: { name: string; file?: string; line?: number; pc: string }[] }[];
  /** null when it can be revived on this machine; else the problems, one per line */
  problems: string | null;
  error?: string;
}

export function summarizeImage(path: string, maxFrames = 8): ImageSummary {
  const img = new Image(path);
  try {
    const info = img.describe();
    const crash = info.reason.kind === 'crash' ? info.reason : undefined;
    const s: ImageSummary = {
      path,
      reason: crash ? `crashed: ${crash.signal_name} (${crash.code_name})${crash.address ? ` at ${crash.address}` : ''}` : 'snapshot',
      crash: crash ? { signal: crash.signal_name, code: crash.code_name, address: crash.address, tid: crash.tid } : undefined,
      program: info.process.exe,
      programFound: existsSync(info.process.exe),
      cmdline: info.process.cmdline,
      pid: info.process.pid,
      time: info.process.time,
      host: info.process.hostname,
      threads: [],
      problems: img.problems(),
    };
    let program: Program | undefined;
    const target = new ImageTarget(img);
    try {
      if (s.programFound) program = new Program(target);
    } catch (e) {
      s.error = `symbols: ${(e as Error).message}`;
    }
    for (const tid of target.threads()) {
      const frames: ImageSummary['threads'][number]['frames'] = [];
      if (program) {
        try {
          for (const f of program.backtrace(target.dwarfRegisters(tid), maxFrames))
            frames.push({ name: f.function ?? '??', file: f.source?.file, line: f.source?.line, pc: '0x' + f.pc.toString(16) });
        } catch (e) {
          s.error = `stack of thread ${tid}: ${(e as Error).message}`;
        }
      }
      if (!frames.length) frames.push({ name: '??', pc: '0x' + target.registers(tid).rip.toString(16) });
      s.threads.push({ tid, crashed: crash?.tid === tid, frames });
    }
    // the crashing thread first
    s.threads.sort((a, b) => Number(b.crashed) - Number(a.crashed));
    return s;
  } finally {
    img.close();
  }
}
