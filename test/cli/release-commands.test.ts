import { createHash } from 'node:crypto';
/**
 * `bakery rollback`, `history`, `drift` and `alarm`, in-process through makeProgram:
 * on the local backend after two real bakes (the state machine on the local runner),
 * and on the AWS backend with the SDK mocked.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { GetAliasCommand, GetFunctionConfigurationCommand, LambdaClient, UpdateAliasCommand } from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCodes } from '../../src/cli/program.ts';
import { manifestKey } from '../../src/cores/record.ts';
import { runBake } from '../../src/local/runner.ts';
import type { DriftReport } from '../../src/ports/notifier.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { FAKE_CREDENTIALS } from '../adapters/aws/fixtures.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { makeWorkspace, type SpecJson, type Workspace } from '../helpers/local-bake.ts';

const bakery = (args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> => runCli(args, { BAKERY_USER: 'tester', ...env });

describe('on the local backend', () => {
  let ws: Workspace;
  const local = (args: string[]) => bakery(args, { BAKERY_HOME: ws.home.root });
  const versionFile = (v: string) => ws.home.path('functions', 'hello', 'versions', `${v}.json`);

  beforeAll(async () => {
    // Two releases of hello: b1 → version 1, then b2 (another environment value) → version 2.
    ws = await makeWorkspace();
    for (const [bakeId, style] of [
      ['b1', 'plain'],
      ['b2', 'fancy'],
    ] as const) {
      const spec = JSON.parse(await readFile(ws.specFile, 'utf8')) as SpecJson;
      const [fn] = spec.functions;
      if (fn) fn.environment = { GREETING_STYLE: style };
      await writeFile(ws.specFile, JSON.stringify(spec));
      const outcome = await runBake(ws.request(bakeId), {
        deps: ws.deps,
        approve: 'auto',
        approver: 'tester',
        retryIntervalMs: 0,
        waitMs: 0,
      });
      if (outcome.status !== 'succeeded')
        throw new Error(outcome.status === 'failed' ? `${bakeId} failed: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date');
    }
  }, 60_000);

  afterAll(async () => {
    await ws.cleanup();
  });

  it('shows the history oldest first, as text and as JSON, filtered by function', async () => {
    // Act
    const text = await local(['history']);
    const json = await local(['history', 'hello', '--json']);
    const none = await local(['history', 'nobody']);

    // Assess
    expect(text.code).toBe(ExitCodes.Success);
    expect(
      text.stdout
        .trim()
        .split('\n')
        .map((l) => l.replace(/^\S+\s+/, '')),
    ).toEqual([
      expect.stringMatching(/^released {5}b1 {2}hello:live \(none\) → 1 {2}layer arn:aws:lambda:local:000000000000:layer:hello-node22:1$/),
      expect.stringMatching(/^released {5}b2 {2}hello:live 1 → 2 /),
    ]);
    const { entries } = JSON.parse(json.stdout) as { entries: LedgerEntry[] };
    expect(entries.map((e) => [e.type, e.bakeId])).toEqual([
      ['released', 'b1'],
      ['released', 'b2'],
    ]);
    expect(none).toMatchObject({ code: ExitCodes.BadInput, stdout: '' });
    expect(none.stderr).toContain('NotFoundError: no function "nobody" in the ledger: nobody baked it');
    expect(none.stderr).toContain('The ledger knows: hello.');
  });

  it('finds no drift right after the releases', async () => {
    const result = await local(['drift']);
    expect(result).toMatchObject({ code: ExitCodes.Success, stdout: 'hello:live (bake b2, version 2): as released\n' });
  });

  it('rolls back to the previous release by default, records it, and refuses a version no bake released', async () => {
    // Act
    const back = await local(['rollback', 'hello', '--by', 'ana']);
    const refused = await local(['rollback', 'hello', '--to', '9']);
    const history = await local(['history', '--json']);
    const drift = await local(['drift']);
    const forward = await local(['rollback', 'hello', '--to', 'b2']);

    // Assess
    expect(back).toMatchObject({ code: ExitCodes.Success, stdout: 'hello:live rolled back: version 2 → 1 (released by bake b1)\n' });
    expect(refused.code).toBe(ExitCodes.BadInput);
    expect(refused.stderr).toContain('version 9 of hello:live was never released by a bake');
    const { entries } = JSON.parse(history.stdout) as { entries: LedgerEntry[] };
    expect(entries.at(-1)).toMatchObject({ type: 'rolledBack', by: 'ana', name: 'hello', alias: 'live', from: '2', to: '1', bakeId: 'b1' });
    // A rollback is a recorded move: what is live is what the ledger says.
    expect(drift).toMatchObject({ code: ExitCodes.Success, stdout: 'hello:live (bake b1, version 1): as released\n' });
    expect(forward.stdout).toBe('hello:live rolled back: version 1 → 2 (released by bake b2)\n');
    expect((await ws.deps.functions.getAlias('hello', 'live'))?.version).toBe('2');
  });

  it('exits 1 listing each difference: an environment and a layer changed by hand, then the alias moved', async () => {
    // Prepare: edit the version in place, as nothing but a hand would.
    const original = await readFile(versionFile('2'), 'utf8');
    const stored = JSON.parse(original) as { environment: Record<string, string>; layers: string[] };
    stored.environment = { ...stored.environment, DEBUG: '1' };
    stored.layers = ['arn:aws:lambda:local:000000000000:layer:hello-node22:7'];
    await writeFile(versionFile('2'), JSON.stringify(stored));

    try {
      // Act
      const changed = await local(['drift']);
      const current = await ws.deps.functions.getAlias('hello', 'live');
      await ws.deps.functions.setAlias('hello', 'live', '1', current?.revisionId ?? null);
      const moved = await local(['drift', '--json']);

      // Assess
      expect(changed.code).toBe(ExitCodes.Failed);
      expect(changed.stdout).toBe(
        [
          'hello:live (bake b2, version 2): DRIFTED',
          '  layers: expected ["arn:aws:lambda:local:000000000000:layer:hello-node22:1"], live ["arn:aws:lambda:local:000000000000:layer:hello-node22:7"]',
          '  environment.names: expected ["GREETING_STYLE"], live ["DEBUG","GREETING_STYLE"]',
          '',
        ].join('\n'),
      );
      expect(moved.code).toBe(ExitCodes.Failed);
      const report = JSON.parse(moved.stdout) as DriftReport;
      expect(report.drifted).toBe(true);
      expect(report.functions[0]?.differences).toEqual([{ field: 'alias.version', expected: '2', live: '1' }]);
    } finally {
      await writeFile(versionFile('2'), original);
      const current = await ws.deps.functions.getAlias('hello', 'live');
      await ws.deps.functions.setAlias('hello', 'live', '2', current?.revisionId ?? null);
    }
  });

  it('sets and lists local alarms, and refuses an unknown state', async () => {
    const set = await local(['alarm', 'set', 'hello-errors', 'alarm', '--reason', 'errors on 2']);
    const list = await local(['alarm', 'list']);
    const bad = await local(['alarm', 'set', 'hello-errors', 'RED']);

    expect(set.stdout).toBe('alarm hello-errors: ALARM (errors on 2)\n');
    expect(list.stdout).toMatch(/^hello-errors {2}ALARM {2}\S+ {2}errors on 2\n$/);
    expect(bad.code).toBe(ExitCodes.BadInput);
    expect(await ws.deps.alarms.states(['hello-errors'])).toEqual([{ name: 'hello-errors', state: 'ALARM' }]);
  });
});

describe('on the AWS backend', () => {
  const lambda = mockClient(LambdaClient);
  const s3 = mockClient(S3Client);
  const dynamo = mockClient(DynamoDBDocumentClient);
  // Credentials as the CLI checks them before any call; the mocked clients never use them.
  const env = { BAKERY_BACKEND: 'aws', ARTEFACTS_BUCKET: 'artefacts', TABLE_NAME: 'bakery', AWS_REGION: 'eu-west-1', ...FAKE_CREDENTIALS };
  const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:baked-node22:4';
  // The manifest S3 serves, and its SHA-256 as the ledger recorded it (drift checks the one against the other).
  const MANIFEST = JSON.stringify({
    functions: [
      {
        name: 'baked-hello',
        version: '6',
        codeSha256: 'code=',
        alias: 'live',
        handler: 'index.handler',
        runtime: 'provided.al2023',
        layers: [LAYER],
        environmentNames: ['GREETING_STYLE'],
      },
    ],
  });

  const released = (bakeId: string, from: string | null, to: string): LedgerEntry => ({
    type: 'released',
    bakeId,
    at: '2026-11-22T07:30:00.000Z',
    trigger: { type: 'cli', user: 'ana' },
    layer: { arn: LAYER, version: 4, codeSha256: 'l=' },
    functions: [{ name: 'baked-hello', alias: 'live', from, to, changed: true }],
    manifest: {
      uri: `s3://artefacts/${manifestKey(bakeId)}`,
      sha256Hex: createHash('sha256').update(MANIFEST).digest('hex'),
      size: Buffer.byteLength(MANIFEST),
    },
  });

  beforeAll(() => {
    dynamo.on(QueryCommand).resolves({ Items: [released('b1', null, '5'), released('b2', '5', '6')].map((entry) => ({ entry })) });
    dynamo.on(PutCommand).resolves({});
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'r6' });
    lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '5', RevisionId: 'r7' });
    lambda.on(GetFunctionConfigurationCommand).resolves({
      Version: '6',
      CodeSha256: 'code=',
      Handler: 'index.handler',
      Runtime: 'provided.al2023',
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { GREETING_STYLE: 'plain' } },
    });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: Readable.from([MANIFEST]) }));
  });

  afterAll(() => {
    lambda.restore();
    s3.restore();
    dynamo.restore();
  });

  it('reads the history from the DynamoDB ledger', async () => {
    const result = await bakery(['history', '--json'], env);
    expect((JSON.parse(result.stdout) as { entries: LedgerEntry[] }).entries.map((e) => e.bakeId)).toEqual(['b1', 'b2']);
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { TableName: 'bakery' });
  });

  it('checks drift against the manifest in S3', async () => {
    const result = await bakery(['drift'], env);
    expect(result).toMatchObject({ code: ExitCodes.Success, stdout: 'baked-hello:live (bake b2, version 6): as released\n' });
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'artefacts', Key: manifestKey('b2') });
  });

  it('rolls back with UpdateAlias on the revision it read, and a conditional put in the ledger', async () => {
    const result = await bakery(['rollback', 'baked-hello', '--by', 'ana'], env);
    expect(result).toMatchObject({
      code: ExitCodes.Success,
      stdout: 'baked-hello:live rolled back: version 6 → 5 (released by bake b1)\n',
    });
    expect(lambda).toHaveReceivedCommandWith(UpdateAliasCommand, {
      FunctionName: 'baked-hello',
      Name: 'live',
      FunctionVersion: '5',
      RevisionId: 'r6',
    });
    expect(dynamo).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'bakery',
      ConditionExpression: 'attribute_not_exists(pk)',
      Item: expect.objectContaining({ type: 'rolledBack' }),
    });
  });

  it('keeps the alarm commands on the local backend', async () => {
    const result = await bakery(['alarm', 'list'], env);
    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('`bakery alarm list` runs on the local backend only');
  });
});
