import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { ImagebuilderClient, StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AwsImageBuilder, buildClientToken } from '../../../src/adapters/aws/image-builder.ts';
import { TransientBackendError } from '../../../src/errors.ts';
import type { ImageBuildStart } from '../../../src/ports.ts';
import { awsError, TASK_TOKEN } from './fixtures.ts';

const ibClient = new ImagebuilderClient({ region: 'eu-west-1' });
const dbClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
const imageBuilder = mockClient(ibClient);
const db = mockClient(dbClient);

const PIPELINE = 'arn:aws:imagebuilder:eu-west-1:123456789012:image-pipeline/bakery-runtimes';
const BUILD_ARN = 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-runtimes/1.0.0/3';
const NOW = new Date('2026-11-22T07:30:00.000Z');

const request = (bakeId: string): ImageBuildStart => ({
  bakeId,
  bakeKey: 'f'.repeat(64),
  rebuild: false,
  recipe: {
    name: 'node22',
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    documents: [],
    parameters: {},
    contentSha256Hex: 'e'.repeat(64),
  },
  taskToken: TASK_TOKEN,
});

describe('AwsImageBuilder', () => {
  let builder: AwsImageBuilder;

  beforeEach(() => {
    builder = new AwsImageBuilder({ pipelineArn: PIPELINE, table: 'bakery', clock: { now: () => NOW }, client: ibClient, db: dbClient });
    imageBuilder.on(StartImagePipelineExecutionCommand).resolves({ imageBuildVersionArn: BUILD_ARN });
    db.on(PutCommand).resolves({});
  });

  afterEach(() => {
    imageBuilder.reset();
    db.reset();
  });

  it('starts the pipeline and parks the task token under the build ARN', async () => {
    // Act
    const started = await builder.start(request('hello-1'));

    // Assess
    expect(started).toEqual({ buildId: BUILD_ARN });
    expect(imageBuilder).toHaveReceivedCommandWith(StartImagePipelineExecutionCommand, {
      imagePipelineArn: PIPELINE,
      clientToken: buildClientToken('hello-1'),
    });
    expect(db).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'bakery',
      Item: {
        pk: `IMAGEBUILD#${BUILD_ARN}`,
        sk: 'TOKEN',
        bakeId: 'hello-1',
        bakeKey: 'f'.repeat(64),
        recipe: 'node22',
        taskToken: TASK_TOKEN,
        createdAt: NOW.toISOString(),
        expiresAt: '2026-11-22T10:30:00.000Z',
        ttl: Date.parse('2026-11-22T10:30:00.000Z') / 1000,
      },
    });
  });

  it('sends the same clientToken for a retried bake and another for another bake, within the 36-character limit', async () => {
    // Act
    await builder.start(request('hello-1'));
    await builder.start(request('hello-1'));
    await builder.start(request('hello-2'));

    // Assess
    const tokens = imageBuilder.commandCalls(StartImagePipelineExecutionCommand).map((c) => c.args[0].input.clientToken ?? '');
    expect(tokens[0]).toBe(tokens[1]);
    expect(tokens[2]).not.toBe(tokens[0]);
    for (const token of tokens) expect(token.length).toBeGreaterThan(0);
    for (const token of tokens) expect(token.length).toBeLessThanOrEqual(36);
    // Long bake ids (up to 80 characters) still fit.
    expect(buildClientToken('x'.repeat(80)).length).toBeLessThanOrEqual(36);
  });

  it('writes no token when the start fails; throttling is transient', async () => {
    imageBuilder.on(StartImagePipelineExecutionCommand).rejects(awsError('ThrottlingException'));

    await expect(builder.start(request('hello-1'))).rejects.toBeInstanceOf(TransientBackendError);
    expect(db).not.toHaveReceivedCommand(PutCommand);
  });

  it('fails when Image Builder returns no build ARN', async () => {
    imageBuilder.on(StartImagePipelineExecutionCommand).resolves({});

    await expect(builder.start(request('hello-1'))).rejects.toThrow(/no imageBuildVersionArn/);
    expect(db).not.toHaveReceivedCommand(PutCommand);
  });
});
