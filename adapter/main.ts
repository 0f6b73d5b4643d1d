// The debug adapter process: DAP on stdio (as VS Code starts it), or on a TCP port
// with --server=PORT for development; `--summary IMAGE` prints an image's summary as
// JSON (for the .cryo editor, which keeps the native engine out of the extension host).
import { createServer } from 'node:net';
import { summarizeImage } from './imagesummary';
import { CryoSession } from './session';

const summaryAt = process.argv.indexOf('--summary');
const serverArg = process.argv.find((a) => a.startsWith('--server='));
if (summaryAt > 0) {
  try {
    process.stdout.write(JSON.stringify(summarizeImage(process.argv[summaryAt + 1] ?? '')) + '\n');
  } catch (e) {
    process.stdout.write(JSON.stringify({ error: (e as Error).message }) + '\n');
    process.exitCode = 1;
  }
} else if (serverArg) {
  const port = Number(serverArg.split('=')[1]);
  createServer((socket) => {
    // without it a stopped event written after a response waits for the client's delayed
    // ACK (Nagle): 44 ms per step here
    socket.setNoDelay(true);
    const s = new CryoSession();
    s.setRunAsServer(true);
    s.start(socket, socket);
  }).listen(port, '127.0.0.1', () => process.stderr.write(`cryo adapter listening on 127.0.0.1:${port}\n`));
} else {
  const s = new CryoSession();
  const out = batched(process.stdout);
  s.flushWith(out.flush);
  s.start(process.stdin, out);
}

/**
 * The messages one turn of the event loop sends, written to `out` in one write: a step
 * that ends at once sends its response and its stopped event together. Each write to the
 * editor's pipe wakes the editor's process, which costs the writer 20-60 us on a VM.
 */
function batched(out: NodeJS.WriteStream): NodeJS.WritableStream & { flush(): void } {
  let pending: string[] = [];
  const flush = () => {
    if (!pending.length) return;
    const data = pending.length === 1 ? pending[0] : pending.join('');
    pending = [];
    out.write(data, 'utf8');
  };
  process.on('exit', flush);
  // the protocol server calls only these (and listens for the stream's errors)
  const w = {
    on(event: string, listener: (...a: unknown[]) => void) {
      out.on(event, listener);
      return w;
    },
    write(data: string | Uint8Array): boolean {
      if (!pending.length) setImmediate(flush);
      pending.push(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'));
      return true;
    },
    end(): void {
      flush();
      out.end();
    },
    flush,
  };
  return w as unknown as NodeJS.WritableStream & { flush(): void };
}
