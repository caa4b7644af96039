import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DeleteDistributionConfigurationCommand,
  DeleteImageCommand,
  DeleteImageRecipeCommand,
  GetImagePipelineCommand,
  ImagebuilderClient,
  ListImageBuildVersionsCommand,
  ListImageRecipesCommand,
} from '@aws-sdk/client-imagebuilder';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoBuildCache } from '../../../src/adapters/aws/build-cache.ts';
import { distributionName } from '../../../src/adapters/aws/image-builder.ts';
import { AwsImageInventory } from '../../../src/adapters/aws/image-inventory.ts';
import { pruneImages } from '../../../src/cores/prune-images.ts';
import type { ArtefactStore, LedgerEntry } from '../../../src/ports/storage.ts';

const ib = new ImagebuilderClient({ region: 'eu-west-1' });
const ec2 = new EC2Client({ region: 'eu-west-1' });
const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
const ibMock = mockClient(ib);
const ec2Mock = mockClient(ec2);
const dbMock = mockClient(db);

const ACCOUNT = 'arn:aws:imagebuilder:eu-west-1:123456789012';
const PIPELINE = `${ACCOUNT}:image-pipeline/bakery-dev-node22`;
const KEYED = 'bakery-dev-node22-by-key';
const KEY = { old: 'a'.repeat(64), waiting: 'b'.repeat(64), cached: 'c'.repeat(64), foreign: 'd'.repeat(64) };
const recipeArn = (v: string) => `${ACCOUNT}:image-recipe/${KEYED}/${v}`;
const imageArn = (v: string) => `${ACCOUNT}:image/${KEYED}/${v}/1`;

/** Four images: one of a recorded bake nothing keeps, one of a bake still waiting, one a waiting bake took from the cache, one whose AMI is not bakery's. */
const BUILDS: Record<string, { bakeId: string; key: string; ami: string; snapshot: string; tagged: boolean }> = {
  '1.1.1': { bakeId: 'old-1', key: KEY.old, ami: 'ami-0old', snapshot: 'snap-0old', tagged: true },
  '1.2.2': { bakeId: 'waiting-2', key: KEY.waiting, ami: 'ami-0waiting', snapshot: 'snap-0waiting', tagged: true },
  '1.3.3': { bakeId: 'old-3', key: KEY.cached, ami: 'ami-0cached', snapshot: 'snap-0cached', tagged: true },
  '1.4.4': { bakeId: 'old-4', key: KEY.foreign, ami: 'ami-0foreign', snapshot: 'snap-0foreign', tagged: false },
};

const released = (bakeId: string): LedgerEntry => ({
  type: 'released',
  bakeId,
  at: '2026-11-01T00:00:00.000Z',
  trigger: { type: 'cli', user: 'tester' },
  layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:baked-hello:1', version: 1, codeSha256: 'x' },
  functions: [],
  manifest: { uri: `s3://a/manifests/${bakeId}.json`, sha256Hex: 'e'.repeat(64), size: 1 },
});

const noManifests: ArtefactStore = {
  putFile: async () => {
    throw new Error('not used');
  },
  putJson: async () => {
    throw new Error('not used');
  },
  getJson: async () => undefined,
  fetchFile: async () => '',
  fetchTree: async () => '',
};

beforeEach(() => {
  ibMock
    .on(GetImagePipelineCommand)
    .resolves({ imagePipeline: { arn: PIPELINE, imageRecipeArn: `${ACCOUNT}:image-recipe/bakery-dev-node22/1.0.7` } });
  ibMock.on(ListImageRecipesCommand).callsFake((input) => {
    if (input.filters?.[0]?.values?.[0] !== KEYED) return { imageRecipeSummaryList: [] };
    return {
      imageRecipeSummaryList: Object.entries(BUILDS).map(([v, b]) => ({
        arn: recipeArn(v),
        name: KEYED,
        tags: { 'bakery:bakeKey': b.key },
      })),
    };
  });
  ibMock.on(ListImageBuildVersionsCommand).callsFake((input) => {
    const v = String(input.imageVersionArn).split('/').pop() ?? '';
    const b = BUILDS[v];
    if (!b) return { imageSummaryList: [] };
    return {
      imageSummaryList: [
        {
          arn: imageArn(v),
          tags: { 'bakery:bakeId': b.bakeId, 'bakery:bakeKey': b.key },
          outputResources: { amis: [{ region: 'eu-west-1', image: b.ami }] },
        },
      ],
    };
  });
  ec2Mock.on(DescribeImagesCommand).callsFake((input) => ({
    Images: Object.values(BUILDS)
      .filter((b) => input.ImageIds?.includes(b.ami))
      .map((b) => ({
        ImageId: b.ami,
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: b.snapshot } }],
        Tags: b.tagged ? [{ Key: 'bakery:stack', Value: 'bakery-dev-node22' }] : [{ Key: 'CreatedBy', Value: 'EC2 Image Builder' }],
      })),
  }));
  // The waiting bake "waiting-5" took the cached build of KEY.cached.
  dbMock.on(GetCommand).callsFake((input) => {
    const key = String((input.Key as { pk: string }).pk).replace('BUILDCACHE#', '');
    if (key !== KEY.cached) return {};
    return { Item: { imageArn: imageArn('1.3.3'), users: new Set(['old-3', 'waiting-5']) } };
  });
});

