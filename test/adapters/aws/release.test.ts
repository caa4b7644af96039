import { createHash } from 'node:crypto';
/**
 * Gradual release, rollback and drift against the AWS adapters, AWS mocked with
 * aws-sdk-client-mock: the alias routing weights and revisions Lambda is sent, the
 * alarms CloudWatch is asked about, the ledger and manifests read back.
 */
import { Readable } from 'node:stream';
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateAliasCommand,
  GetAliasCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  PreconditionFailedException,
  UpdateAliasCommand,
} from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { CloudWatchAlarmMonitor } from '../../../src/adapters/aws/alarms.ts';
import { DynamoLedger } from '../../../src/adapters/aws/dynamo.ts';
import { LambdaFunctionRegistry } from '../../../src/adapters/aws/functions.ts';
import { S3ArtefactStore } from '../../../src/adapters/aws/s3.ts';
import { drift } from '../../../src/cores/drift.ts';
import { manifestKey } from '../../../src/cores/record.ts';
import { release, shiftTraffic } from '../../../src/cores/release.ts';
import { rollback } from '../../../src/cores/rollback.ts';
import { AliasConflictError, CanaryAlarmError, TransientBackendError } from '../../../src/errors.ts';
import type { LedgerEntry } from '../../../src/ports/storage.ts';
import { parseSpec } from '../../../src/spec.ts';
import { publishedVersions, resolvedBake } from '../../helpers/fixtures.ts';
import { FakeClock } from '../../helpers/memory.ts';
import { rejection } from '../../helpers/rejection.ts';
import { awsError } from './fixtures.ts';

const lambdaClient = new LambdaClient({ region: 'eu-west-1' });
const cloudWatchClient = new CloudWatchClient({ region: 'eu-west-1' });
const s3Client = new S3Client({ region: 'eu-west-1' });
const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'eu-west-1' }));
const lambda = mockClient(lambdaClient);
const cloudWatch = mockClient(cloudWatchClient);
const s3 = mockClient(s3Client);
const dynamo = mockClient(documentClient);

const registry = () =>
  new LambdaFunctionRegistry({ bucket: 'artefacts', role: 'arn:aws:iam::123456789012:role/baked', lambda: lambdaClient });
const alarms = () => new CloudWatchAlarmMonitor({ client: cloudWatchClient });
const ledger = () => new DynamoLedger({ table: 'bakery', client: documentClient });
const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:baked-node22:4';

afterEach(() => {
  lambda.reset();
  cloudWatch.reset();
  s3.reset();
  dynamo.reset();
});

const updates = () => lambda.commandCalls(UpdateAliasCommand).map((c) => c.args[0].input);

describe('LambdaFunctionRegistry: routing weights', () => {
  it('reads the weights of an alias', async () => {
    lambda
      .on(GetAliasCommand)
      .resolves({ FunctionVersion: '6', RevisionId: 'r1', RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } } });
    await expect(registry().getAlias('baked-hello', 'live')).resolves.toEqual({
      name: 'baked-hello',
      alias: 'live',
      version: '6',
      revisionId: 'r1',
      weights: { '7': 0.1 },
    });
  });

  it('sets weights with UpdateAlias, with the revision it was given', async () => {
    // Prepare
    lambda
      .on(UpdateAliasCommand)
      .resolves({ FunctionVersion: '6', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } } });

    // Act
    const moved = await registry().setAlias('baked-hello', 'live', '6', 'r1', { '7': 0.1 });

    // Assess
    expect(moved).toEqual({ name: 'baked-hello', alias: 'live', version: '6', revisionId: 'r2', weights: { '7': 0.1 } });
    expect(updates()).toEqual([
      {
        FunctionName: 'baked-hello',
        Name: 'live',
        FunctionVersion: '6',
        RevisionId: 'r1',
        RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } },
      },
    ]);
  });

  it('creates an alias with weights only when there are some', async () => {
    lambda.on(CreateAliasCommand).resolves({ FunctionVersion: '1', RevisionId: 'r1' });
    await registry().setAlias('baked-a', 'live', '1', null);
    await registry().setAlias('baked-b', 'live', '1', null, { '2': 0.5 });
    expect(lambda.commandCalls(CreateAliasCommand).map((c) => c.args[0].input)).toEqual([
      { FunctionName: 'baked-a', Name: 'live', FunctionVersion: '1' },
      { FunctionName: 'baked-b', Name: 'live', FunctionVersion: '1', RoutingConfig: { AdditionalVersionWeights: { '2': 0.5 } } },
    ]);
  });

  it('turns a revision mismatch on a weighted move into AliasConflictError', async () => {
    lambda
      .on(UpdateAliasCommand)
      .rejects(new PreconditionFailedException({ $metadata: { httpStatusCode: 412 }, message: 'RevisionId mismatch' }));
    const error = await rejection(registry().setAlias('baked-hello', 'live', '6', 'r1', { '7': 0.5 }));
    expect(error).toBeInstanceOf(AliasConflictError);
  });
});

