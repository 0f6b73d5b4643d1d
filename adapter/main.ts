// The debug adapter process: DAP on stdio (as VS Code starts it), or on a TCP port
// with --server=PORT for development.
import { createServer } from 'node:net';
import { CryoSession } from './session';

const serverArg = process.argv.find((a) => a.startsWith('--server='));
if (serverArg) {
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
