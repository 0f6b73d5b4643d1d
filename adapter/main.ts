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
    const s = new CryoSession();
    s.setRunAsServer(true);
    s.start(socket, socket);
  }).listen(port, '127.0.0.1', () => process.stderr.write(`cryo adapter listening on 127.0.0.1:${port}\n`));
} else {
  const s = new CryoSession();
  s.start(process.stdin, process.stdout);
}