describe('release bound to the approval, on Lambda', () => {
  const approval = (revisionId: string) => ({
    approvalId: 'apr-1',
    decision: 'approved' as const,
    by: 'dave',
    at: '2026-11-22T08:00:00.000Z',
    live: [{ name: 'hello', alias: 'live', version: '6', weights: {}, revisionId }],
  });

  it('moves the alias with the RevisionId the approval was asked with', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'r-approved' });
    lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '7', RevisionId: 'r-next' });

    // Act
    const out = await release(
      { versions: publishedVersions(['hello', '7']), approval: approval('r-approved') },
      { functions: registry(), alarms: alarms() },
    );

    // Assess
    expect(updates()).toEqual([
      {
        FunctionName: 'hello',
        Name: 'live',
        FunctionVersion: '7',
        RevisionId: 'r-approved',
        RoutingConfig: { AdditionalVersionWeights: {} },
      },
    ]);
    expect(out.functions).toEqual([{ name: 'hello', alias: 'live', from: '6', to: '7', changed: true }]);
  });

  it('sends no UpdateAlias when the alias has another RevisionId than the approval saw (moved by hand in the console)', async () => {
    // Prepare: the same version, but a new revision: someone changed it since (e.g. moved and moved back).
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r-console' });

    // Act
    const error = await rejection(
      release(
        { versions: publishedVersions(['hello', '7']), approval: approval('r-approved') },
        { functions: registry(), alarms: alarms() },
      ),
    );

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect(error.message).toContain('hello:live is on 5 since the approval, which was for 6 → 7');
    expect(updates()).toEqual([]);
    expect(lambda.commandCalls(CreateAliasCommand)).toEqual([]);
  });
});

describe('CloudWatchAlarmMonitor', () => {
  it('asks for metric and composite alarms by name, and reports a missing one as null', async () => {
    // Prepare
    cloudWatch.on(DescribeAlarmsCommand).resolves({
      MetricAlarms: [{ AlarmName: 'baked-errors', StateValue: 'ALARM' }],
      CompositeAlarms: [{ AlarmName: 'baked-health', StateValue: 'OK' }],
    });

    // Act
    const states = await alarms().states(['baked-errors', 'baked-health', 'baked-typo']);

    // Assess
    expect(states).toEqual([
      { name: 'baked-errors', state: 'ALARM' },
      { name: 'baked-health', state: 'OK' },
      { name: 'baked-typo', state: null },
    ]);
    expect(cloudWatch).toHaveReceivedCommandWith(DescribeAlarmsCommand, {
      AlarmNames: ['baked-errors', 'baked-health', 'baked-typo'],
      AlarmTypes: ['MetricAlarm', 'CompositeAlarm'],
    });
  });

  it('follows NextToken, and asks for at most 100 names at a time', async () => {
    // Prepare
    const names = Array.from({ length: 150 }, (_, i) => `baked-${i}`);
    cloudWatch
      .on(DescribeAlarmsCommand)
      .callsFake((input: { AlarmNames: string[]; NextToken?: string }) =>
        input.NextToken
          ? { MetricAlarms: input.AlarmNames.slice(50).map((n) => ({ AlarmName: n, StateValue: 'OK' })) }
          : { MetricAlarms: input.AlarmNames.slice(0, 50).map((n) => ({ AlarmName: n, StateValue: 'INSUFFICIENT_DATA' })), NextToken: 't' },
      );

    // Act
    const states = await alarms().states(names);

    // Assess
    const calls = cloudWatch.commandCalls(DescribeAlarmsCommand).map((c) => c.args[0].input);
    expect(calls.map((c) => [c.AlarmNames?.length, c.NextToken])).toEqual([
      [100, undefined],
      [100, 't'],
      [50, undefined],
      [50, 't'],
    ]);
    expect(states.every((s) => s.state !== null)).toBe(true);
    expect(states[0]).toEqual({ name: 'baked-0', state: 'INSUFFICIENT_DATA' });
  });

  it('turns throttling into TransientBackendError', async () => {
    cloudWatch.on(DescribeAlarmsCommand).rejects(awsError('Throttling', 400));
    expect(await rejection(alarms().states(['baked-errors']))).toBeInstanceOf(TransientBackendError);
  });
});

