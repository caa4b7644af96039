import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetAliasCommand, GetFunctionConfigurationCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { ScheduledEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/drift-check/handler.ts';
import { manifestKey } from '../../src/cores/record.ts';
import { logger } from '../../src/lambda.ts';

const MANIFEST = JSON.stringify({ functions: [{ name: 'baked-hello', version: '5', codeSha256: 'code=', alias: 'live' }] });
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

import { lambdaContext } from '../helpers/lambda-context.ts';
import { rejection } from '../helpers/rejection.ts';

// The handler uses the module-scope clients of src/adapters/aws/clients.ts: mock the classes.
const lambda = mockClient(LambdaClient);
const s3 = mockClient(S3Client);
const dynamo = mockClient(DynamoDBDocumentClient);

const context = lambdaContext('bakery-dev-driftCheck');

const event = {
  version: '0',
  id: '89d1a02d-5ec7-412e-82f5-13505f849b41',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-11-22T08:00:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:events:eu-west-1:123456789012:rule/bakery-dev-DriftCheckEventsRuleSchedule1'],
  detail: {},
} satisfies ScheduledEvent;

describe('drift-check handler', () => {
  beforeEach(() => {
    vi.stubEnv('ARTEFACTS_BUCKET', 'artefacts');
    vi.stubEnv('TABLE_NAME', 'bakery');
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    vi.spyOn(logger, 'error').mockImplementation(() => {});
  });
  afterEach(() => {
    lambda.reset();
    s3.reset();
    dynamo.reset();
    vi.unstubAllEnvs();
  });
  afterAll(() => {
    lambda.restore();
    s3.restore();
    dynamo.restore();
  });

  it('compares the live alias and version with the manifest, through the middy chain', async () => {
    // Prepare
    dynamo.on(QueryCommand).resolves({
      Items: [
        {
          entry: {
            type: 'released',
            bakeId: 'b1',
            at: '2026-11-22T07:30:00.000Z',
            trigger: { type: 'cli', user: 'ana' },
            layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:baked-node22:4', version: 4, codeSha256: 'l=' },
            functions: [{ name: 'baked-hello', alias: 'live', from: null, to: '5', changed: true }],
            manifest: { uri: 's3://artefacts/manifests/b1.json', sha256Hex: sha256(MANIFEST), size: MANIFEST.length },
          },
        },
      ],
    });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r5' });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '5', CodeSha256: 'code=' });
    s3.on(GetObjectCommand).callsFake(() => ({
      Body: Readable.from([MANIFEST]),
    }));

    // Act
    const result = await handler(event, context);

    // Assess
    expect(result).toEqual({ drifted: false, checked: 1, differences: 0 });
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'artefacts', Key: manifestKey('b1') });
    expect(logger.info).toHaveBeenCalledWith('no drift', { checked: 1 });
  });

  it('logs and rethrows a failure, so the invocation counts as failed', async () => {
    dynamo
      .on(QueryCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));

    const error = await rejection(handler(event, context));

    expect(error.name).toBe('AccessDeniedException');
    expect(logger.error).toHaveBeenCalledWith('driftCheck failed', expect.objectContaining({ error }));
  });
});
