// A test file's engine sessions: each test's are closed after it (a launched debuggee
// and its checkpoints killed, an attached one detached), and no fixture process may be
// left behind.
import { after, afterEach } from 'node:test';
import { Session } from '../../adapter/engine';
import { assertNoFixtureProcesses } from './procs';

export function sessionPool(): () => Session {
  const sessions: Session[] = [];
  afterEach(async () => {
    for (const s of sessions.splice(0)) await s.close();
    assertNoFixtureProcesses('after test');
  });
  after(() => assertNoFixtureProcesses('after suite'));
  return () => {
    const s = new Session();
    sessions.push(s);
    return s;
  };
}
