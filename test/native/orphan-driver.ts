// Stands in for an adapter that dies: launches a debuggee, takes a checkpoint, prints
// both pids, then is killed by the test (SIGKILL) or crashes on its own (abort).
import { Session } from '../../adapter/engine';
import { symbolAddress } from '../helpers/elf';

const [prog, how] = process.argv.slice(2);
const s = new Session();
const { pid } = s.launch({ program: prog, args: ['1000000000'], stdout: { mode: 'null' } });
s.insertBreakpoint(symbolAddress(pid, prog, 'tick'));
s.continue();
s.waitStop().then(() => {
  const cp = s.checkpoint();
  const frozen = s.checkpoints().find((c) => c.id === cp)!.pid;
  s.removeBreakpoint(symbolAddress(pid, prog, 'tick'));
  s.continue();
  process.stdout.write(`pids ${pid} ${frozen}\n`);
  if (how === 'crash') setTimeout(() => process.abort(), 100);
  else setInterval(() => {}, 1000);
});
