import { ExecutionAlreadyExists, SFNClient, StartExecutionCommand, type StartExecutionCommandInput } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler } from '../../functions/start-bake/handler.ts';
import { s3BakeName } from '../../src/cores/trigger.ts';
import { logger } from '../../src/lambda.ts';
import { parseBakeRequest } from '../../src/state.ts';
import { lambdaContext } from '../helpers/lambda-context.ts';
import { rejection } from '../helpers/rejection.ts';

// The handler uses the module-scope client of src/adapters/aws/clients.ts: mock the class.
const sfn = mockClient(SFNClient);
const MACHINE = 'arn:aws:states:eu-west-1:123456789012:stateMachine:bakery-dev-bake';

const context = lambdaContext('bakery-dev-startBake');

/** An "Object Created" event as S3 sends it to EventBridge (a PutObject into a versioned bucket). */
const objectCreated = (id = '17793124-05d4-b198-2fde-7ededc63b103') => ({
  version: '0',
  id,
  'detail-type': 'Object Created',
  source: 'aws.s3',
  account: '123456789012',
  time: '2026-11-22T07:30:00Z',
  region: 'eu-west-1',
  resources: ['arn:aws:s3:::bakery-dev-sourcebucket-1a2b3c'],
  detail: {
    version: '0',
    bucket: { name: 'bakery-dev-sourcebucket-1a2b3c' },
    object: {
      key: 'bakes/hello.zip',
      size: 2048,
      etag: 'b1946ac92492d2347c6235b4d2611184',
      'version-id': 'IYV3p45BT0ac8hjHg1houSdS1a.Mro8e',
      sequencer: '00617F08299329D189',
    },
    'request-id': 'N4N7GDK58NMKJ12R',
    requester: '123456789012',
    'source-ip-address': '1.2.3.4',
    reason: 'PutObject',
  },
});

describe('start-bake handler', () => {
  let info: ReturnType<typeof vi.spyOn>;

  beforeEach(() => {
    vi.stubEnv('STATE_MACHINE_ARN', MACHINE);
    info = vi.spyOn(logger, 'info').mockImplementation(() => {});
    vi.spyOn(logger, 'error').mockImplementation(() => {});
  });
  afterEach(() => {
    sfn.reset();
    vi.unstubAllEnvs();
  });
  afterAll(() => {
    sfn.restore();
  });

  it('starts the bake of the uploaded object version, named after bucket, key and version', async () => {
    // Prepare
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE}:x`, startDate: new Date() });
    const event = objectCreated();

    // Act
    const outcome = await handler(event, context);

    // Assess
    const name = s3BakeName({ bucket: event.detail.bucket.name, key: 'bakes/hello.zip', versionId: event.detail.object['version-id'] });
    expect(outcome).toMatchObject({ bakeId: name, started: true });
    const input = sfn.commandCalls(StartExecutionCommand)[0]?.args[0].input as StartExecutionCommandInput;
    expect(input.name).toBe(name);
    expect(input.stateMachineArn).toBe(MACHINE);
    const location = { type: 's3', bucket: event.detail.bucket.name, key: 'bakes/hello.zip', versionId: event.detail.object['version-id'] };
    const request = JSON.parse(input.input as string);
    expect(request).toEqual({ bakeId: name, source: location, trigger: location });
    // The state machine accepts it as its input.
    expect(parseBakeRequest(request)).toEqual(request);
  });

  it('starts the bake of an upload made over IPv6 (S3 reports the client address as it came)', async () => {
    // Prepare
    sfn.on(StartExecutionCommand).resolves({ executionArn: `${MACHINE}:x`, startDate: new Date() });
    const event = objectCreated();
    event.detail['source-ip-address'] = '2001:db8:85a3::8a2e:370:7334';

    // Act
    const outcome = await handler(event, context);

    // Assess
    expect(outcome).toMatchObject({ started: true });
    expect(sfn).toHaveReceivedCommandTimes(StartExecutionCommand, 1);
  });

  it('starts one execution when EventBridge delivers the same event twice', async () => {
    // Prepare: Step Functions as far as names go (the second start of a name fails).
    const names = new Set<string>();
    sfn.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      if (names.has(input.name as string)) {
        throw new ExecutionAlreadyExists({ $metadata: { httpStatusCode: 400 }, message: `Execution Already Exists: '${input.name}'` });
      }
      names.add(input.name as string);
      return { executionArn: `${MACHINE.replace('stateMachine', 'execution')}:${input.name}`, startDate: new Date() };
    });

    // Act: the same event, delivered at least once: here twice.
    const first = await handler(objectCreated(), context);
    const second = await handler(objectCreated(), context);

    // Assess
    expect(first.started).toBe(true);
    expect(second).toEqual({ ...first, started: false });
    expect(names.size).toBe(1);
    expect(info).toHaveBeenCalledWith(expect.stringContaining('already started'), expect.objectContaining({ started: false }));
  });

  it('logs "already started", not "bake started", for a duplicate event while the bake runs', async () => {
    // Prepare: a running execution of that name; Step Functions returns it (same name and input: idempotent).
    const started = new Date(Date.now() - 60_000);
    sfn.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => ({
      executionArn: `${MACHINE.replace('stateMachine', 'execution')}:${input.name}`,
      startDate: started,
    }));

    // Act
    const outcome = await handler(objectCreated('a-later-delivery'), context);

    // Assess
    expect(outcome.started).toBe(false);
    expect(info).toHaveBeenCalledWith(expect.stringContaining('already started'), expect.objectContaining({ started: false }));
    expect(info).not.toHaveBeenCalledWith('bake started', expect.anything());
  });

  it('starts two bakes for two uploads of one key into a bucket with versioning suspended (version id "null")', async () => {
    // Prepare
    const names = new Set<string>();
    sfn.on(StartExecutionCommand).callsFake((input: StartExecutionCommandInput) => {
      if (names.has(input.name as string)) {
        throw new ExecutionAlreadyExists({ $metadata: { httpStatusCode: 400 }, message: `Execution Already Exists: '${input.name}'` });
      }
      names.add(input.name as string);
      return { executionArn: `${MACHINE.replace('stateMachine', 'execution')}:${input.name}`, startDate: new Date() };
    });
    const upload = (sequencer: string) => {
      const event = objectCreated();
      return { ...event, detail: { ...event.detail, object: { ...event.detail.object, 'version-id': 'null', sequencer } } };
    };

    // Act
    const first = await handler(upload('00617F08299329D189'), context);
    const second = await handler(upload('00617F08299329D1A0'), context);

    // Assess
    expect([first.started, second.started]).toEqual([true, true]);
    expect(names.size).toBe(2);
    const request = JSON.parse(sfn.commandCalls(StartExecutionCommand)[1]?.args[0].input.input as string);
    expect(request.source.versionId).toBeNull();
  });

  it('refuses an event that is not an S3 Object Created event, and rethrows other failures (Lambda retries)', async () => {
    const wrong = await rejection(handler({ ...objectCreated(), 'detail-type': 'Object Deleted' } as never, context));
    expect(wrong.name).toBe('ParseError');
    expect(sfn.commandCalls(StartExecutionCommand)).toHaveLength(0);

    sfn.on(StartExecutionCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));
    const denied = await rejection(handler(objectCreated(), context));
    expect(denied.name).toBe('AccessDeniedException');
  });
});
