/**
 * The release part of the real `statemachines/bake.asl.json` on the local runner:
 * gradual releases through the Wait/ShiftTraffic loop (waits at 0 ms through the
 * runner's waitTimeOverrides), with and without an alarm firing, and a release of
 * several functions that fails on one of them.
 */
import { rm } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { renderTo } from '../../src/cli/render.ts';
import { manifestKey, type PinManifest } from '../../src/cores/record.ts';
import { type RunOutcome, runBake, type UpToDateOutcome } from '../../src/local/runner.ts';
import type { AliasInfo } from '../../src/ports/lambda.ts';
import { makeWorkspace, type SpecJson, seedLiveRelease, type Workspace } from '../helpers/local-bake.ts';

let workspaces: Workspace[] = [];
afterEach(async () => {
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

async function workspace(spec?: (spec: SpecJson) => void): Promise<Workspace> {
  const ws = await makeWorkspace(spec ? { spec } : {});
  workspaces.push(ws);
  return ws;
}

async function bake(ws: Workspace, bakeId: string, lines: string[] = []): Promise<RunOutcome | UpToDateOutcome> {
  return runBake(ws.request(bakeId), {
    deps: ws.deps,
    approve: 'auto',
    approver: 'tester',
    retryIntervalMs: 0,
    waitMs: 0,
    onEvent: renderTo((line) => lines.push(line)),
  });
}

const entered = (lines: string[]) => lines.filter((l) => l.startsWith('▸ ')).map((l) => l.slice(2));

const gradual = (steps: Array<{ weight: number; minutes: number }>, alarms: string[]) => (spec: SpecJson) => {
  spec.release = { steps, alarms };
};

/** Record every alias move the release makes, as the routing it sets. */
function recordMoves(ws: Workspace, after?: (move: AliasInfo) => Promise<void>): string[] {
  const moves: string[] = [];
  const setAlias = ws.deps.functions.setAlias.bind(ws.deps.functions);
  ws.deps.functions.setAlias = async (name, alias, version, expected, weights) => {
    const moved = await setAlias(name, alias, version, expected, weights);
    const routing = Object.entries(moved.weights).map(([v, w]) => ` + ${w * 100}% on ${v}`);
    moves.push(`${name}:${alias} → ${version}${routing.join('')}`);
    await after?.(moved);
    return moved;
  };
  return moves;
}

describe('gradual release on the local runner', () => {
  it('shifts 10%, then 50%, then all traffic while the alarm stays OK, waiting in the state machine', async () => {
    // Prepare
    const ws = await workspace(
      gradual(
        [
          { weight: 10, minutes: 5 },
          { weight: 50, minutes: 5 },
        ],
        ['hello-errors'],
      ),
    );
    await seedLiveRelease(ws);
    await ws.deps.alarms.set('hello-errors', 'OK', null, new Date());
    const moves = recordMoves(ws);
    const lines: string[] = [];
    const started = Date.now();

    // Act
    const outcome = await bake(ws, 'bake-gradual', lines);

    // Assess
    if (outcome.status !== 'succeeded')
      expect.fail(
        outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
      );
    // Ten minutes of waiting took no time: the Wait states were overridden, no Lambda slept.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(entered(lines).slice(-4)).toEqual(['Release', 'ShiftTraffic', 'ShiftTraffic', 'RecordSuccess']);
    expect(moves).toEqual(['hello:live → 1 + 10% on 2', 'hello:live → 1 + 50% on 2', 'hello:live → 2']);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '2', weights: {} });
    expect(lines.some((l) => l.includes('hello:live 10% on 2 (rest on 1); alarms checked again in 300 s'))).toBe(true);
    const ledger = await ws.deps.ledger.list();
    expect(ledger).toEqual([
      expect.objectContaining({ type: 'released', functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }] }),
    ]);
    expect(outcome.output.release?.gradual).toMatchObject({ step: 2, done: true, alarms: ['hello-errors'] });
  });

  it('moves the alias back to the old version when the alarm fires, and fails with CanaryAlarmError', async () => {
    // Prepare: the alarm goes off once the first 10% reach the new version.
    const ws = await workspace(
      gradual(
        [
          { weight: 10, minutes: 5 },
          { weight: 50, minutes: 5 },
        ],
        ['hello-errors'],
      ),
    );
    await seedLiveRelease(ws);
    await ws.deps.alarms.set('hello-errors', 'OK', null, new Date());
    const moves = recordMoves(ws, async (moved) => {
      if (moved.weights['2'] === 0.1) await ws.deps.alarms.set('hello-errors', 'ALARM', 'errors on version 2', new Date());
    });
    const lines: string[] = [];

    // Act
    const outcome = await bake(ws, 'bake-canary', lines);

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'ShiftTraffic', error: 'CanaryAlarmError' });
    if (outcome.status !== 'failed') return;
    expect(outcome.cause).toBe(
      'alarm hello-errors (ALARM) at 10% on the new version (step 1/2): every alias is back on its previous version (hello:live → 1)',
    );
    expect(entered(lines).slice(-3)).toEqual(['Release', 'ShiftTraffic', 'RecordFailure']);
    // The progress shows the step failing, not also succeeding.
    expect(lines.filter((l) => /^[✓✗] ShiftTraffic/.test(l)).map((l) => l.slice(0, 14))).toEqual(['✗ ShiftTraffic']);
    expect(moves).toEqual(['hello:live → 1 + 10% on 2', 'hello:live → 1']);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: {} });
    const ledger = await ws.deps.ledger.list();
    expect(ledger).toEqual([
      expect.objectContaining({
        type: 'failed',
        bakeId: 'bake-canary',
        state: 'ShiftTraffic',
        error: 'CanaryAlarmError',
        functions: ['hello'],
      }),
    ]);
    const manifest = await ws.deps.artefacts.getJson<PinManifest>(manifestKey('bake-canary'));
    expect(manifest).toMatchObject({ status: 'failed', failure: { state: 'ShiftTraffic', error: 'CanaryAlarmError' } });
  });

  it('refuses in ResolveBake, before anything is built, when an alarm named in the spec does not exist, moving nothing', async () => {
    // Prepare
    const ws = await workspace(gradual([{ weight: 10, minutes: 5 }], ['no-such-alarm']));
    const before = await seedLiveRelease(ws);

    // Act
    const outcome = await bake(ws, 'bake-no-alarm');

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'ResolveBake', error: 'BakeSpecError' });
    expect(outcome.status === 'failed' && outcome.cause).toContain('release.alarms: no alarm named "no-such-alarm"');
    expect(await ws.deps.functions.getAlias('hello', 'live')).toEqual(before);
    expect(await ws.deps.layers.listVersions('hello-node22')).toEqual([]);
  });
});

