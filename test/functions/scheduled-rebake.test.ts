import { ListObjectVersionsCommand, S3Client } from '@aws-sdk/client-s3';
import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand, type StartExecutionCommandInput } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/scheduled-rebake/handler.ts';
import { patchBakeName } from '../../src/cores/trigger.ts';
import { logger } from '../../src/lambda.ts';
import { parseBakeRequest } from '../../src/state.ts';
import { lambdaContext } from '../helpers/lambda-context.ts';
import { rejection } from '../helpers/rejection.ts';

const sfn = mockClient(SFNClient);
const s3 = mockClient(S3Client);
const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:bakery-dev-bake';
const SCHEDULE = 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild';

const context = lambdaContext('bakery-dev-scheduledRebake');

describe('scheduled-rebake handler', () => {
  beforeEach(() => {
    vi.stubEnv('STATE_MACHINE_ARN', MACHINE);
    vi.stubEnv('SOURCE_BUCKET', 'src');
    vi.stubEnv('SOURCE_PREFIX', 'bakes/');
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    s3.on(ListObjectVersionsCommand, { Bucket: 'src', Prefix: 'bakes/' }).resolves({
      IsTruncated: false,
      Versions: [
        { Key: 'bakes/hello.zip', VersionId: 'h2', IsLatest: true },
        { Key: 'bakes/hello.zip', VersionId: 'h1', IsLatest: false },
      ],
    });
  });
  afterEach(() => {
    sfn.reset();
    s3.reset();
    vi.unstubAllEnvs();
  });
  afterAll(() => {
    sfn.restore();
    s3.restore();
  });

  it('starts a schedule-triggered bake of the current version of each source, once per week however often it fires', async () => {
    // Prepare
    const names = new Set<string>();
    sfn.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      if (names.has(input.name as string)) throw new ExecutionAlreadyExists({ $metadata: { httpStatusCode: 400 }, message: 'exists' });
      names.add(input.name as string);
      return { executionArn: `${MACHINE}:${input.name}`, startDate: new Date() };
    });
    const firing = { scheduleArn: SCHEDULE, scheduledTime: '2026-11-22T06:00:00Z' };

    // Act: the firing, its retry, and the next week's.
    const first = await handler(firing, context);
    const retry = await handler(firing, context);
    const nextWeek = await handler({ ...firing, scheduledTime: '2026-11-29T06:00:00Z' }, context);

    // Assess
    const name = patchBakeName({ bucket: 'src', key: 'bakes/hello.zip', versionId: 'h2' }, '2026W47');
    expect(first.bakes).toEqual([expect.objectContaining({ bakeId: name, started: true, key: 'bakes/hello.zip', versionId: 'h2' })]);
    expect(retry.bakes).toEqual([expect.objectContaining({ bakeId: name, started: false })]);
    expect(nextWeek.bakes[0]?.bakeId).toBe(patchBakeName({ bucket: 'src', key: 'bakes/hello.zip', versionId: 'h2' }, '2026W48'));
    expect(names.size).toBe(2);
    const request = JSON.parse(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input as string);
    expect(request).toEqual({
      bakeId: name,
      source: { type: 's3', bucket: 'src', key: 'bakes/hello.zip', versionId: 'h2' },
      trigger: { type: 'schedule', scheduleArn: SCHEDULE },
    });
    expect(parseBakeRequest(request)).toEqual(request);
  });

  it('runs by hand with an empty input, and refuses unknown input', async () => {
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE}:x`, startDate: new Date() });
    const outcome = await handler({}, context);
    expect(outcome.bakes).toHaveLength(1);
    expect(JSON.parse(sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input.input as string).trigger).toEqual({
      type: 'schedule',
      scheduleArn: null,
    });
    const wrong = await rejection(handler({ scheduleArn: SCHEDULE, extra: 1 } as never, context));
    expect(wrong.name).toBe('ParseError');
  });
});
