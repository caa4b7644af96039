import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetImageCommand, ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoImageBuildTokens,
  imageBuildCallbacks,
  RUNTIME_PREFIX,
  runtimeKey,
  S3ImageBuildOutputs,
} from '../../../src/adapters/aws/image-builder.ts';
import { AlreadyDecidedError, TransientBackendError } from '../../../src/errors.ts';
import { rejection } from '../../helpers/rejection.ts';
import { awsError, TASK_TOKEN } from './fixtures.ts';

const ibClient = new ImagebuilderClient({ region: 'eu-west-1' });
const dbClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
const imageBuilder = mockClient(ibClient);
const db = mockClient(dbClient);

const BUILD_ARN = 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-runtimes/1.0.0/3';
const NOW = new Date('2026-11-22T07:30:00.000Z');

describe('DynamoImageBuildTokens', () => {
  const tokens = new DynamoImageBuildTokens({ table: 'bakery', client: dbClient });
  const item = {
    pk: `IMAGEBUILD#${BUILD_ARN}`,
    sk: 'TOKEN',
    bakeId: 'hello-1',
    bakeKey: 'f'.repeat(64),
    recipe: 'node22',
    taskToken: TASK_TOKEN,
    createdAt: NOW.toISOString(),
    ttl: 1,
  };

  afterEach(() => {
    db.reset();
  });

  it('reads the ticket consistently; items written before documents and parameters were stored read as empty', async () => {
    // Prepare
    db.on(GetCommand).resolves({ Item: item });

    // Act
    const ticket = await tokens.find(BUILD_ARN);

    // Assess
    expect(ticket).toEqual({
      buildId: BUILD_ARN,
      bakeId: 'hello-1',
      bakeKey: 'f'.repeat(64),
      recipe: 'node22',
      taskToken: TASK_TOKEN,
      createdAt: NOW.toISOString(),
      documents: [],
      parameters: {},
      replaces: null,
      done: null,
    });
    expect(db).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'bakery',
      Key: { pk: `IMAGEBUILD#${BUILD_ARN}`, sk: 'TOKEN' },
      ConsistentRead: true,
    });
  });

  it('finds nothing for an unknown build', async () => {
    db.on(GetCommand).resolves({});

    expect(await tokens.find(BUILD_ARN)).toBeUndefined();
  });

  it('marks done once: a failed condition means another delivery did', async () => {
    // Prepare
    db.on(UpdateCommand).resolvesOnce({}).rejects(awsError('ConditionalCheckFailedException'));
    const done = { status: 'AVAILABLE', at: NOW.toISOString(), claim: 'event-1' };

    // Act
    const results = [await tokens.markDone(BUILD_ARN, done), await tokens.markDone(BUILD_ARN, done)];

    // Assess
    expect(results).toEqual([true, false]);
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      UpdateExpression: 'SET #done = :done',
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#done)',
      ExpressionAttributeValues: { ':done': done },
    });
  });

  it('gives back only its own mark, and leaves another claim alone without an error', async () => {
    db.on(UpdateCommand).rejects(awsError('ConditionalCheckFailedException'));

    await expect(tokens.release(BUILD_ARN, 'event-1')).resolves.toBeUndefined();
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      UpdateExpression: 'REMOVE #done',
      ConditionExpression: '#done.#claim = :claim',
      ExpressionAttributeValues: { ':claim': 'event-1' },
    });
  });

  it('maps throttling to TransientBackendError', async () => {
    db.on(GetCommand).rejects(awsError('ProvisionedThroughputExceededException'));

    expect(await rejection(tokens.find(BUILD_ARN))).toBeInstanceOf(TransientBackendError);
  });
});

