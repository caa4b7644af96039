/**
 * Up to date on the real `statemachines/bake.asl.json`, run in-process by the local
 * runner on the local adapters: a bake of any trigger (schedule, CLI, upload) whose bake
 * key and every function's code and configuration equal the live release ends in UpToDate
 * with nothing built, published, stored or asked for; a new patch, new code, a changed
 * setting or `force` makes it bake and wait for approval as any bake.
 */
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { renderTo } from '../../src/cli/render.ts';
import { readExecution } from '../../src/local/journal.ts';
import { type RunBakeOptions, runBake } from '../../src/local/runner.ts';
import { endIfUpToDate } from '../../src/local/up-to-date.ts';
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
  if (outcome.status !== 'succeeded')
    throw new Error(
      outcome.status === 'failed' ? `the first release failed: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
    );
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
    const outcome = await runBake(scheduled(ws, 'patch-2026W47-hello'), run(ws, lines));

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
    expect(lines.join('\n')).toContain('up to date: same bake key, code and configuration as the live release of first-release');
  });

  it('bakes and waits for approval like any bake when a newer runtime patch changes the bake key', async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const before = await footprint(ws);
    ws.deps.patches = newerPatch(ws.deps.patches);
    const lines: string[] = [];

    // Act
    const outcome = await runBake(scheduled(ws, 'patch-2026W48-hello'), run(ws, lines));

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
    const outcome = await runBake(scheduled(ws, 'patch-code'), run(ws));

    // Assess
    expect(outcome.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('patch-code')).toBeDefined();
    const after = await footprint(ws);
    expect(after.functionVersions).toBe(before.functionVersions + 1);
    expect(after.alias).not.toBe(before.alias);
  });

  it('bakes when nothing was released yet, and when forced with rebuild', async () => {
    const fresh = await workspace();
    expect((await runBake(scheduled(fresh, 'patch-first'), run(fresh))).status).toBe('succeeded');

    const ws = await workspace();
    await release(ws);
    const forced = await runBake(scheduled(ws, 'patch-forced', { rebuild: true }), run(ws));
    expect(forced.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('patch-forced')).toBeDefined();
  });

  it('ends an unchanged CLI rebake up to date, writing nothing under BAKERY_HOME but its execution record', async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const before = await listing(ws.home.root);
    const lines: string[] = [];

    // Act
    const outcome = await runBake(ws.request('cli-again'), run(ws, lines));

    // Assess: no version, layer, code, manifest, report, approval, token or ledger line; only the journal.
    expect(outcome.status).toBe('upToDate');
    const after = await listing(ws.home.root);
    const added = [...after.keys()].filter((f) => !before.has(f));
    expect(added).toEqual(['executions/cli-again.json']);
    const changed = [...before].filter(([f, sig]) => after.get(f) !== sig).map(([f]) => f);
    expect(changed).toEqual([]);
    expect(await ws.deps.approvals.findByBake('cli-again')).toBeUndefined();
    expect(lines.filter((l) => l.startsWith('▸'))).toEqual(['▸ ResolveBake']);
  });

  it("is ended by the CLI's short cut (endIfUpToDate, no state machine) with the runner's resolved bake, lines and execution record", async () => {
    // Prepare
    const ws = await workspace();
    await release(ws);
    const viaAsl: string[] = [];
    const viaCli: string[] = [];
    const asl = await runBake(ws.request('asl-again'), run(ws, viaAsl));
    const before = await listing(ws.home.root);

    // Act
    const cli = await endIfUpToDate(
      { ...ws.request('cli-again'), bakeId: 'cli-again' },
      { deps: ws.deps, spec: ws.specFile, onEvent: renderTo((line) => viaCli.push(line)) },
    );

    // Assess: the same bake, lines and record but for the bake id, the times and durations; only the record is written.
    const same = (value: unknown, bakeId: string) =>
      JSON.parse(
        JSON.stringify(value)
          .replaceAll(bakeId, '<bake>')
          .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>')
          .replace(/\(\d+\.\d s\)/g, '(<s>)'),
      ) as unknown;
    expect(cli?.status).toBe('upToDate');
    expect(asl.status).toBe('upToDate');
    if (asl.status !== 'upToDate') return;
    expect(same(cli?.output.bake, 'cli-again')).toEqual(same(asl.output.bake, 'asl-again'));
    expect(same(viaCli, 'cli-again')).toEqual(same(viaAsl, 'asl-again'));
    expect(same(await readExecution(ws.home, 'cli-again'), 'cli-again')).toEqual(
      same(await readExecution(ws.home, 'asl-again'), 'asl-again'),
    );
    const after = await listing(ws.home.root);
    expect([...after.keys()].filter((f) => !before.has(f))).toEqual(['executions/cli-again.json']);
    expect([...before].filter(([f, sig]) => after.get(f) !== sig).map(([f]) => f)).toEqual([]);
  });

  it('bakes anyway when forced, and when a function setting changed with the code unchanged', async () => {
    const ws = await workspace();
    await release(ws);
    const forced = await runBake({ ...ws.request('cli-forced'), options: { force: true } }, run(ws));
    expect(forced.status).toBe('succeeded');
    expect(await ws.deps.approvals.findByBake('cli-forced')).toBeDefined();

    const spec = JSON.parse(await readFile(ws.specFile, 'utf8')) as { functions: { memorySize?: number }[] };
    for (const fn of spec.functions) fn.memorySize = 512;
    await writeFile(ws.specFile, JSON.stringify(spec));
    const resized = await runBake(ws.request('cli-memory'), run(ws));
    expect(resized.status).toBe('succeeded');
    expect((await ws.deps.ledger.list()).at(-1)).toMatchObject({ type: 'released', bakeId: 'cli-memory' });
  });

  it('ends an upload of unchanged code up to date', async () => {
    // Prepare: the first release from an upload; the source reader hands over the extracted upload.
    const ws = await workspace();
    const upload = (bakeId: string, versionId: string): BakeRequest => {
      const location = { type: 's3' as const, bucket: 'bakery-source', key: 'incoming/hello.zip', versionId };
      return { bakeId, source: location, trigger: location };
    };
    const opened: string[] = [];
    ws.deps.sources = {
      open: async (source) => {
        opened.push(source.type === 's3' ? `${source.key}@${source.versionId}` : source.path);
        return { specFile: ws.specFile, where: 's3://bakery-source/incoming/hello.zip' };
      },
    };
    const first = await runBake(upload('upload-1', 'v1'), run(ws));
    expect(first.status).toBe('succeeded');
    const before = await footprint(ws);

    // Act: the same source uploaded again (a new object version, same bytes).
    const again = await runBake(upload('upload-2', 'v2'), run(ws));

    // Assess
    expect(again.status).toBe('upToDate');
    if (again.status !== 'upToDate') return;
    expect(again.output.bake.upToDateWith).toEqual(['upload-1']);
    expect(again.output.bake.trigger).toMatchObject({ type: 's3', versionId: 'v2' });
    expect(await footprint(ws)).toEqual(before);
    expect(opened).toEqual(['incoming/hello.zip@v1', 'incoming/hello.zip@v2']);
  });
});

/** Every file under `root` with its size and modification time. */
async function listing(root: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file);
    files.set(path.relative(root, file), `${info.size}:${info.mtimeMs}`);
  }
  return files;
}