describe('several functions in one bake', () => {
  const twoFunctions = (spec: SpecJson) => {
    const [hello] = spec.functions;
    if (hello) spec.functions.push({ ...structuredClone(hello), name: 'hello2' });
  };

  it('releases one layer to each function, each with its own version and alias', async () => {
    // Prepare
    const ws = await workspace(twoFunctions);
    await seedLiveRelease(ws, 'hello');
    await seedLiveRelease(ws, 'hello2');

    // Act
    const outcome = await bake(ws, 'bake-two');

    // Assess
    if (outcome.status !== 'succeeded')
      expect.fail(
        outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
      );
    expect(outcome.output.release?.functions).toEqual([
      { name: 'hello', alias: 'live', from: '1', to: '2', changed: true },
      { name: 'hello2', alias: 'live', from: '1', to: '2', changed: true },
    ]);
    const layers = await Promise.all(['hello', 'hello2'].map(async (n) => (await ws.deps.functions.getVersion(n, '2'))?.layers));
    expect(layers[0]).toEqual(layers[1]);
    expect(outcome.output.validation?.functions.map((f) => f.name)).toEqual(['hello', 'hello2']);
  });

  it('leaves every alias untouched when one function lost its new version before the release', async () => {
    // Prepare: hello2's version 2 disappears while the approval is pending.
    const ws = await workspace(twoFunctions);
    const before = [await seedLiveRelease(ws, 'hello'), await seedLiveRelease(ws, 'hello2')];
    const requested = ws.deps.notifier.approvalRequested.bind(ws.deps.notifier);
    ws.deps.notifier.approvalRequested = async (record) => {
      await rm(ws.home.path('functions', 'hello2', 'versions', '2.json'));
      return requested(record);
    };
    const moves = recordMoves(ws);

    // Act
    const outcome = await bake(ws, 'bake-missing');

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'Release', error: 'NotFoundError' });
    if (outcome.status === 'failed') expect(outcome.cause).toContain('hello2 has no version 2 any more');
    expect(moves).toEqual([]);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toEqual(before[0]);
    expect(await ws.deps.functions.getAlias('hello2', 'live')).toEqual(before[1]);
    expect(await ws.deps.ledger.list()).toEqual([
      expect.objectContaining({ type: 'failed', state: 'Release', functions: ['hello', 'hello2'] }),
    ]);
  });
});

describe('a gradual release that fails otherwise', () => {
  it('undoes the shift through UndoRelease when someone moves the alias mid-release', async () => {
    // Prepare: after the first 10%, someone sends all the traffic to 1 by hand.
    const ws = await workspace(
      gradual(
        [
          { weight: 10, minutes: 5 },
          { weight: 50, minutes: 5 },
        ],
        [],
      ),
    );
    await seedLiveRelease(ws);
    const other = ws.otherTerminal();
    let handMove: AliasInfo | undefined;
    recordMoves(ws, async (moved) => {
      if (moved.weights['2'] === 0.1 && !handMove) handMove = await other.functions.setAlias('hello', 'live', '1', moved.revisionId);
    });
    const lines: string[] = [];

    // Act
    const outcome = await bake(ws, 'bake-moved', lines);

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'ShiftTraffic', error: 'AliasConflictError' });
    expect(entered(lines).slice(-4)).toEqual(['Release', 'ShiftTraffic', 'UndoRelease', 'RecordFailure']);
    // The hand move is not overwritten, and the cause says the alias was left alone.
    expect(await ws.deps.functions.getAlias('hello', 'live')).toEqual(handMove);
    if (outcome.status === 'failed') expect(outcome.cause).toContain('the release was undone except hello:live (it is on 1 now, not 2)');
  });
});
