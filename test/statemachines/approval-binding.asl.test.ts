/**
 * An approval binds the live state it was shown (#11.1), through the real
 * `statemachines/bake.asl.json` on the local runner: Release moves each alias only from
 * the revision the approver was asked about, so a rollback made while a bake waits is
 * not undone by its approval, and of bakes waiting side by side only the first approved
 * releases.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decideApproval } from '../../src/cores/approval.ts';
import { rollback } from '../../src/cores/rollback.ts';
import { type RunOutcome, runBake, type UpToDateOutcome } from '../../src/local/runner.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';
import { approvalRequested, FakeImageBuilder, makeWorkspace, seedLiveRelease, type Workspace } from '../helpers/local-bake.ts';

let workspaces: Workspace[] = [];
afterEach(async () => {
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace();
  workspaces.push(ws);
  return ws;
}

/** Deps of another `bakery bake` on the same home (its own process, in effect), with the fake build. */
function terminal(ws: Workspace) {
  const deps = ws.otherTerminal();
  deps.imageBuilder = new FakeImageBuilder(deps.callbacks, ws.runtimeTree);
  return deps;
}

function bake(
  ws: Workspace,
  bakeId: string,
  deps = terminal(ws),
  approve: 'auto' | 'wait' = 'auto',
): Promise<RunOutcome | UpToDateOutcome> {
  return runBake(ws.request(bakeId), { deps, approve, approver: 'tester', retryIntervalMs: 0 });
}

/** New function code, so the next bake publishes a new version. */
const changeCode = (ws: Workspace, n: number) => appendFile(path.join(ws.dir, 'project', 'src', 'index.mjs'), `// change ${n}\n`);

/** Start a bake that waits for a decision; resolves once its approval was asked for. */
async function waitingBake(ws: Workspace, bakeId: string) {
  const deps = terminal(ws);
  const asked = approvalRequested(deps);
  const stale: Array<{ record: ApprovalRecord; reason: string }> = [];
  const approvalStale = deps.notifier.approvalStale.bind(deps.notifier);
  deps.notifier.approvalStale = async (record, reason) => {
    stale.push({ record, reason });
    await approvalStale(record, reason);
  };
  const running = bake(ws, bakeId, deps, 'wait');
  const record = await Promise.race([asked, running.then((o) => expect.fail(`${bakeId} ended: ${JSON.stringify(o)}`))]);
  return { record, running, stale };
}

const live = async (ws: Workspace) => (await ws.deps.functions.getAlias('hello', 'live'))?.version;

describe('an approval binds what was live when it was asked for', () => {
  it('a rollback while a bake waits is not undone: the approved release fails stale and nothing moves', { timeout: 120_000 }, async () => {
    // Prepare: live 1, then two released bakes (2, 3), so a rollback can go back to 2.
    const ws = await workspace();
    await seedLiveRelease(ws);
    await changeCode(ws, 1);
    expect((await bake(ws, 'bake-2')).status).toBe('succeeded');
    await changeCode(ws, 2);
    expect((await bake(ws, 'bake-3')).status).toBe('succeeded');
    await changeCode(ws, 3);
    const waiting = await waitingBake(ws, 'bake-4');
    expect(waiting.record.summary.functions).toEqual([expect.objectContaining({ live: '3', version: '4' })]);

    // Act: roll back while bake-4 waits, then approve bake-4.
    const back = await rollback({ name: 'hello', alias: 'live', by: 'oncall' }, ws.otherTerminal());
    await decideApproval({ ref: 'bake-4', outcome: 'approved', by: 'dave' }, ws.otherTerminal());
    const outcome = await waiting.running;

    // Assess: the rollback stands; the bake failed naming what changed; the failure is recorded once.
    expect(back).toMatchObject({ from: '3', to: '2', changed: true });
    expect(outcome).toMatchObject({ status: 'failed', state: 'Release', error: 'AliasConflictError' });
    if (outcome.status !== 'failed') return;
    expect(outcome.cause).toContain('hello:live is on 2 since the approval, which was for 3 → 4');
    expect(await live(ws)).toBe('2');
    // The approval's message says it went stale, and why.
    expect(waiting.stale).toEqual([{ record: expect.objectContaining({ bakeId: 'bake-4' }), reason: outcome.cause }]);
    const ledger = await ws.deps.ledger.list();
    expect(ledger.map((e) => `${e.type}:${e.bakeId}`)).toEqual([
      'released:bake-2',
      'released:bake-3',
      'rolledBack:bake-2',
      'failed:bake-4',
    ]);
  });

  it('three bakes waiting side by side, approved in turn: the first releases, the other two fail stale', { timeout: 120_000 }, async () => {
    // Prepare: live 1; three bakes of new code (versions 2, 3, 4) all asked from live 1.
    const ws = await workspace();
    await seedLiveRelease(ws);
    const waiting = [];
    for (const n of [2, 3, 4]) {
      await changeCode(ws, n);
      waiting.push(await waitingBake(ws, `bake-${n}`));
    }
    expect(waiting.map((w) => w.record.summary.functions[0]?.live)).toEqual(['1', '1', '1']);

    // Act: approve the newest first, then the others (today: 1→4, then 4→3, then 3→2).
    const outcomes: (RunOutcome | UpToDateOutcome)[] = [];
    for (const i of [2, 1, 0]) {
      const w = waiting[i];
      if (!w) continue;
      await decideApproval({ ref: w.record.bakeId, outcome: 'approved', by: 'dave' }, ws.otherTerminal());
      outcomes.push(await w.running);
    }

    // Assess
    expect(outcomes.map((o) => (o.status === 'failed' ? `${o.state}:${o.error}` : o.status))).toEqual([
      'succeeded',
      'Release:AliasConflictError',
      'Release:AliasConflictError',
    ]);
    expect(outcomes[1]?.status === 'failed' && outcomes[1].cause).toContain('hello:live is on 4 since the approval, which was for 1 → 3');
    expect(outcomes[2]?.status === 'failed' && outcomes[2].cause).toContain('hello:live is on 4 since the approval, which was for 1 → 2');
    expect(await live(ws)).toBe('4');
    const ledger = await ws.deps.ledger.list();
    expect(ledger.map((e) => `${e.type}:${e.bakeId}`)).toEqual(['released:bake-4', 'failed:bake-3', 'failed:bake-2']);
  });
});
