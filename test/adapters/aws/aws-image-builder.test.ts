import {
  CreateDistributionConfigurationCommand,
  CreateImageCommand,
  CreateImageRecipeCommand,
  GetImageRecipeCommand,
} from '@aws-sdk/client-imagebuilder';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, describe, expect, it } from 'vitest';
import { buildCacheKey, DynamoBuildCache } from '../../../src/adapters/aws/build-cache.ts';
import { AwsImageBuilder, buildClientToken, imageBuildTokenKey } from '../../../src/adapters/aws/image-builder.ts';
import { keyedRecipeInput, recipeVersion } from '../../../src/adapters/aws/image-recipes.ts';
import { bakeKey } from '../../../src/cores/image.ts';
import { RecipeError, TransientBackendError } from '../../../src/errors.ts';
import type { TaskCallbacks } from '../../../src/ports/callbacks.ts';
import type { ImageBuildStart } from '../../../src/ports/image-build.ts';
import type { BuiltImage, Json, ResolvedRecipe } from '../../../src/state.ts';
import {
  BUCKET,
  DEPLOYED_RECIPE_ARN,
  deployedRecipe,
  fakeAws,
  INFRASTRUCTURE_ARN,
  PIPELINE_ARN,
  RUNTIME_COMPONENT,
  TABLE,
} from '../../helpers/fake-image-builder.ts';
import { rejection } from '../../helpers/rejection.ts';
import { awsError } from './fixtures.ts';

const aws = fakeAws();
afterEach(() => aws.reset());

const NOW = new Date('2026-11-22T07:30:00.000Z');

const recipe = (overrides: Partial<ResolvedRecipe> = {}): ResolvedRecipe => ({
  name: 'node22',
  baseImage: 'amazon-linux-2023-x86/2025.6.0',
  runtime: 'provided.al2023',
  architecture: 'x86_64',
  documents: [{ path: 'components/node22-runtime.yml', sha256Hex: 'd'.repeat(64) }],
  parameters: { NodeVersion: '22.23.3', NodeSha256: 'fde6a4bf8d0562f7751d1a2d6cb9b417c4cfe107bbcb0aa3e9a24e125e348f48' },
  contentSha256Hex: 'e'.repeat(64),
  ...overrides,
});

function request(bakeId: string, options: { recipe?: ResolvedRecipe; rebuild?: boolean; token?: string } = {}): ImageBuildStart {
  const r = options.recipe ?? recipe();
  return { bakeId, bakeKey: bakeKey(r), rebuild: options.rebuild ?? false, recipe: r, taskToken: options.token ?? `token-${bakeId}` };
}

function recordingCallbacks() {
  const sent: Array<{ token: string; output: Json }> = [];
  const callbacks: TaskCallbacks = {
    succeed: async (token, output) => {
      sent.push({ token, output });
    },
    fail: async () => {
      throw new Error('a cache hit never fails the task');
    },
  };
  return { sent, callbacks };
}

function builder(callbacks: TaskCallbacks = recordingCallbacks().callbacks) {
  return new AwsImageBuilder({
    pipelineArn: PIPELINE_ARN,
    table: TABLE,
    clock: { now: () => NOW },
    client: aws.ib,
    db: aws.db,
    s3: aws.s3,
    callbacks,
  });
}

const keyedRecipes = () => [...aws.recipes.keys()].filter((arn) => arn.includes('/bakery-dev-node22-by-key/'));

