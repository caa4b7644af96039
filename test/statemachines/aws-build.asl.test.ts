/**
 * The AWS build path on the real `statemachines/bake.asl.json`, run in-process by the
 * local runner: BuildImage on the AWS image builder and the image build event handler,
 * over a stateful fake of Image Builder, DynamoDB and S3 (aws-sdk-client-mock), every
 * other port local. The event handler runs when the build would end (after BuildImage
 * returned), as EventBridge delivers the image's state change.
 */
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { CreateImageCommand, CreateImageRecipeCommand } from '@aws-sdk/client-imagebuilder';
import { afterEach, describe, expect, it } from 'vitest';
import { DynamoBuildCache } from '../../src/adapters/aws/build-cache.ts';
import { AwsImageBuilder, DynamoImageBuildTokens, S3ImageBuildOutputs } from '../../src/adapters/aws/image-builder.ts';
import { handleImageStateChange } from '../../src/cores/image-events.ts';
import { manifestKey, type PinManifest } from '../../src/cores/record.ts';
import { type RunBakeOptions, runBake } from '../../src/local/runner.ts';
import type { ImageBuilder } from '../../src/ports/image-build.ts';
import type { PatchResolver } from '../../src/ports/patches.ts';
import type { ArtefactStore } from '../../src/ports/storage.ts';
import type { BakeRequest } from '../../src/state.ts';
import { BUCKET, type FakeAws, fakeAws, PIPELINE_ARN, TABLE } from '../helpers/fake-image-builder.ts';
import { makeWorkspace, type Workspace } from '../helpers/local-bake.ts';

