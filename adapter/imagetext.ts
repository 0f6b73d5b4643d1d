// The text of "Cryo: Show Image as Text": `cryo inspect`'s rendering of an image, with
// each thread's top frames under its heading line and, at the end, whether the image
// could be revived on this machine. The extension shows it and the language server
// reads it (outline, hovers, diagnostics), so both must agree on this one function.
//
// Added lines are shaped like the rest of the rendering so that the grammar and the
// server's parser (adapter/imageServer/parse.ts) read them with the same rules:
//     #0  0x0000558e38d24179 in deref at /src/img_crash.c:12
//     #2  0x00007f5d4778524a in __libc_start_call_main at sysdeps/nptl/x.h:58 (libc.so.6)
//     #4  0x0000558e38d240a1 in _start (img_crash)
import { basename } from 'node:path';
import { Image } from './engine';
import { ImageTarget } from './image';
import { Program, type Frame, type Module } from './symbols';

/** Frames shown per thread: enough to see where it is and who called it. */
export const TOP_FRAMES = 12;

/** An open image with what the text and the server need from it. Close it when done. */
export class ImageView {
  readonly image: Image;
  readonly target: ImageTarget;
  /** undefined when the executable cannot be read (then programError says why) */
  readonly program?: Program;
  readonly programError?: string;
  /** files on disk now that are not the ones the image mapped (another build-id): their symbols would lie */
  readonly stale = new Set<Module>();
  private stacks = new Map<number, { frames: Frame[]; more: boolean } | { error: string }>();
  private rendered?: string;

  constructor(readonly path: string) {
    this.image = new Image(path);
    try {
      this.target = new ImageTarget(this.image);
    } catch (e) {
      this.image.close();
      throw e;
    }
    try {
      this.program = new Program(this.target);
    } catch (e) {
      this.programError = (e as Error).message;
    }
    for (const m of this.program?.modules ?? []) {
      const mapped = this.target.info.mappings.find((x) => BigInt(x.start) <= m.lo && m.lo < BigInt(x.end));
      let now: string | undefined;
      try {
        now = m.elf.buildId();
      } catch {
        /* unreadable: the module has no symbols anyway */
      }
      if (mapped?.build_id && now && mapped.build_id !== now) this.stale.add(m);
    }
  }

  /** The top frames of a thread (asking one more tells whether the stack goes on). */
  stack(tid: number): { frames: Frame[]; more: boolean } | { error: string } {
    let s = this.stacks.get(tid);
    if (!s) {
      if (!this.program) s = { error: this.programError ?? 'no symbols' };
      else if (this.stale.size)
        s = { error: `${[...this.stale].map((m) => m.path).join(', ')} changed since the image was taken (another build-id): frames would be wrong` };
      else {
        try {
          const all = this.program.backtrace(this.target.dwarfRegisters(tid), TOP_FRAMES + 1);
          s = { frames: all.slice(0, TOP_FRAMES), more: all.length > TOP_FRAMES };
        } catch (e) {
          s = { error: (e as Error).message };
        }
      }
      this.stacks.set(tid, s);
    }
    return s;
  }

  text(): string {
    return (this.rendered ??= this.render());
  }

  private render(): string {
    const lines = this.image.text().replace(/\n$/, '').split('\n');
    const out: string[] = [];
    let inThreads = false;
    for (const line of lines) {
      out.push(line);
      if (/^threads: \d+/.test(line)) inThreads = true;
      else if (/^\S/.test(line)) inThreads = false;
      const m = inThreads ? /^ {2}thread (\d+) {2}pc /.exec(line) : null;
      if (m) out.push(...this.frameLines(Number(m[1])));
    }
    const problems = this.image.problems();
    out.push('');
    if (!problems) out.push('revive here: possible');
    else {
      const list = problemList(problems);
      out.push(`revive here: ${list.length} problem${list.length === 1 ? '' : 's'}`);
      for (const p of list) out.push(`  - ${p}`);
    }
    return out.join('\n') + '\n';
  }

  private frameLines(tid: number): string[] {
    const s = this.stack(tid);
    if ('error' in s) return [`    (no backtrace: ${oneLine(s.error)})`];
    const lines = s.frames.map((f) => frameLine(f, this.program?.exe.path));
    if (!s.frames.length) lines.push('    (no frames)');
    if (s.more) lines.push('    (more frames not shown)');
    return lines;
  }

  close(): void {
    this.image.close();
  }
}

export function frameLine(f: Frame, exePath?: string): string {
  const addr = '0x' + f.pc.toString(16).padStart(16, '0');
  const name = f.signalFrame ? '<signal handler called>' : (f.function ?? '??') + (f.inlined ? ' [inlined]' : '');
  let s = `    #${f.index}  ${addr} in ${oneLine(name)}`;
  if (f.source) s += ` at ${f.source.file}:${f.source.line}`;
  // the module says where a frame without source (or in a library) comes from
  const mod = f.module?.path;
  if (mod && (!f.source || mod !== exePath)) s += ` (${basename(mod)})`;
  return s;
}

/** The list inside Image.problems()' message ("...:\n  - one\n  - two"). */
export function problemList(message: string): string[] {
  const items = message
    .split('\n')
    .filter((l) => /^\s*- /.test(l))
    .map((l) => l.replace(/^\s*- /, '').trim());
  return items.length ? items : [oneLine(message)];
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}

/** The text of an image, as "Cryo: Show Image as Text" shows it. */
export function renderImage(path: string): string {
  const v = new ImageView(path);
  try {
    return v.text();
  } finally {
    v.close();
  }
}
