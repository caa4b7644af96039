import { createHash } from 'node:crypto';
import { GetImageCommand, ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/image-build-events/handler.ts';
import { logger } from '../../src/lambda.ts';
import { awsError, TASK_TOKEN } from '../adapters/aws/fixtures.ts';
import { lambdaContext } from '../helpers/lambda-context.ts';
import { rejection } from '../helpers/rejection.ts';

// The handler uses the module-scope clients of src/adapters/aws/clients.ts: mock the classes.
const db = mockClient(DynamoDBDocumentClient);
const s3 = mockClient(S3Client);
const sfn = mockClient(SFNClient);
const imageBuilder = mockClient(ImagebuilderClient);

const context = lambdaContext('bakery-dev-imageBuildEvents');

const BUILD = 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22/1.0.123456/4';
const AMI = 'ami-0a1b2c3d4e5f67890';
const KEY = `builds/images/${AMI}/runtime.zip`;
const ZIP_SHA = createHash('sha256').update('the runtime zip').digest();

/** An "EC2 Image Builder Image State Change" event as EventBridge delivers it. */
function stateChange(status: string, previous: string, extra: { reason?: string; id?: string } = {}) {
  return {
    version: '0',
    id: extra.id ?? 'a1b2c3d4-5678-90ab-cdef-111111111111',
    'detail-type': 'EC2 Image Builder Image State Change',
    source: 'aws.imagebuilder',
    account: '123456789012',
    time: '2026-11-22T07:58:12Z',
    region: 'eu-west-1',
    resources: [BUILD],
    detail: {
      'previous-state': { status: previous },
      state: { status, ...(extra.reason === undefined ? {} : { reason: extra.reason }) },
    },
  };
}

const tokenItem = {
  pk: `IMAGEBUILD#${BUILD}`,
  sk: 'TOKEN',
  bakeId: 'hello-20261122T073000-3f9a',
  bakeKey: 'f'.repeat(64),
  recipe: 'node22',
  documents: [{ path: 'components/node22-runtime.yml', sha256Hex: 'cd'.repeat(32) }],
  parameters: { NodeVersion: '22.23.3', NodeSha256: 'ef'.repeat(32) },
  taskToken: TASK_TOKEN,
  createdAt: '2026-11-22T07:30:00.000Z',
  expiresAt: '2026-11-22T10:30:00.000Z',
  ttl: 1795339800,
};

// The handler's parameter type is the parsed event; the raw event is what Lambda passes.
const invoke = (event: unknown) => handler(event as never, context);

describe('image build events handler', () => {
  beforeEach(() => {
    vi.stubEnv('TABLE_NAME', 'bakery-table');
    vi.stubEnv('ARTEFACTS_BUCKET', 'bakery-artefacts');
    // Keep the test output readable; the logger's own behaviour is Powertools'.
    for (const level of ['info', 'warn', 'error'] as const) vi.spyOn(logger, level).mockImplementation(() => {});
    db.on(GetCommand).resolves({ Item: tokenItem });
    db.on(UpdateCommand).resolves({});
    imageBuilder.on(GetImageCommand).resolves({
      image: {
        arn: BUILD,
        state: { status: 'AVAILABLE' },
        outputResources: {
          amis: [
            { region: 'us-east-1', image: 'ami-0ffffffffffffffff', accountId: '123456789012' },
            { region: 'eu-west-1', image: AMI, accountId: '123456789012' },
          ],
        },
      },
    });
    s3.on(HeadObjectCommand).resolves({
      ContentLength: 40_123_456,
      ChecksumSHA256: ZIP_SHA.toString('base64'),
      ChecksumType: 'FULL_OBJECT',
      Metadata: { sha256: ZIP_SHA.toString('hex') },
    });
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});
  });

  afterEach(() => {
    db.reset();
    s3.reset();
    sfn.reset();
    imageBuilder.reset();
  });

  afterAll(() => {
    db.restore();
    s3.restore();
    sfn.restore();
    imageBuilder.restore();
  });

  it('resumes the bake with the runtime zip the test phase uploaded under the build AMI', async () => {
    // Act
    const outcome = await invoke(stateChange('AVAILABLE', 'INTEGRATING'));

    // Assess
    expect(outcome).toMatchObject({ outcome: 'resumed', sent: 'success', buildId: BUILD });
    expect(db).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'bakery-table',
      Key: { pk: `IMAGEBUILD#${BUILD}`, sk: 'TOKEN' },
      ConsistentRead: true,
    });
    expect(s3).toHaveReceivedCommandWith(HeadObjectCommand, { Bucket: 'bakery-artefacts', Key: KEY, ChecksumMode: 'ENABLED' });
    expect(db).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: `IMAGEBUILD#${BUILD}`, sk: 'TOKEN' },
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#done)',
      ExpressionAttributeValues: {
        ':done': { status: 'AVAILABLE', at: '2026-11-22T07:58:12Z', claim: 'a1b2c3d4-5678-90ab-cdef-111111111111' },
      },
    });
    const sent = sfn.commandCalls(SendTaskSuccessCommand);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.args[0].input.taskToken).toBe(TASK_TOKEN);
    expect(JSON.parse(sent[0]?.args[0].input.output ?? '')).toEqual({
      bakeKey: 'f'.repeat(64),
      cacheHit: false,
      imageArn: BUILD,
      runtime: { uri: `s3://bakery-artefacts/${KEY}`, sha256Hex: ZIP_SHA.toString('hex'), size: 40_123_456 },
      buildRecord: {
        recipe: 'node22',
        bakeKey: 'f'.repeat(64),
        documents: tokenItem.documents,
        parameters: tokenItem.parameters,
        sources: {},
        tools: { imageBuilder: BUILD, ami: AMI },
        startedAt: '2026-11-22T07:30:00.000Z',
        finishedAt: '2026-11-22T07:58:12Z',
      },
    });
    expect(sfn).not.toHaveReceivedCommand(SendTaskFailureCommand);
  });

  it('fails the bake with ImageBuildFailedError and the reason of a FAILED build', async () => {
    // Act
    await invoke(stateChange('FAILED', 'BUILDING', { reason: 'Document arn:aws:imagebuilder:... failed: step VerifyNodeChecksum' }));

    // Assess
    expect(sfn).toHaveReceivedCommandWith(SendTaskFailureCommand, {
      taskToken: TASK_TOKEN,
      error: 'ImageBuildFailedError',
      cause: `image build ${BUILD} of bake hello-20261122T073000-3f9a is FAILED: Document arn:aws:imagebuilder:... failed: step VerifyNodeChecksum`,
    });
    expect(s3).not.toHaveReceivedCommand(HeadObjectCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  it('takes the reason of a CANCELLED build from GetImage when the event has none', async () => {
    // Prepare
    imageBuilder.on(GetImageCommand).resolves({ image: { state: { status: 'CANCELLED', reason: 'Cancelled by the user.' } } });

    // Act
    await invoke(stateChange('CANCELLED', 'BUILDING'));

    // Assess
    expect(imageBuilder).toHaveReceivedCommandWith(GetImageCommand, { imageBuildVersionArn: BUILD });
    expect(sfn).toHaveReceivedCommandWith(SendTaskFailureCommand, {
      error: 'ImageBuildFailedError',
      cause: `image build ${BUILD} of bake hello-20261122T073000-3f9a is CANCELLED: Cancelled by the user.`,
    });
  });

  it('fails the bake when the image is AVAILABLE but its runtime zip is missing', async () => {
    // Prepare: without s3:ListBucket, S3 answers a missing key with 403.
    s3.on(HeadObjectCommand).rejects(awsError('Forbidden', 403));

    // Act
    await invoke(stateChange('AVAILABLE', 'INTEGRATING'));

    // Assess
    const failure = sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input;
    expect(failure?.error).toBe('ImageBuildFailedError');
    expect(failure?.cause).toContain(`is AVAILABLE, but its runtime tree is not at s3://bakery-artefacts/${KEY} (Forbidden`);
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  it('logs and ignores a build no bake waits on', async () => {
    // Prepare
    db.on(GetCommand).resolves({});

    // Act
    const outcome = await invoke(stateChange('AVAILABLE', 'INTEGRATING'));

    // Assess
    expect(outcome).toEqual({ outcome: 'unknown', buildId: BUILD, status: 'AVAILABLE' });
    expect(logger.warn).toHaveBeenCalledWith('no bake waits on this image build; ignored', { outcome });
    expect(db).not.toHaveReceivedCommand(UpdateCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskFailureCommand);
  });

  it('ignores the intermediate states without reading anything', async () => {
    // Act
    const outcomes = [
      await invoke(stateChange('BUILDING', 'PENDING')),
      await invoke(stateChange('TESTING', 'BUILDING')),
      await invoke(stateChange('DISTRIBUTING', 'TESTING')),
    ];

    // Assess
    expect(outcomes.map((o) => (o as { outcome: string }).outcome)).toEqual(['ignored', 'ignored', 'ignored']);
    expect(db).not.toHaveReceivedCommand(GetCommand);
  });

  it('does nothing for a duplicate: the item is already done', async () => {
    // Prepare
    db.on(GetCommand).resolves({ Item: { ...tokenItem, done: { status: 'AVAILABLE', at: '2026-11-22T07:58:12Z', claim: 'first' } } });

    // Act
    const outcome = await invoke(stateChange('AVAILABLE', 'INTEGRATING', { id: 'second' }));

    // Assess
    expect(outcome).toMatchObject({ outcome: 'duplicate', done: { claim: 'first' } });
    expect(db).not.toHaveReceivedCommand(UpdateCommand);
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  it('does nothing when a concurrent delivery wins the conditional update', async () => {
    // Prepare
    db.on(UpdateCommand).rejects(awsError('ConditionalCheckFailedException'));

    // Act
    const outcome = await invoke(stateChange('AVAILABLE', 'INTEGRATING'));

    // Assess
    expect((outcome as { outcome: string }).outcome).toBe('duplicate');
    expect(sfn).not.toHaveReceivedCommand(SendTaskSuccessCommand);
  });

  it.each(['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken'])('treats %s from Step Functions as already handled', async (name) => {
    // Prepare
    sfn.on(SendTaskSuccessCommand).rejects(awsError(name));

    // Act
    const outcome = await invoke(stateChange('AVAILABLE', 'INTEGRATING'));

    // Assess
    expect(outcome).toMatchObject({ outcome: 'gone', sent: 'success' });
    // The mark stays: a later duplicate does nothing.
    expect(db).toHaveReceivedCommandTimes(UpdateCommand, 1);
  });

  it('gives the mark back and fails the invocation when Step Functions throttles, so Lambda retries the event', async () => {
    // Prepare
    sfn.on(SendTaskSuccessCommand).rejects(awsError('ThrottlingException', 400));

    // Act
    const error = await rejection(invoke(stateChange('AVAILABLE', 'INTEGRATING')));

    // Assess
    expect(error.name).toBe('TransientBackendError');
    expect(db).toHaveReceivedNthCommandWith(UpdateCommand, 2, {
      UpdateExpression: 'REMOVE #done',
      ConditionExpression: '#done.#claim = :claim',
      ExpressionAttributeValues: { ':claim': 'a1b2c3d4-5678-90ab-cdef-111111111111' },
    });
  });

  it('refuses an event that is not an image state change, before reading anything', async () => {
    // Prepare
    const wrong = {
      ...stateChange('AVAILABLE', 'INTEGRATING'),
      resources: ['arn:aws:imagebuilder:eu-west-1:123456789012:image-pipeline/x'],
    };

    // Act
    const error = await rejection(invoke(wrong));

    // Assess
    expect(error.name).toBe('ParseError');
    expect(db).not.toHaveReceivedCommand(GetCommand);
  });
});
