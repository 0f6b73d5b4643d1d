// Reads the structure back out of an image's text (adapter/imagetext.ts): which line
// holds which thread, frame, mapping, descriptor or problem. The server answers from
// the document's own lines, so positions are right even for text it did not render.
export interface TextFrame {
  line: number;
  index: number;
  pc: bigint;
  function: string;
  file?: string;
  fileLine?: number;
  module?: string;
}

export interface TextThread {
  line: number;
  /** last line of the thread's block (frames and registers) */
  end: number;
  tid: number;
  frames: TextFrame[];
}

export interface TextMapping {
  line: number;
  start: bigint;
  end: bigint;
  perms: string;
  kind: string;
  path: string;
}

export interface TextSection {
  name: string;
  line: number;
  end: number;
}

export interface ImageText {
  lines: string[];
  /** the heading line of each section: process, reason, threads, mappings, files, signal actions, revive here */
  sections: TextSection[];
  /** key lines of the process block: exe, cwd, taken, uid/gid, xcr0, build-id, ... */
  keys: Map<string, number>;
  process?: { line: number; end: number; pid: number; comm: string };
  reason?: { line: number; text: string; tid?: number };
  threads: TextThread[];
  mappings: TextMapping[];
  files: { line: number; fd: number; type: string; path: string }[];
  signals: { line: number; name: string; text: string }[];
  problems: { line: number; text: string }[];
  /** the history of a crash image of `cryo run --checkpoint-every` */
  checkpoints: { line: number; index: number; text: string }[];
}

const FRAME = /^\s+#(\d+)\s+0x([0-9a-fA-F]+)\s+in\s+(.+?)(?:\s+at\s+(.+?):(\d+))?(?:\s+\(([^()\s]+)\))?\s*$/;
const MAPPING = /^ {2}([0-9a-fA-F]{8,16})-([0-9a-fA-F]{8,16})\s+([r-][w-][x-][ps])\s+(\w+)(?:\s+\d+){5}\s*(.*?)(?:\s+\[content stored\])?\s*$/;

export function parseImageText(text: string): ImageText {
  const lines = text.split(/\r?\n/);
  const t: ImageText = { lines, sections: [], keys: new Map(), threads: [], mappings: [], files: [], signals: [], problems: [], checkpoints: [] };
  let section = '';
  const close = (n: number): void => {
    const s = t.sections[t.sections.length - 1];
    if (s) s.end = lastNonEmpty(lines, s.line, n);
    const th = t.threads[t.threads.length - 1];
    if (th && th.end < 0) th.end = lastNonEmpty(lines, th.line, n);
  };
  lines.forEach((l, n) => {
    let m: RegExpExecArray | null;
    if (/^\S/.test(l)) {
      close(n - 1);
      if ((m = /^process (\d+) \((.*?)\)/.exec(l))) {
        section = 'process';
        t.process = { line: n, end: n, pid: Number(m[1]), comm: m[2] };
      } else if ((m = /^reason: (.*)$/.exec(l))) {
        section = 'reason';
        const tid = /in thread (\d+)/.exec(m[1]);
        t.reason = { line: n, text: m[1], tid: tid ? Number(tid[1]) : undefined };
      } else if ((m = /^([a-z][a-z ]*):/.exec(l))) section = m[1];
      else section = '';
      if (section) t.sections.push({ name: section, line: n, end: n });
      return;
    }
    switch (section) {
      case 'process':
        if ((m = /^ {2}(\S+)\s/.exec(l))) t.keys.set(m[1], n);
        break;
      case 'threads':
        if ((m = /^ {2}thread (\d+)\s/.exec(l))) {
          if (t.threads.length) t.threads[t.threads.length - 1].end = lastNonEmpty(lines, t.threads[t.threads.length - 1].line, n - 1);
          t.threads.push({ line: n, end: -1, tid: Number(m[1]), frames: [] });
        } else if ((m = FRAME.exec(l)) && t.threads.length) {
          t.threads[t.threads.length - 1].frames.push({
            line: n,
            index: Number(m[1]),
            pc: BigInt('0x' + m[2]),
            function: m[3].replace(/ \[inlined\]$/, ''),
            file: m[4],
            fileLine: m[5] ? Number(m[5]) : undefined,
            module: m[6],
          });
        }
        break;
      case 'mappings':
        if ((m = MAPPING.exec(l)))
          t.mappings.push({ line: n, start: BigInt('0x' + m[1]), end: BigInt('0x' + m[2]), perms: m[3], kind: m[4], path: m[5] });
        break;
      case 'files':
        if ((m = /^\s+(\d+)\s+(\S+)\s+flags\s+\S+\s+pos\s+\d+\s+(.*)$/.exec(l))) t.files.push({ line: n, fd: Number(m[1]), type: m[2], path: m[3] });
        break;
      case 'signal actions':
        if ((m = /^\s+(SIG\S+)\s+(.*)$/.exec(l))) t.signals.push({ line: n, name: m[1], text: m[2] });
        break;
      case 'history':
        if ((m = /^\s+checkpoint (\d+)\s+(.*)$/.exec(l))) t.checkpoints.push({ line: n, index: Number(m[1]), text: m[2].replace(/\s+image \d+ bytes at offset \d+$/, '') });
        break;
      case 'revive here':
        if ((m = /^\s+- (.*)$/.exec(l))) t.problems.push({ line: n, text: m[1] });
        break;
    }
  });
  close(lines.length - 1);
  if (t.process) t.process.end = t.sections.find((s) => s.name === 'process')!.end;
  return t;
}

function lastNonEmpty(lines: string[], from: number, to: number): number {
  let e = to;
  while (e > from && !lines[e]?.trim()) e--;
  return Math.max(from, e);
}

/** The hex number under a column of a line, if any: 0x-prefixed anywhere, or the bare
 * start/end of a mapping line. */
export function addressAt(line: string, col: number): { value: bigint; start: number; end: number } | undefined {
  const re = MAPPING.test(line) ? /\b(?:0x)?[0-9a-fA-F]{8,16}\b|\b0x[0-9a-fA-F]+\b/g : /\b0x[0-9a-fA-F]+\b/g;
  for (let m; (m = re.exec(line)); ) {
    if (col < m.index || col > m.index + m[0].length) continue;
    // a mapping line's bare numbers after the range are counts, never this long: only the range
    if (!m[0].startsWith('0x') && m.index > 40) continue;
    return { value: BigInt(m[0].startsWith('0x') ? m[0] : '0x' + m[0]), start: m.index, end: m.index + m[0].length };
  }
  return undefined;
}