describe('gradual release on Lambda and CloudWatch', () => {
  const bake = () => {
    const b = resolvedBake();
    b.spec = parseSpec({ ...b.spec, release: { steps: [{ weight: 10, minutes: 5 }], alarms: ['baked-errors'] } }, 'test');
    return b;
  };

  it('shifts 10%, then all traffic while the alarm is OK, each move a compare-and-swap on the last revision', async () => {
    // Prepare
    cloudWatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [{ AlarmName: 'baked-errors', StateValue: 'OK' }] });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda
      .on(GetAliasCommand)
      .resolvesOnce({ FunctionVersion: '6', RevisionId: 'r1' })
      .resolves({ FunctionVersion: '6', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } } });
    lambda
      .on(UpdateAliasCommand)
      .resolvesOnce({ FunctionVersion: '6', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } } })
      .resolves({ FunctionVersion: '7', RevisionId: 'r3' });
    const deps = { functions: registry(), alarms: alarms() };

    // Act
    const started = await release({ versions: publishedVersions(['hello', '7']), bake: bake() }, deps);
    const done = await shiftTraffic({ release: started }, deps);

    // Assess
    expect(updates()).toEqual([
      {
        FunctionName: 'hello',
        Name: 'live',
        FunctionVersion: '6',
        RevisionId: 'r1',
        RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } },
      },
      { FunctionName: 'hello', Name: 'live', FunctionVersion: '7', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: {} } },
    ]);
    expect(done.gradual).toMatchObject({ done: true, functions: [{ revisionId: 'r3' }] });
    expect(cloudWatch.commandCalls(DescribeAlarmsCommand)).toHaveLength(2);
  });

  it('moves the alias back to the old version, full weight, when the alarm is in ALARM', async () => {
    // Prepare: 10% is live on 7.
    cloudWatch.on(DescribeAlarmsCommand).resolves({ MetricAlarms: [{ AlarmName: 'baked-errors', StateValue: 'ALARM' }] });
    lambda
      .on(GetAliasCommand)
      .resolves({ FunctionVersion: '6', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: { '7': 0.1 } } });
    lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'r3' });
    const inProgress = {
      functions: [{ name: 'hello', alias: 'live', from: '6', to: '7', changed: true }],
      gradual: {
        step: 0,
        steps: [{ weight: 10, seconds: 300 }],
        alarms: ['baked-errors'],
        waitSeconds: 300,
        done: false,
        functions: [{ name: 'hello', alias: 'live', from: '6', to: '7', revisionId: 'r2' }],
      },
    };

    // Act
    const error = await rejection(shiftTraffic({ release: inProgress }, { functions: registry(), alarms: alarms() }));

    // Assess
    expect(error).toBeInstanceOf(CanaryAlarmError);
    expect(updates()).toEqual([
      { FunctionName: 'hello', Name: 'live', FunctionVersion: '6', RevisionId: 'r2', RoutingConfig: { AdditionalVersionWeights: {} } },
    ]);
  });
});

// ---------------------------------------------------------------- rollback and drift

const releasedEntry = (bakeId: string, from: string | null, to: string): LedgerEntry => ({
  type: 'released',
  bakeId,
  at: '2026-11-22T07:30:00.000Z',
  trigger: { type: 'cli', user: 'ana' },
  layer: { arn: LAYER, version: 4, codeSha256: 'l=' },
  functions: [{ name: 'baked-hello', alias: 'live', from, to, changed: true }],
  manifest: { uri: `s3://artefacts/${manifestKey(bakeId)}`, sha256Hex: '00', size: 1 },
});