/** A build recorded in the cache, with its runtime zip in S3. */
function cachedBuild(key: string, sha256Hex = 'cd'.repeat(32)): BuiltImage {
  const image: BuiltImage = {
    bakeKey: key,
    cacheHit: false,
    imageArn: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22-by-key/1.1.1/1',
    runtime: { uri: `s3://${BUCKET}/builds/images/ami-0cached000000000/runtime.zip`, sha256Hex, size: 41_000_000 },
    buildRecord: {
      recipe: 'node22',
      bakeKey: key,
      documents: [],
      parameters: {},
      sources: {},
      tools: { imageBuilder: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22-by-key/1.1.1/1' },
      startedAt: '2026-11-01T07:00:00.000Z',
      finishedAt: '2026-11-01T07:41:00.000Z',
    },
  };
  aws.items.set(`${buildCacheKey(key).pk}|BUILT`, { ...buildCacheKey(key), imageArn: image.imageArn, image });
  aws.objects.set('builds/images/ami-0cached000000000/runtime.zip', { sha256Hex, size: 41_000_000 });
  return image;
}

describe('AwsImageBuilder: a new bake key', () => {
  it('creates one recipe version of the key on the deployed components with the resolved inputs, and one image of it', async () => {
    // Prepare
    const req = request('hello-1');

    // Act
    const { buildId } = await builder().start(req);

    // Assess
    const version = recipeVersion(req.bakeKey);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageRecipeCommand, 1);
    expect(aws.ibMock).toHaveReceivedCommandWith(CreateImageRecipeCommand, {
      name: 'bakery-dev-node22-by-key',
      semanticVersion: version,
      parentImage: 'arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/2025.6.0',
      tags: { 'bakery:bakeKey': req.bakeKey, 'bakery:recipe': 'node22' },
      blockDeviceMappings: deployedRecipe().blockDeviceMappings,
    });
    const created = aws.recipes.get(`arn:aws:imagebuilder:eu-west-1:123456789012:image-recipe/bakery-dev-node22-by-key/${version}`);
    expect(created?.components?.[1]?.componentArn).toBe(RUNTIME_COMPONENT);
    expect(created?.components?.[1]?.parameters).toEqual(deployedRecipe().components?.[1]?.parameters);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageCommand, 1);
    expect(aws.ibMock).toHaveReceivedCommandWith(CreateImageCommand, {
      imageRecipeArn: created?.arn,
      infrastructureConfigurationArn: INFRASTRUCTURE_ARN,
      clientToken: buildClientToken('hello-1'),
      tags: { 'bakery:bakeId': 'hello-1', 'bakery:bakeKey': req.bakeKey },
    });
    // The AMI (and so its snapshots) carries the bake's tags from its distribution configuration.
    expect(aws.ibMock).toHaveReceivedCommandWith(CreateDistributionConfigurationCommand, {
      distributions: [
        expect.objectContaining({
          region: 'eu-west-1',
          amiDistributionConfiguration: expect.objectContaining({
            amiTags: { 'bakery:bakeId': 'hello-1', 'bakery:bakeKey': req.bakeKey, 'bakery:stack': 'bakery-dev-node22' },
          }),
        }),
      ],
    });
    const ticket = aws.items.get(`${imageBuildTokenKey(buildId).pk}|TOKEN`);
    expect(ticket).toMatchObject({ bakeId: 'hello-1', bakeKey: req.bakeKey, taskToken: 'token-hello-1', replaces: null });
  });

  it('a retried task: no second recipe version, the same build, the new task token parked under it', async () => {
    // Prepare
    const first = await builder().start(request('hello-1', { token: 'attempt-1' }));

    // Act
    const second = await builder().start(request('hello-1', { token: 'attempt-2' }));

    // Assess
    expect(second.buildId).toBe(first.buildId);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageRecipeCommand, 1);
    expect(aws.images.size).toBe(1);
    expect(aws.distributions.size).toBe(1);
    expect(aws.items.get(`${imageBuildTokenKey(first.buildId).pk}|TOKEN`)?.taskToken).toBe('attempt-2');
  });

  it('two bakes of one key at once: one recipe version, one image per bake', async () => {
    // Act
    const [a, b] = await Promise.all([builder().start(request('hello-1')), builder().start(request('hello-2'))]);

    // Assess
    expect(keyedRecipes()).toHaveLength(1);
    expect(a.buildId).not.toBe(b.buildId);
    expect(aws.images.size).toBe(2);
    const recipesBuilt = new Set([...aws.images.values()].map((i) => i.recipeArn));
    expect(recipesBuilt).toEqual(new Set(keyedRecipes()));
  });

  it('ResourceAlreadyExistsException with the same inputs is reuse', async () => {
    // Prepare: another bake creates the version between this one's lookup and its create.
    const req = request('hello-1');
    const wanted = keyedRecipeInput(deployedRecipe(), req.recipe, req.bakeKey);
    const arn = `arn:aws:imagebuilder:eu-west-1:123456789012:image-recipe/bakery-dev-node22-by-key/${wanted.semanticVersion}`;
    aws.ibMock
      .on(GetImageRecipeCommand, { imageRecipeArn: arn })
      .rejectsOnce(awsError('ResourceNotFoundException'))
      .callsFake(() => ({ imageRecipe: { arn, ...wanted } }));
    aws.ibMock.on(CreateImageRecipeCommand).rejects(awsError('ResourceAlreadyExistsException'));
    aws.recipes.set(arn, { arn, ...wanted });

    // Act
    await builder().start(req);

    // Assess
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageRecipeCommand, 1);
    expect(aws.ibMock).toHaveReceivedCommandWith(CreateImageCommand, { imageRecipeArn: arn });
  });

  it('a recipe version of the key with other inputs is a RecipeError naming the difference; nothing is built', async () => {
    // Prepare
    const req = request('hello-1');
    const wanted = keyedRecipeInput(deployedRecipe(), req.recipe, req.bakeKey);
    const arn = `arn:aws:imagebuilder:eu-west-1:123456789012:image-recipe/bakery-dev-node22-by-key/${wanted.semanticVersion}`;
    const components = structuredClone(wanted.components ?? []);
    const sha = components[1]?.parameters?.find((p) => p.name === 'NodeSha256');
    if (sha) sha.value = ['00'.repeat(32)];
    aws.recipes.set(arn, { arn, ...wanted, components });

    // Act
    const error = await rejection(builder().start(req));

    // Assess
    expect(error).toBeInstanceOf(RecipeError);
    expect(error.message).toContain(`parameter NodeSha256 ${'00'.repeat(32)} (this bake: ${req.recipe.parameters.NodeSha256})`);
    expect(aws.ibMock).not.toHaveReceivedCommand(CreateImageRecipeCommand);
    expect(aws.ibMock).not.toHaveReceivedCommand(CreateImageCommand);
    expect(aws.dbMock).not.toHaveReceivedCommand(PutCommand);
  });

  it('a newer Node.js patch: the new pins as component parameters, the source location following the version', async () => {
    // Prepare
    const patched = recipe({ parameters: { NodeVersion: '22.23.4', NodeSha256: 'ab'.repeat(32) } });

    // Act
    await builder().start(request('patch-1', { recipe: patched }));

    // Assess
    const created = aws.recipes.get(keyedRecipes()[0] ?? '');
    expect(created?.components?.[1]?.parameters).toEqual([
      { name: 'NodeVersion', value: ['22.23.4'] },
      { name: 'NodeSha256', value: ['ab'.repeat(32)] },
      { name: 'NodeSource', value: ['https://nodejs.org/dist/v22.23.4/node-v22.23.4-linux-x64.tar.xz'] },
      { name: 'RuntimeFiles', value: ['/opt/bakery/runtime-files'] },
      { name: 'RuntimeUpload', value: [`s3://${BUCKET}/builds/images/`] },
    ]);
    // The deployed recipe is the default, never changed.
    expect(aws.recipes.get(DEPLOYED_RECIPE_ARN)).toEqual(deployedRecipe());
  });

  it('refuses what the deployed components cannot honour: an unknown parameter, another recipe', async () => {
    const unknown = await rejection(builder().start(request('x-1', { recipe: recipe({ parameters: { PythonVersion: '3.13.1' } }) })));
    const other = await rejection(builder().start(request('x-2', { recipe: recipe({ name: 'python313' }) })));

    expect(unknown).toBeInstanceOf(RecipeError);
    expect(unknown.message).toContain('no parameter PythonVersion');
    expect(other).toBeInstanceOf(RecipeError);
    expect(other.message).toContain('builds recipe bakery-dev-node22, not python313');
    expect(aws.ibMock).not.toHaveReceivedCommand(CreateImageCommand);
  });

  it('throttling is transient and parks no token', async () => {
    aws.ibMock.on(CreateImageCommand).rejects(awsError('ThrottlingException'));

    await expect(builder().start(request('hello-1'))).rejects.toBeInstanceOf(TransientBackendError);
    expect(aws.dbMock).not.toHaveReceivedCommand(PutCommand);
  });
});

