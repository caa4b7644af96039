/**
 * The scheduled patch rebuild on the real `statemachines/bake.asl.json`, run in-process
 * by the local runner on the local adapters: a bake triggered as `schedule` whose bake
 * key and code equal the live release ends in UpToDate with nothing built, published or
 * asked for; a new patch or new code makes it bake and wait for approval as any bake.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderTo } from '../../src/cli/render.ts';
import { type RunBakeOptions, runBake, runScheduledBake } from '../../src/local/runner.ts';
import type { PatchResolver } from '../../src/ports/patches.ts';
import type { BakeRequest } from '../../src/state.ts';
import { type FakeImageBuilder, makeWorkspace, type Workspace } from '../helpers/local-bake.ts';

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

const scheduled = (ws: Workspace, bakeId: string, options: BakeRequest['options'] = {}): BakeRequest => ({
  bakeId,
  source: { type: 'file', path: ws.specFile },
  trigger: { type: 'schedule', scheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild' },
  options,
});

const run = (ws: Workspace, lines: string[] = []): RunBakeOptions => ({
  deps: ws.deps,
  approve: 'auto',
  approver: 'tester',
  retryIntervalMs: 0,
  onEvent: renderTo((line) => lines.push(line)),
});

/** What a bake leaves behind that an up-to-date one must not add to. */
async function footprint(ws: Workspace) {
  return {
    ledger: (await ws.deps.ledger.list()).length,
    layerVersions: (await ws.deps.layers.listVersions('hello-node22')).length,
    functionVersions: (await ws.deps.functions.listVersions('hello')).length,
    builds: (ws.deps.imageBuilder as FakeImageBuilder).started.length,
    alias: (await ws.deps.functions.getAlias('hello', 'live'))?.version ?? null,
  };
}

/** The first release, from the CLI, as any live function has. */
async function release(ws: Workspace): Promise<void> {
  const outcome = await runBake(ws.request('first-release'), run(ws));
  if (outcome.status !== 'succeeded') throw new Error(`the first release failed: ${outcome.error}: ${outcome.cause}`);
}

/** A resolver that has found a newer Node.js 22 patch than the one pinned. */
const newerPatch = (inner: PatchResolver): PatchResolver => ({
  runtime: async () => ({ parameters: { NodeVersion: '22.99.0', NodeSha256: 'ab'.repeat(32) }, source: 'test' }),
  baseImage: (pattern) => inner.baseImage(pattern),
});

describe('scheduled patch rebuild on the bake state machine', () => {
  it('ends UpToDate when bake key and code are unchanged: no build, no layer or function version, no approval', async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const before = await footprint(ws);
    const lines: string[] = [];

    // Act
    const outcome = await runScheduledBake(scheduled(ws, 'patch-2026W47-hello'), run(ws, lines));

    // Assess
    expect(outcome.status).toBe('upToDate');
    if (outcome.status !== 'upToDate') return;
    expect(outcome.bakeId).toBe('patch-2026W47-hello');
    expect(outcome.output.bake.upToDate).toBe(true);
    expect(outcome.output.bake.upToDateWith).toEqual(['first-release']);
    expect(outcome.output.bake.patched).toEqual([]);
    expect(outcome.output).not.toHaveProperty('image');
    expect(outcome.output).not.toHaveProperty('layer');
    expect(outcome.output).not.toHaveProperty('approval');
    expect(await footprint(ws)).toEqual(before);
    expect(await ws.deps.approvals.findByBake('patch-2026W47-hello')).toBeUndefined();
    expect(lines.filter((l) => l.startsWith('▸'))).toEqual(['▸ ResolveBake']);
    expect(lines.join('\n')).toContain('up to date: same bake key and code as the live release of first-release');
  });

  it('bakes and waits for approval like any bake when a newer runtime patch changes the bake key', async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const before = await footprint(ws);
    ws.deps.patches = newerPatch(ws.deps.patches);
    const lines: string[] = [];

    // Act
    const outcome = await runScheduledBake(scheduled(ws, 'patch-2026W48-hello'), run(ws, lines));

    // Assess
    if (outcome.status !== 'succeeded') throw new Error(`expected a release, got ${JSON.stringify(outcome)}`);
    expect(outcome.output.bake?.upToDate).toBe(false);
    expect(outcome.output.bake?.patched).toEqual([
      { field: 'parameters.NodeVersion', from: '22.23.3', to: '22.99.0' },
      { field: 'parameters.NodeSha256', from: expect.stringMatching(/^[0-9a-f]{64}$/), to: 'ab'.repeat(32) },
    ]);
    const builder = ws.deps.imageBuilder as FakeImageBuilder;
    expect(builder.started.at(-1)?.recipe.parameters.NodeVersion).toBe('22.99.0');
    expect(builder.started.at(-1)?.bakeKey).toBe(outcome.output.bake?.bakeKey);
    expect(await ws.deps.approvals.findByBake('patch-2026W48-hello')).toMatchObject({ decision: { outcome: 'approved' } });
    const after = await footprint(ws);
    expect(after.builds).toBe(before.builds + 1);
    expect(after.ledger).toBe(before.ledger + 1);
    const [last] = (await ws.deps.ledger.list()).slice(-1);
    expect(last).toMatchObject({ type: 'released', bakeId: 'patch-2026W48-hello', trigger: { type: 'schedule' } });
    expect(lines.join('\n')).toContain('newest patch: parameters.NodeVersion 22.23.3 → 22.99.0');
  });

  it('bakes when the code changed though the runtime did not', async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const before = await footprint(ws);
    await appendFile(path.join(path.dirname(ws.specFile), 'src', 'index.mjs'), '\n// a change\n');

    // Act
    const outcome = await runScheduledBake(scheduled(ws, 'patch-code'), run(ws));

    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('patch-code')).toBeDefined();
    const after = await footprint(ws);
    expect(after.functionVersions).toBe(before.functionVersions + 1);
    expect(after.alias).not.toBe(before.alias);
  });

  it('bakes when nothing was released yet, and when forced with rebuild', async () => {
    const fresh = await workspace();
    expect((await runScheduledBake(scheduled(fresh, 'patch-first'), run(fresh))).status).toBe('succeeded');

    const ws = await workspace();
    await release(ws);
    const forced = await runScheduledBake(scheduled(ws, 'patch-forced', { rebuild: true }), run(ws));
    expect(forced.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('patch-forced')).toBeDefined();
  });

  it('never ends a bake from the CLI as up to date: it bakes and asks again', async () => {
    const ws = await workspace();
    await release(ws);
    const again = await runBake(ws.request('cli-again'), run(ws));
    expect(again.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('cli-again')).toBeDefined();
  });
});
