// What the .cryo editor shows of an image: why it was taken, the program, each thread's
// top frames. Computed in the adapter's process (`adapter.js --summary IMAGE`), never in
// the extension host: reading an image loads the native engine.
import { existsSync } from 'node:fs';
import { ImageView } from './imagetext';

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
  // the same view of the image as its text (one reading of stacks, stale builds refused)
  const v = new ImageView(path);
  try {
    const img = v.image;
    const info = v.target.info;
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
    if (v.programError && s.programFound) s.error = `symbols: ${v.programError}`;
    for (const tid of v.target.threads()) {
      const st = v.stack(tid);
      if ('error' in st && v.program) s.error = `stack of thread ${tid}: ${st.error}`;
      const frames = ('frames' in st ? st.frames.slice(0, maxFrames) : []).map((f) => ({ name: f.function ?? '??', file: f.source?.file, line: f.source?.line, pc: '0x' + f.pc.toString(16) }));
      if (!frames.length) frames.push({ name: '??', file: undefined, line: undefined, pc: '0x' + v.target.registers(tid).rip.toString(16) });
      s.threads.push({ tid, crashed: crash?.tid === tid, frames });
    }
    // the crashing thread first
    s.threads.sort((a, b) => Number(b.crashed) - Number(a.crashed));
    return s;
  } finally {
    v.close();
  }
}