describe('AwsImageBuilder: the build cache', () => {
  it('a cached key whose runtime zip is in S3 with its SHA-256: resumes the task with it, zero Image Builder calls', async () => {
    // Prepare
    const req = request('code-only-1');
    const cached = cachedBuild(req.bakeKey);
    const { sent, callbacks } = recordingCallbacks();

    // Act
    const { buildId } = await builder(callbacks).start(req);

    // Assess
    expect(aws.ibMock.calls()).toHaveLength(0);
    expect(buildId).toBe(cached.imageArn);
    expect(sent).toEqual([{ token: 'token-code-only-1', output: { ...cached, cacheHit: true } }]);
    expect(aws.dbMock).not.toHaveReceivedCommand(PutCommand);
    // The hit is noted on the record, so prune keeps the build while this bake runs.
    expect(await new DynamoBuildCache({ table: TABLE, client: aws.db }).users(req.bakeKey)).toEqual({
      imageArn: cached.imageArn,
      bakeIds: ['code-only-1'],
    });
  });

  it('builds again when the cached runtime zip is gone or changed, and the new build may replace the record', async () => {
    // Prepare
    const req = request('hello-1');
    const cached = cachedBuild(req.bakeKey);
    aws.objects.set('builds/images/ami-0cached000000000/runtime.zip', { sha256Hex: 'ee'.repeat(32), size: 1 });
    const { sent, callbacks } = recordingCallbacks();

    // Act
    const { buildId } = await builder(callbacks).start(req);

    // Assess
    expect(sent).toEqual([]);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageCommand, 1);
    expect(aws.items.get(`${imageBuildTokenKey(buildId).pk}|TOKEN`)?.replaces).toBe(cached.imageArn);
  });

  it('rebuild forces a build of a cached key', async () => {
    const req = request('hello-1', { rebuild: true });
    const cached = cachedBuild(req.bakeKey);
    const { sent, callbacks } = recordingCallbacks();

    const { buildId } = await builder(callbacks).start(req);

    expect(sent).toEqual([]);
    expect(aws.ibMock).toHaveReceivedCommandTimes(CreateImageCommand, 1);
    expect(aws.items.get(`${imageBuildTokenKey(buildId).pk}|TOKEN`)?.replaces).toBe(cached.imageArn);
  });
});

describe('DynamoBuildCache', () => {
  const cache = () => new DynamoBuildCache({ table: TABLE, client: aws.db, clock: { now: () => NOW } });
  const key = 'a'.repeat(64);
  const base = cachedBuild(key);
  const image = (imageArn: string): BuiltImage => ({ ...base, imageArn, cacheHit: true });

  it('writes a key once; a second build of it keeps the first record; only the build it replaces is overwritten', async () => {
    aws.items.clear();
    expect(await cache().record(image('arn:first'), null)).toBe(true);
    expect(await cache().record(image('arn:second'), null)).toBe(false);
    expect((await cache().get(key))?.imageArn).toBe('arn:first');
    expect(await cache().record(image('arn:third'), 'arn:other')).toBe(false);
    expect(await cache().record(image('arn:third'), 'arn:first')).toBe(true);
    const stored = await cache().get(key);
    expect(stored?.imageArn).toBe('arn:third');
    // What is stored is the build itself; a hit is marked when it is handed out.
    expect(stored?.cacheHit).toBe(false);
  });

  it('finds nothing under an unknown key', async () => {
    expect(await cache().get('b'.repeat(64))).toBeUndefined();
  });
});
