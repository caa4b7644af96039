/**
 * The spec travels in every state of a bake, and Step Functions ends an execution whose state
 * exceeds 256 KB with States.DataLimitExceeded, which no Catch takes: nothing is recorded. On
 * the real `statemachines/bake.asl.json` (local runner): a spec at MAX_SPEC_BYTES keeps every
 * state far below the limit, and one over it fails in ResolveBake, recorded, with nothing built.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_SPEC_BYTES } from '../../src/cores/precheck.ts';
import { runBake } from '../../src/local/runner.ts';
import { loadSpec } from '../../src/spec.ts';
import { TASKS, type TaskName } from '../../src/tasks.ts';
import { makeWorkspace, type SpecJson, type Workspace } from '../helpers/local-bake.ts';

/** Step Functions' quota on the size of a state's input or output (UTF-8 bytes). */
const STATE_LIMIT_BYTES = 256 * 1024;
const size = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

let workspaces: Workspace[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

/** The example, its first validation event padded so that the parsed spec is `bytes` as JSON. */
async function workspaceWithSpecOf(bytes: number, options: { realBuild?: boolean | 'fixture' } = {}): Promise<Workspace> {
  const ws = await makeWorkspace(options);
  workspaces.push(ws);
  const raw = JSON.parse(await readFile(ws.specFile, 'utf8')) as SpecJson;
  const firstCase = raw.functions[0]?.validation.cases[0] as { event: { pad?: string } };
  firstCase.event.pad = '';
  await writeFile(ws.specFile, JSON.stringify(raw));
  const base = size((await loadSpec(ws.specFile)).spec);
  firstCase.event.pad = 'x'.repeat(bytes - base);
  await writeFile(ws.specFile, JSON.stringify(raw));
  expect(size((await loadSpec(ws.specFile)).spec)).toBe(bytes);
  return ws;
}

/** Record the size of what every task receives (its state's input after Parameters) and returns. */
function measureTasks(): Array<{ task: TaskName; input: number; output: number }> {
  const sizes: Array<{ task: TaskName; input: number; output: number }> = [];
  for (const task of Object.keys(TASKS) as TaskName[]) {
    const original = TASKS[task] as (payload: unknown, deps: unknown) => Promise<unknown>;
    vi.spyOn(TASKS, task).mockImplementation((async (payload: unknown, deps: unknown) => {
      sizes.push({ task, input: size(payload), output: 0 });
      const result = await original(payload, deps);
      (sizes.at(-1) as { output: number }).output = size(result);
      return result;
    }) as never);
  }
  return sizes;
}

describe('the size of a bake state', () => {
  it(`stays far below 256 KB in every state for a spec of MAX_SPEC_BYTES (${MAX_SPEC_BYTES})`, async () => {
    // Prepare
    // The real local build (of a stand-in node: the size of the states does not depend on its bytes), validated in the sandbox's root.
    const ws = await workspaceWithSpecOf(MAX_SPEC_BYTES, { realBuild: 'fixture' });
    const sizes = measureTasks();

    // Act
    const outcome = await runBake(ws.request('size-max'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

    // Assess
    if (outcome.status !== 'succeeded')
      expect.fail(
        outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
      );
    expect(sizes.map((s) => s.task)).toEqual(expect.arrayContaining(['resolveBake', 'validate', 'release', 'recordSuccess']));
    const largest = Math.max(size(outcome.output), ...sizes.flatMap((s) => [s.input, s.output]));
    expect(largest).toBeGreaterThan(MAX_SPEC_BYTES);
    // Half the quota at most: the spec is in the state once, whatever else the bake adds.
    expect(largest).toBeLessThan(STATE_LIMIT_BYTES / 2);
  }, 120_000);

  it('fails a spec one byte over in ResolveBake with BakeSpecError, recorded, with nothing built or published', async () => {
    // Prepare
    const ws = await workspaceWithSpecOf(MAX_SPEC_BYTES + 1);
    const sizes = measureTasks();

    // Act
    const outcome = await runBake(ws.request('size-over'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

    // Assess: RecordFailure ran and the ledger has the failure; no image, layer or version.
    expect(outcome).toMatchObject({ status: 'failed', state: 'ResolveBake', error: 'BakeSpecError' });
    if (outcome.status !== 'failed') return;
    expect(outcome.cause).toContain(`the spec is ${MAX_SPEC_BYTES + 1} bytes as JSON; at most ${MAX_SPEC_BYTES} (32 KB)`);
    expect(outcome.cause).toContain('Largest parts: functions[0].validation.cases[0].event');
    expect(sizes.map((s) => s.task)).toEqual(['resolveBake', 'recordFailure']);
    expect(await ws.deps.ledger.list()).toMatchObject([
      { type: 'failed', bakeId: 'size-over', state: 'ResolveBake', error: 'BakeSpecError' },
    ]);
    expect(await ws.deps.layers.listVersions('hello-node22')).toEqual([]);
  });
});