describe('S3ImageBuildOutputs', () => {
  const s3Client = new S3Client({ region: 'eu-west-1' });
  const s3 = mockClient(s3Client);
  const outputs = new S3ImageBuildOutputs({ bucket: 'artefacts', client: ibClient, s3: s3Client });
  const AMI = 'ami-0123456789abcdef0';
  const hex = 'ab'.repeat(32);

  beforeEach(() => {
    imageBuilder.on(GetImageCommand).resolves({
      image: {
        outputResources: {
          amis: [
            { region: 'eu-west-1', image: 'ami-0ther0account000', accountId: '210987654321' },
            { region: 'eu-west-1', image: AMI, accountId: '123456789012' },
          ],
        },
      },
    });
  });

  afterEach(() => {
    imageBuilder.reset();
    s3.reset();
  });

  it('keys the runtime zip by the AMI under the runtime prefix', () => {
    expect(runtimeKey(AMI)).toBe(`${RUNTIME_PREFIX}${AMI}/runtime.zip`);
    expect(RUNTIME_PREFIX).toBe('builds/images/');
  });

  it("finds the zip under the build's own AMI, with S3's full-object SHA-256", async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves({
      ContentLength: 1234,
      ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64'),
      ChecksumType: 'FULL_OBJECT',
    });

    // Act
    const found = await outputs.runtime(BUILD_ARN);

    // Assess
    expect(found).toEqual({
      found: true,
      ref: { uri: `s3://artefacts/builds/images/${AMI}/runtime.zip`, sha256Hex: hex, size: 1234 },
      details: { ami: AMI },
    });
  });

  it('falls back to the sha256 metadata when S3 holds a composite (multipart) checksum', async () => {
    // Prepare
    s3.on(HeadObjectCommand).resolves({
      ContentLength: 9,
      ChecksumSHA256: 'cGFydHM=-3',
      ChecksumType: 'COMPOSITE',
      Metadata: { sha256: hex },
    });

    // Act
    const found = await outputs.runtime(BUILD_ARN);

    // Assess
    expect(found).toMatchObject({ found: true, ref: { sha256Hex: hex, size: 9 } });
  });

  it('refuses a zip whose checksum and metadata disagree, or that has neither', async () => {
    // Prepare
    s3.on(HeadObjectCommand)
      .resolvesOnce({ ContentLength: 9, ChecksumSHA256: Buffer.from(hex, 'hex').toString('base64'), Metadata: { sha256: 'cd'.repeat(32) } })
      .resolvesOnce({ ContentLength: 9 });

    // Act
    const results = [await outputs.runtime(BUILD_ARN), await outputs.runtime(BUILD_ARN)];

    // Assess
    expect(results[0]).toEqual({
      found: false,
      reason: expect.stringContaining(`has SHA-256 ${hex} in S3 but ${'cd'.repeat(32)} in its metadata`),
    });
    expect(results[1]).toEqual({ found: false, reason: expect.stringContaining('has no full-object SHA-256') });
  });

  it('reports a missing zip, and an image without an AMI in its region, as not found', async () => {
    // Prepare
    s3.on(HeadObjectCommand).rejects(awsError('NotFound', 404));

    // Act
    const missing = await outputs.runtime(BUILD_ARN);
    imageBuilder.on(GetImageCommand).resolves({ image: { outputResources: { amis: [{ region: 'us-east-1', image: AMI }] } } });
    const noAmi = await outputs.runtime(BUILD_ARN);

    // Assess
    expect(missing).toEqual({
      found: false,
      reason: expect.stringContaining(`is not at s3://artefacts/builds/images/${AMI}/runtime.zip (NotFound`),
    });
    expect(noAmi).toEqual({ found: false, reason: 'Image Builder reports no AMI of it in eu-west-1' });
  });

  it('throws what is worth retrying', async () => {
    s3.on(HeadObjectCommand).rejects(awsError('SlowDown', 503));

    expect(await rejection(outputs.runtime(BUILD_ARN))).toBeInstanceOf(TransientBackendError);
  });

  it("gives Image Builder's reason of a failed build", async () => {
    imageBuilder.on(GetImageCommand).resolves({ image: { state: { status: 'FAILED', reason: 'step failed' } } });

    expect(await outputs.failureReason(BUILD_ARN)).toBe('step failed');
  });
});

describe('imageBuildCallbacks', () => {
  it('turns InvalidToken into AlreadyDecidedError and passes anything else through', async () => {
    // Prepare
    const inner = {
      succeed: async () => {
        throw awsError('InvalidToken');
      },
      fail: async () => {
        throw awsError('ThrottlingException');
      },
    };
    const callbacks = imageBuildCallbacks(inner);

    // Act
    const errors = [await rejection(callbacks.succeed('t', null)), await rejection(callbacks.fail('t', 'E', 'c'))];

    // Assess
    expect(errors[0]).toBeInstanceOf(AlreadyDecidedError);
    expect(errors[1]?.name).toBe('ThrottlingException');
  });
});