afterEach(() => {
  ibMock.reset();
  ec2Mock.reset();
  dbMock.reset();
});

const inventory = () =>
  new AwsImageInventory({
    pipelineArn: PIPELINE,
    table: 'bakery',
    client: ib,
    ec2,
    cache: new DynamoBuildCache({ table: 'bakery', client: db }),
  });
const entries = ['old-1', 'old-3', 'old-4'].map(released);

describe('pruneImages on the AWS image inventory', () => {
  it('keeps what a waiting bake uses, and deletes the unreferenced image: its AMI, snapshots, distribution, image and recipe', async () => {
    // Act
    const items = await pruneImages({ apply: true, keptManifests: [], entries }, { images: inventory(), artefacts: noManifests });

    // Assess
    const byArn = new Map(items.map((i) => [i.arn, i]));
    expect(byArn.get(imageArn('1.1.1'))).toMatchObject({ kind: 'image', result: 'deleted', keptBecause: [] });
    expect(byArn.get(imageArn('1.2.2'))?.keptBecause).toEqual(['bake waiting-2 is not recorded (it may be waiting or interrupted)']);
    expect(byArn.get(imageArn('1.3.3'))?.keptBecause).toEqual([
      'bake waiting-5 took it from the build cache and is not recorded (it may be waiting or interrupted)',
    ]);
    expect(byArn.get(imageArn('1.4.4'))?.keptBecause).toEqual(["AMI ami-0foreign does not carry bakery's tags"]);
    expect(byArn.get(recipeArn('1.1.1'))).toMatchObject({ kind: 'image recipe', result: 'deleted' });
    expect(byArn.get(recipeArn('1.2.2'))?.keptBecause).toEqual([`image ${imageArn('1.2.2')} stays`]);

    expect(ec2Mock.commandCalls(DeregisterImageCommand).map((c) => c.args[0].input.ImageId)).toEqual(['ami-0old']);
    expect(ec2Mock.commandCalls(DeleteSnapshotCommand).map((c) => c.args[0].input.SnapshotId)).toEqual(['snap-0old']);
    expect(ibMock.commandCalls(DeleteImageCommand).map((c) => c.args[0].input.imageBuildVersionArn)).toEqual([imageArn('1.1.1')]);
    expect(ibMock.commandCalls(DeleteDistributionConfigurationCommand).map((c) => c.args[0].input.distributionConfigurationArn)).toEqual([
      `${ACCOUNT}:distribution-configuration/${distributionName('bakery-dev-node22', 'old-1').toLowerCase()}`,
    ]);
    expect(ibMock.commandCalls(DeleteImageRecipeCommand).map((c) => c.args[0].input.imageRecipeArn)).toEqual([recipeArn('1.1.1')]);
  });

  it('keeps an image a kept manifest names; a dry run deletes nothing', async () => {
    const artefacts: ArtefactStore = {
      ...noManifests,
      getJson: async <T>(key: string) =>
        key === 'manifests/old-1.json' ? ({ imageArn: imageArn('1.1.1'), bakeKey: KEY.old } as T) : undefined,
    };

    const items = await pruneImages({ apply: false, keptManifests: ['old-1'], entries }, { images: inventory(), artefacts });

    expect(items.find((i) => i.arn === imageArn('1.1.1'))?.keptBecause).toEqual(['named by the manifest of old-1']);
    expect(items.find((i) => i.arn === recipeArn('1.1.1'))?.keptBecause).toContain('its bake key is pinned by old-1');
    expect(ec2Mock.calls().filter((c) => !(c.args[0] instanceof DescribeImagesCommand))).toHaveLength(0);
    expect(ibMock).not.toHaveReceivedCommand(DeleteImageCommand);
  });
});