describe('rollback on Lambda and DynamoDB', () => {
  it('moves the alias back with its RevisionId and appends the rollback with a conditional put', async () => {
    // Prepare
    dynamo
      .on(QueryCommand)
      .resolves({ Items: [releasedEntry('b1', null, '5'), releasedEntry('b2', '5', '6')].map((entry) => ({ entry })) });
    dynamo.on(PutCommand).resolves({});
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'r6' });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '5', CodeSha256: 'c=' });
    lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r7' });

    // Act
    const result = await rollback(
      { name: 'baked-hello', alias: 'live', by: 'ana' },
      { functions: registry(), ledger: ledger(), clock: new FakeClock('2026-11-30T00:00:00.000Z') },
    );

    // Assess
    expect(result).toMatchObject({ from: '6', to: '5', bakeId: 'b1' });
    expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'baked-hello', Qualifier: '5' });
    expect(updates()).toEqual([
      {
        FunctionName: 'baked-hello',
        Name: 'live',
        FunctionVersion: '5',
        RevisionId: 'r6',
        RoutingConfig: { AdditionalVersionWeights: {} },
      },
    ]);
    const put = dynamo.commandCalls(PutCommand)[0]?.args[0].input;
    expect(put).toMatchObject({
      TableName: 'bakery',
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: { type: 'rolledBack', entry: { type: 'rolledBack', by: 'ana', from: '6', to: '5', bakeId: 'b1' } },
    });
  });

  it('refuses a version the ledger never saw released, without touching Lambda', async () => {
    dynamo.on(QueryCommand).resolves({ Items: [{ entry: releasedEntry('b1', null, '5') }] });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r5' });

    const error = await rejection(
      rollback(
        { name: 'baked-hello', alias: 'live', to: '3', by: 'ana' },
        { functions: registry(), ledger: ledger(), clock: new FakeClock() },
      ),
    );

    expect(error.name).toBe('InputError');
    expect(lambda.commandCalls(UpdateAliasCommand)).toEqual([]);
    expect(dynamo.commandCalls(PutCommand)).toEqual([]);
  });
});

describe('drift on Lambda and S3', () => {
  const manifest = {
    bakeId: 'b1',
    layer: { arn: LAYER },
    recipe: { runtime: 'provided.al2023' },
    functions: [
      {
        name: 'baked-hello',
        version: '5',
        codeSha256: 'code=',
        alias: 'live',
        handler: 'index.handler',
        runtime: 'provided.al2023',
        layers: [LAYER],
        environmentNames: ['GREETING_STYLE'],
      },
    ],
  };

  function live(overrides: { alias?: object; configuration?: object } = {}) {
    // Drift checks the manifest's own bytes against the hash the ledger recorded first.
    const body = JSON.stringify(manifest);
    const recorded = {
      ...releasedEntry('b1', null, '5'),
      manifest: {
        uri: `s3://artefacts/${manifestKey('b1')}`,
        sha256Hex: createHash('sha256').update(body).digest('hex'),
        size: body.length,
      },
    };
    dynamo.on(QueryCommand).resolves({ Items: [{ entry: recorded }] });
    s3.on(GetObjectCommand, { Bucket: 'artefacts', Key: manifestKey('b1') }).callsFake(() => ({
      Body: Readable.from([body]),
    }));
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r5', ...overrides.alias });
    lambda.on(GetFunctionConfigurationCommand).resolves({
      Version: '5',
      CodeSha256: 'code=',
      Handler: 'index.handler',
      Runtime: 'provided.al2023',
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { GREETING_STYLE: 'plain' } },
      ...overrides.configuration,
    });
    return {
      ledger: ledger(),
      functions: registry(),
      artefacts: new S3ArtefactStore({ bucket: 'artefacts', client: s3Client }),
      clock: new FakeClock(),
    };
  }

  it('finds nothing when Lambda serves what the manifest says', async () => {
    const report = await drift(live());
    expect(report.drifted).toBe(false);
    expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'baked-hello', Qualifier: '5' });
  });

  it('finds a layer swapped, an environment changed and weights set by hand', async () => {
    // Act
    const report = await drift(
      live({
        alias: { RoutingConfig: { AdditionalVersionWeights: { '9': 0.5 } } },
        configuration: {
          Layers: [{ Arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:baked-node22:9' }],
          Environment: { Variables: { GREETING_STYLE: 'plain', NODE_OPTIONS: '--inspect' } },
        },
      }),
    );

    // Assess
    expect(report.functions[0]?.differences).toEqual([
      { field: 'alias.weights', expected: {}, live: { '9': 0.5 } },
      { field: 'layers', expected: [LAYER], live: ['arn:aws:lambda:eu-west-1:123456789012:layer:baked-node22:9'] },
      { field: 'environment.names', expected: ['GREETING_STYLE'], live: ['GREETING_STYLE', 'NODE_OPTIONS'] },
    ]);
  });

  it('finds an alias moved by hand', async () => {
    const report = await drift(live({ alias: { FunctionVersion: '4' }, configuration: { Version: '4' } }));
    expect(report.functions[0]?.differences).toEqual([{ field: 'alias.version', expected: '5', live: '4' }]);
  });
});