const aws = fakeAws();
let workspaces: Workspace[] = [];
afterEach(async () => {
  aws.reset();
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

/** The base image ResolveBake resolves `x.x.x` to, as GetImage of the Amazon-managed image would. */
const BASE_IMAGE = 'amazon-linux-2023-x86/2025.6.0';

/** A workspace whose BuildImage runs on the AWS adapters over `aws`. */
async function awsWorkspace(fake: FakeAws, options: { newerNode?: boolean; buildsAtOnce?: number } = {}): Promise<Workspace> {
  const ws = await makeWorkspace();
  workspaces.push(ws);
  const local = ws.deps;
  const inner: PatchResolver = local.patches;
  local.patches = {
    runtime: options.newerNode
      ? async () => ({ parameters: { NodeVersion: '22.99.0', NodeSha256: 'ab'.repeat(32) }, source: 'test' })
      : (recipe) => inner.runtime(recipe),
    baseImage: async () => BASE_IMAGE,
  };
  const builder = new AwsImageBuilder({
    pipelineArn: PIPELINE_ARN,
    table: TABLE,
    clock: { now: () => new Date() },
    client: fake.ib,
    db: fake.db,
    s3: fake.s3,
    callbacks: local.callbacks,
  });
  const events = {
    tokens: new DynamoImageBuildTokens({ table: TABLE, client: fake.db }),
    outputs: new S3ImageBuildOutputs({ bucket: BUCKET, client: fake.ib, s3: fake.s3 }),
    callbacks: local.callbacks,
    cache: new DynamoBuildCache({ table: TABLE, client: fake.db }),
  };
  // Builds end (their events are delivered) once `buildsAtOnce` of them are under way.
  const running: Array<() => Promise<unknown>> = [];
  const withEvents: ImageBuilder = {
    start: async (request) => {
      const started = await builder.start(request);
      if (await events.tokens.find(started.buildId)) {
        const at = new Date().toISOString();
        const change = { buildId: started.buildId, status: 'AVAILABLE', reason: null, at, claim: `event-${request.bakeId}` };
        running.push(() => handleImageStateChange(change, events));
        if (running.length >= (options.buildsAtOnce ?? 1)) for (const end of running.splice(0)) await end();
      }
      return started;
    },
  };
  local.imageBuilder = withEvents;
  // The runtime zip "in S3" is the workspace's small runtime tree.
  const artefacts: ArtefactStore = local.artefacts;
  local.artefacts = {
    putFile: (key, file) => artefacts.putFile(key, file),
    putJson: (key, value) => artefacts.putJson(key, value),
    getJson: (key) => artefacts.getJson(key),
    fetchFile: (ref) => artefacts.fetchFile(ref),
    fetchTree: async (ref) => (ref.uri.startsWith(`s3://${BUCKET}/builds/images/`) ? ws.runtimeTree : artefacts.fetchTree(ref)),
  };
  return ws;
}

const run = (ws: Workspace): RunBakeOptions => ({ deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

const manifest = async (ws: Workspace, bakeId: string) => {
  const m = await ws.deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
  if (!m) throw new Error(`no manifest of ${bakeId}`);
  return m;
};

describe('the AWS build path on the bake state machine', () => {
  it('builds a new key once (one recipe version, one image), and a code-only bake after it makes zero Image Builder calls', async () => {
    // Prepare
    const ws = await awsWorkspace(aws);

    // Act: the first bake of the key
    const first = await runBake(ws.request('hello-1'), run(ws));

    // Assess
    expect(first.status).toBe('succeeded');
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageRecipeCommand, 1);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageCommand, 1);
    const [built] = [...aws.images.values()];
    const firstManifest = await manifest(ws, 'hello-1');
    expect(firstManifest.imageArn).toBe(built?.arn);
    const recipe = aws.recipes.get(built?.recipeArn ?? '');
    expect(recipe?.parentImage).toBe(`arn:aws:imagebuilder:eu-west-1:aws:image/${BASE_IMAGE}`);

    // Act: only the function's code changes
    await appendFile(path.join(ws.dir, 'project', 'src', 'index.mjs'), '\n// a code-only change\n');
    aws.ibMock.resetHistory();
    const second = await runBake(ws.request('hello-2'), run(ws));

    // Assess: the runtime came from the cache
    expect(second.status).toBe('succeeded');
    expect(aws.ibMock.calls()).toHaveLength(0);
    const secondManifest = await manifest(ws, 'hello-2');
    expect(secondManifest.bakeKey).toBe(firstManifest.bakeKey);
    expect(secondManifest.imageArn).toBe(built?.arn);
    expect(secondManifest.build).toEqual(firstManifest.build);
    expect(second.status === 'succeeded' && second.output.image?.cacheHit).toBe(true);
  });

  it('two bakes of one key at once: one recipe version, one image per bake, released once', async () => {
    // Prepare
    const ws = await awsWorkspace(aws, { buildsAtOnce: 2 });

    // Act
    const outcomes = await Promise.all([runBake(ws.request('hello-a'), run(ws)), runBake(ws.request('hello-b'), run(ws))]);

    // Assess
    // Both build; the release invariant decides the rest: when both approvals were shown the same
    // live alias, the second release finds it moved since and fails stale, moving nothing.
    expect(outcomes.map((o) => o.status)).toContain('succeeded');
    for (const outcome of outcomes) {
      if (outcome.status === 'failed')
        expect({ state: outcome.state, error: outcome.error }).toEqual({ state: 'Release', error: 'AliasConflictError' });
    }
    expect([...aws.recipes.keys()].filter((arn) => arn.includes('-by-key/'))).toHaveLength(1);
    expect(aws.images.size).toBe(2);
  });

  it('a scheduled bake that finds a newer Node.js patch builds it and asks for approval naming the change', async () => {
    // Prepare
    const ws = await awsWorkspace(aws, { newerNode: true });
    const request: BakeRequest = {
      bakeId: 'patch-2026W48-hello',
      source: { type: 'file', path: ws.specFile },
      trigger: { type: 'schedule', scheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild' },
    };

    // Act
    const outcome = await runBake(request, run(ws));

    // Assess
    expect(outcome.status).toBe('succeeded');
    const [built] = [...aws.images.values()];
    const parameters = aws.recipes.get(built?.recipeArn ?? '')?.components?.[1]?.parameters ?? [];
    expect(parameters).toContainEqual({ name: 'NodeVersion', value: ['22.99.0'] });
    expect(parameters).toContainEqual({ name: 'NodeSha256', value: ['ab'.repeat(32)] });
    expect(parameters).toContainEqual({ name: 'NodeSource', value: ['https://nodejs.org/dist/v22.99.0/node-v22.99.0-linux-x64.tar.xz'] });
    const approval = await ws.deps.approvals.findByBake('patch-2026W48-hello');
    expect(approval?.summary.runtime).toContain('node 22.23.3 → 22.99.0');
    expect((await manifest(ws, 'patch-2026W48-hello')).imageArn).toBe(built?.arn);
  });
});
