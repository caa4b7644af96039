/**
 * The state contract (src/state.ts) on the real `statemachines/bake.asl.json`, run by the
 * local runner: a state input that breaks it fails at the state that received it, with a
 * StateContractError naming the field; and the states of the example bake stay far
 * below Step Functions' limit of 256 KB per state.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { manifestKey, type PinManifest } from '../../src/cores/record.ts';
import { runBake } from '../../src/local/runner.ts';
import type { TaskCallbacks } from '../../src/ports/callbacks.ts';
import type { Json } from '../../src/state.ts';
import { TASKS, type TaskName } from '../../src/tasks.ts';
import { FakeImageBuilder, makeWorkspace, type Workspace } from '../helpers/local-bake.ts';

/** Step Functions' quota on the size of a state's input or output (UTF-8 bytes). */
const STATE_LIMIT_BYTES = 256 * 1024;
const size = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

let workspaces: Workspace[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace();
  workspaces.push(ws);
  return ws;
}

describe('the state contract on the bake state machine', () => {
  it('fails PublishLayer with StateContractError naming $.image.bakeKey when the build sends an image without it, publishing nothing', async () => {
    // Prepare: a build whose result lacks its bake key (an image builder out of step with the contract).
    const ws = await workspace();
    const callbacks: TaskCallbacks = {
      succeed: (token, output) => {
        const { bakeKey: _dropped, ...image } = output as { [key: string]: Json };
        return ws.deps.callbacks.succeed(token, image);
      },
      fail: (token, error, cause) => ws.deps.callbacks.fail(token, error, cause),
    };
    ws.deps.imageBuilder = new FakeImageBuilder(callbacks, ws.runtimeTree);

    // Act
    const outcome = await runBake(ws.request('contract-1'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

    // Assess: caught by PublishLayer's Catch and recorded; no layer version exists.
    expect(outcome).toMatchObject({ status: 'failed', state: 'PublishLayer', error: 'StateContractError' });
    if (outcome.status !== 'failed') return;
    expect(outcome.cause).toContain('PublishLayer: $.image.bakeKey: expected string, received undefined');
    expect(await ws.deps.layers.listVersions('hello-node22')).toEqual([]);
    const ledger = await ws.deps.ledger.list();
    expect(ledger).toMatchObject([{ type: 'failed', state: 'PublishLayer', error: 'StateContractError' }]);
    // RecordFailure still recorded it: the manifest has the bake, without the image that broke the contract.
    const manifest = await ws.deps.artefacts.getJson<PinManifest>(manifestKey('contract-1'));
    expect(manifest).toMatchObject({ status: 'failed', bakeKey: null, build: null, failure: { state: 'PublishLayer' } });
    expect(manifest?.recipe?.name).toBe('node22');
  });

  it('keeps every state of the example bake far below the 256 KB Step Functions allows', async () => {
    // Prepare: record what each task receives (its state's input, after Parameters) and returns.
    const ws = await workspace();
    const sizes: Array<{ task: TaskName; input: number; output: number }> = [];
    for (const task of Object.keys(TASKS) as TaskName[]) {
      const original = TASKS[task] as (payload: unknown, deps: unknown) => Promise<unknown>;
      vi.spyOn(TASKS, task).mockImplementation((async (payload: unknown, deps: unknown) => {
        const result = await original(payload, deps);
        sizes.push({ task, input: size(payload), output: size(result) });
        return result;
      }) as never);
    }

    // Act
    const outcome = await runBake(ws.request('size-1'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

    // Assess: the final output is the largest state (each state adds its result under its ResultPath).
    if (outcome.status !== 'succeeded')
      expect.fail(
        outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
      );
    expect(sizes.map((s) => s.task)).toEqual(
      expect.arrayContaining(['resolveBake', 'buildImage', 'publishLayer', 'publishVersion', 'validate', 'requestApproval', 'release']),
    );
    const largest = Math.max(size(outcome.output), ...sizes.flatMap((s) => [s.input, s.output]));
    expect(largest).toBeGreaterThan(1000);
    // A tenth of the quota: room for many more functions and cases before the limit matters.
    expect(largest).toBeLessThan(STATE_LIMIT_BYTES / 10);
  });
});
