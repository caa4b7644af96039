import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { S3SourceCatalog, SfnBakeStarter } from '../../../src/adapters/aws/triggers.ts';
import { buildTriggerDeps } from '../../../src/compose/aws.ts';
import { ConfigError, TransientBackendError } from '../../../src/errors.ts';
import type { BakeRequest } from '../../../src/state.ts';
import { rejection } from '../../helpers/rejection.ts';
import { awsError } from './fixtures.ts';

const sfn = mockClient(SFNClient);
const s3 = mockClient(S3Client);

const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:bakery-dev-bake';
const location = { type: 's3' as const, bucket: 'src', key: 'bakes/hello.zip', versionId: 'v1' };
const request: BakeRequest = { bakeId: 's3-bakes-hello-0123456789abcdef0123', source: location, trigger: location };

afterEach(() => {
  sfn.reset();
  s3.reset();
});

afterAll(() => {
  sfn.restore();
  s3.restore();
});

describe('SfnBakeStarter', () => {
  it('starts an execution named by the bake id, with the request as its input', async () => {
    // Prepare
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE.replace('stateMachine', 'execution')}:x`, startDate: new Date() });
    const starter = new SfnBakeStarter({ stateMachineArn: MACHINE, client: new SFNClient({}) });

    // Act
    const out = await starter.start(request.bakeId as string, request);

    // Assess
    expect(out.started).toBe(true);
    expect(sfn).toHaveReceivedCommandWith(StartExecutionCommand, {
      stateMachineArn: MACHINE,
      name: request.bakeId,
      input: JSON.stringify(request),
    });
  });

  it('says "not started" when an execution of that name exists already (running or done)', async () => {
    // Prepare
    sfn
      .on(StartExecutionCommand)
      .rejects(new ExecutionAlreadyExists({ $metadata: { httpStatusCode: 400 }, message: 'Execution Already Exists' }));
    const starter = new SfnBakeStarter({ stateMachineArn: MACHINE, client: new SFNClient({}) });

    // Act
    const out = await starter.start('same-name', request);

    // Assess
    expect(out).toEqual({
      started: false,
      executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:bakery-dev-bake:same-name',
    });
  });

  it('says "not started" for the idempotent answer of a running execution (its own, earlier start date)', async () => {
    // Prepare: Step Functions answers a same-name, same-input start of a running execution with that execution.
    const arn = `${MACHINE.replace('stateMachine', 'execution')}:same-name`;
    sfn.on(StartExecutionCommand).resolves({ executionArn: arn, startDate: new Date('2026-11-22T07:30:00Z') });
    const clock = { now: () => new Date('2026-11-22T07:31:00Z') };
    const starter = new SfnBakeStarter({ stateMachineArn: MACHINE, client: new SFNClient({}), clock });

    // Act
    const duplicate = await starter.start('same-name', request);
    const fresh = await new SfnBakeStarter({
      stateMachineArn: MACHINE,
      client: new SFNClient({}),
      clock: { now: () => new Date('2026-11-22T07:30:00.200Z') },
    }).start('same-name', request);

    // Assess
    expect(duplicate).toEqual({ started: false, executionArn: arn });
    // A start date at (or a skew's width around) the call is this call's own execution.
    expect(fresh).toEqual({ started: true, executionArn: arn });
  });

  it('hands throttling on as TransientBackendError, and reads the state machine only when used', async () => {
    sfn.on(StartExecutionCommand).rejects(awsError('ThrottlingException'));
    const throttled = await rejection(new SfnBakeStarter({ stateMachineArn: MACHINE, client: new SFNClient({}) }).start('n', request));
    expect(throttled).toBeInstanceOf(TransientBackendError);

    const unconfigured = buildTriggerDeps({});
    await expect(unconfigured.starter.start('n', request)).rejects.toThrow(ConfigError);
    expect(() => unconfigured.source.bucket()).toThrow(/SOURCE_BUCKET is not set/);
  });
});

describe('S3SourceCatalog', () => {
  it('lists the latest version of every .zip under the prefix, across pages, leaving out deleted and other objects', async () => {
    // Prepare
    s3.on(ListObjectVersionsCommand, { Bucket: 'src', Prefix: 'bakes/', KeyMarker: undefined })
      .resolves({
        IsTruncated: true,
        NextKeyMarker: 'bakes/b.zip',
        NextVersionIdMarker: 'b1',
        Versions: [
          { Key: 'bakes/a.zip', VersionId: 'a2', IsLatest: true },
          { Key: 'bakes/a.zip', VersionId: 'a1', IsLatest: false },
          { Key: 'bakes/b.zip', VersionId: 'b1', IsLatest: false },
        ],
        // b.zip was deleted: its latest "version" is a delete marker.
        DeleteMarkers: [{ Key: 'bakes/b.zip', VersionId: 'b2', IsLatest: true }],
      })
      .on(ListObjectVersionsCommand, { Bucket: 'src', Prefix: 'bakes/', KeyMarker: 'bakes/b.zip', VersionIdMarker: 'b1' })
      .resolves({
        IsTruncated: false,
        Versions: [
          { Key: 'bakes/notes.txt', VersionId: 'n1', IsLatest: true },
          { Key: 'bakes/team/C.ZIP', VersionId: 'null', IsLatest: true },
        ],
      });

    // Act
    const found = await new S3SourceCatalog({ client: new S3Client({}) }).latest('src', 'bakes/');

    // Assess
    expect(found).toEqual([
      { bucket: 'src', key: 'bakes/a.zip', versionId: 'a2' },
      { bucket: 'src', key: 'bakes/team/C.ZIP', versionId: null },
    ]);
    expect(s3).toHaveReceivedCommandTimes(ListObjectVersionsCommand, 2);
  });
});
