// The snapshot button and the Checkpoints view's requests, over DAP.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { DebugClient } from '@vscode/debugadapter-testsupport';
import type { DebugProtocol } from '@vscode/debugprotocol';
import { buildFixture, fixturesDir } from '../helpers/fixtures';
import { clientPool, launchTo } from './dap';

const client = clientPool();

const counterSrc = join(fixturesDir, 'counter.c');

/** What the Variables view and watch expressions show at the top frame. */
async function state(dc: DebugClient, tid: number) {
  const st = await dc.stackTraceRequest({ threadId: tid });
  const top = st.body.stackFrames[0];
  const sc = await dc.scopesRequest({ frameId: top.id });
  const args = await dc.variablesRequest({ variablesReference: sc.body.scopes.find((s) => s.name === 'Arguments')!.variablesReference });
  const watch = async (e: string) => (await dc.evaluateRequest({ expression: e, frameId: top.id, context: 'watch' })).body.result;
  return { line: top.line, fn: top.name, args: args.body.variables.map((v) => `${v.name}=${v.value}`), total: await watch('total'), counter: await watch('counter') };
}

describe('snapshots and the Checkpoints view', () => {
  test('snapshot, run on, restore from the view: the state is the snapshot`s; rename and delete; change events', async () => {
    const prog = buildFixture('counter.c');
    const dc = await client();
    const changes: DebugProtocol.Event[] = [];
    dc.on('cryo/checkpointsChanged', (e: DebugProtocol.Event) => changes.push(e));
    const first = await launchTo(dc, { program: prog, args: ['9'] }, counterSrc, [{ line: 11, condition: 'i == 3' }]);
    const tid = first.body.threadId!;
    const before = await state(dc, tid);
    assert.deepEqual(before.args, ['i=3']);
    const snap = (await dc.customRequest('cryo/snapshot', { name: 'at i=3' })).body;
    assert.equal(snap.name, 'at i=3');
    assert.equal(snap.line, 11);
    assert.equal(snap.function, 'tick');
    // the view hears of it (every stop also sends the list, with how far back the timeline reaches)
    assert.ok(changes.some((e) => e.body.checkpoints.some((c: { id: number }) => c.id === snap.id)), 'a change event lists the snapshot');
    // run on to i == 7
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [{ line: 11, condition: 'i == 7' }] });
    const later = dc.waitForEvent('stopped');
    await dc.continueRequest({ threadId: tid });
    await later;
    const t2 = (await dc.threadsRequest()).body.threads[0].id;
    assert.deepEqual((await state(dc, t2)).args, ['i=7']);
    // restore: a stopped event, and everything as at the snapshot
    const restored = dc.waitForEvent('stopped') as Promise<DebugProtocol.StoppedEvent>;
    const r = await dc.customRequest('cryo/restore', { id: snap.id });
    const ev = await restored;
    assert.equal(ev.body.reason, 'restore');
    assert.equal(ev.body.threadId, r.body.pid);
    assert.deepEqual(await state(dc, r.body.pid), before);
    // the view's list, rename, delete
    await dc.customRequest('cryo/renameCheckpoint', { id: snap.id, name: 'three' });
    const list = (await dc.customRequest('cryo/checkpoints', {})).body.checkpoints;
    assert.deepEqual(list.map((c: { name: string }) => c.name), ['three']);
    await assert.rejects(dc.customRequest('cryo/restore', { id: 999 }), /no checkpoint 999/i);
    // and the restored program runs on to its own end
    await dc.setBreakpointsRequest({ source: { path: counterSrc }, breakpoints: [] });
    const exited = dc.waitForEvent('exited') as Promise<DebugProtocol.ExitedEvent>;
    await dc.continueRequest({ threadId: r.body.pid });
    assert.equal((await exited).body.exitCode, spawnSync(prog, ['9']).status);
  });

  test('a snapshot while the program runs is refused with what to do', async () => {
    const prog = buildFixture('sleeper.c');
    const dc = await client();
    await dc.initializeRequest();
    const init = dc.waitForEvent('initialized');
    const launched = dc.launch({ program: prog, args: ['100', '20'] });
    await init;
    await dc.configurationDoneRequest();
    await launched;
    await new Promise((r) => setTimeout(r, 100));
    await assert.rejects(dc.customRequest('cryo/snapshot', {}), /running: pause it first/);
  });
});
