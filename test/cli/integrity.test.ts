/**
 * `bakery verify` and `bakery prune` through the real program (in-process, output
 * captured): on the local backend after real bakes, and on `--backend aws` with the
 * module's SDK clients mocked.
 */
import { createHash } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import {
  DeleteFunctionCommand,
  DeleteLayerVersionCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  ListAliasesCommand,
  ListLayerVersionsCommand,
  ListVersionsByFunctionCommand,
} from '@aws-sdk/client-lambda';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { documentClient, lambdaClient, s3Client } from '../../src/adapters/aws/clients.ts';
import { ExitCodes } from '../../src/cli/program.ts';
import { manifestKey, type PinManifest } from '../../src/cores/record.ts';
import { ExecutionJournal } from '../../src/local/journal.ts';
import { runBake } from '../../src/local/runner.ts';
import type { Json } from '../../src/state.ts';
import { body, FAKE_CREDENTIALS, tempDir, zipOf } from '../adapters/aws/fixtures.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { makeWorkspace, type Workspace } from '../helpers/local-bake.ts';
import { type LocalBackend, localBackend, type RecordedBake, recordBake } from '../helpers/pins.ts';

const bakery = (args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> => runCli(args, { BAKERY_USER: 'tester', ...env });

describe('bakery verify and prune on the local backend', () => {
  let backend: LocalBackend;
  let env: NodeJS.ProcessEnv;

  beforeEach(async () => {
    backend = await localBackend();
    env = { BAKERY_HOME: backend.home.root };
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  it('verify exits 0 when everything is as pinned, 1 naming what changed, 2 for an unknown bake', async () => {
    // Prepare
    const { layer } = await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });

    // Act
    const identical = await bakery(['verify', 'bake-1'], env);
    const stored = await backend.deps.layers.getStored(layer.arn);
    await appendFile(stored?.zipPath ?? '', 'x');
    const tampered = await bakery(['verify', 'bake-1'], env);
    const unknown = await bakery(['verify', 'bake-nope'], env);

    // Assess
    expect(identical).toMatchObject({ code: ExitCodes.Success, stderr: '' });
    expect(identical.stdout).toContain(`✓ layer ${layer.arn}  content SHA-256 ${layer.codeSha256}`);
    expect(identical.stdout).toContain('identical: everything the bake pinned is as its manifest recorded');
    expect(tampered.code).toBe(ExitCodes.Failed);
    expect(tampered.stdout).toContain(`✗ layer ${layer.arn}  content SHA-256: manifest ${layer.codeSha256}, now `);
    expect(tampered.stderr).toContain('bake bake-1: 3 mismatch(es) with its manifest:');
    expect(tampered.stderr).toContain(`  - layer ${layer.arn}: content SHA-256 is `);
    expect(tampered.stdout).not.toContain('identical');
    expect(unknown.code).toBe(ExitCodes.BadInput);
    expect(unknown.stderr).toContain('NotFoundError: no bake bake-nope');
  });

  it('verify --json prints the checks and keeps the exit code', async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });

    // Act
    const result = await bakery(['verify', 'bake-1', '--json'], env);

    // Assess
    expect(result.code).toBe(ExitCodes.Success);
    const parsed = JSON.parse(result.stdout) as { bakeId: string; mismatches: unknown[]; checks: unknown[] };
    expect(parsed).toMatchObject({ bakeId: 'bake-1', mismatches: [] });
    expect(parsed.checks.length).toBeGreaterThan(5);
  });

  it('prune is a dry run by default; --apply deletes; --keep takes a whole number', async () => {
    // Prepare
    for (const n of [1, 2, 3]) await recordBake(backend, { bakeId: `bake-${n}`, runtime: `r${n}`, code: `c${n}` });

    // Act
    const dry = await bakery(['prune', '--keep', '1'], env);
    const afterDry = (await backend.deps.functions.listVersions('hello')).map((v) => v.version);
    const applied = await bakery(['prune', '--keep', '1', '--apply'], env);
    const afterApply = (await backend.deps.functions.listVersions('hello')).map((v) => v.version);
    const badKeep = await bakery(['prune', '--keep', '-1'], env);

    // Assess
    expect(dry.code).toBe(ExitCodes.Success);
    expect(dry.stdout).toContain('prune (dry run; --apply deletes)');
    expect(dry.stdout).toContain(
      'function hello\n  version 1  would delete\n  version 2  would delete\n  version 3  kept: alias live; pinned by bake-3',
    );
    expect(dry.stdout).toContain('4 version(s) would be deleted; run again with --apply to delete them');
    expect(afterDry).toEqual(['1', '2', '3']);
    expect(applied.code).toBe(ExitCodes.Success);
    expect(applied.stdout).toContain('  version 1  deleted');
    expect(applied.stdout).toContain('4 version(s) deleted');
    expect(afterApply).toEqual(['3']);
    expect(badKeep.code).toBe(ExitCodes.BadInput);
    expect(badKeep.stderr).toContain('expected a whole number of manifests');
  });

  it('prune keeps what an interrupted bake holds, from the journal of executions, and names the bake', async () => {
    // Prepare
    const bakes = [];
    for (const n of [1, 2, 3]) bakes.push(await recordBake(backend, { bakeId: `bake-${n}`, runtime: `r${n}`, code: `c${n}` }));
    const held = bakes[0] as RecordedBake;
    const journal = await ExecutionJournal.start(
      backend.home,
      { bakeId: 'bake-9', source: { type: 'file', path: 'bake.json' }, trigger: { type: 'cli', user: 'tester' } },
      'bake.json',
    );
    // bake-9 reused bake-1's layer and version, then its process died while it waited for approval.
    await journal.entered('RequestApproval', { layer: held.layer, versions: held.versions } as unknown as Json);
    const file = backend.home.path('executions', 'bake-9.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as { owner: { startedAt: string } };
    record.owner.startedAt = '2000-01-01T00:00:00.000Z';
    await writeFile(file, JSON.stringify(record));

    // Act
    const applied = await bakery(['prune', '--keep', '1', '--apply'], env);

    // Assess
    expect(applied.code, applied.stderr).toBe(ExitCodes.Success);
    expect(applied.stdout).toContain('  version 1  kept: in use by bake bake-9 (interrupted)');
    expect((await backend.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1', '3']);
    expect((await backend.deps.layers.listVersions('hello-node22')).map((v) => v.version)).toEqual([1, 3]);
  });

  it('prune on an empty state directory has nothing to do', async () => {
    // Act
    const result = await bakery(['prune'], env);

    // Assess
    expect(result).toMatchObject({ code: ExitCodes.Success, stderr: '' });
    expect(result.stdout).toContain('nothing to prune');
  });
});

describe('bakery verify after bakes run by the state machine', () => {
  let ws: Workspace;

  afterEach(async () => {
    await ws.cleanup();
  });

  it('verifies both bakes of different code, then names the altered code of one', { timeout: 60_000 }, async () => {
    // Prepare
    ws = await makeWorkspace();
    const env = { BAKERY_HOME: ws.home.root };
    const options = { deps: ws.deps, approve: 'auto' as const, approver: 'tester', retryIntervalMs: 0 };
    const first = await runBake(ws.request('bake-a'), options);
    await appendFile(`${ws.dir}/project/src/index.mjs`, '\n// a change\n');
    const second = await runBake(ws.request('bake-b'), options);
    if (first.status !== 'succeeded' || second.status !== 'succeeded') throw new Error('a bake failed');

    // Act
    const a = await bakery(['verify', 'bake-a'], env);
    const b = await bakery(['verify', 'bake-b'], env);
    const code = await ws.deps.functions.getStored('hello', '1');
    await appendFile(code?.codePath ?? '', 'x');
    const altered = await bakery(['verify', 'bake-a'], env);

    // Assess
    expect([a.code, b.code]).toEqual([ExitCodes.Success, ExitCodes.Success]);
    // The state machine's manifest holds everything verify relies on, and the rest of what the bake did.
    const manifest = await ws.deps.artefacts.getJson<PinManifest>(manifestKey('bake-b'));
    expect(manifest).toMatchObject({
      schemaVersion: 1,
      bakeId: 'bake-b',
      status: 'released',
      trigger: { type: 'cli', user: 'tester' },
      bakeKey: expect.stringMatching(/^[0-9a-f]{64}$/),
      build: { tools: { executor: 'test-fake' } },
      layer: { version: 1, codeSha256: expect.any(String), size: expect.any(Number), unzippedSize: expect.any(Number) },
      functions: [{ name: 'hello', version: '2', codeSha256: expect.any(String), layers: [manifest?.layer?.arn] }],
      validation: { passed: true },
      approval: { decision: 'approved', by: 'tester', at: expect.any(String) },
      aliases: [{ name: 'hello', alias: 'live', before: '1', after: '2' }],
      failure: null,
    });
    expect(b.stdout).toContain('✓ hello:2  code content SHA-256');
    expect(altered.code).toBe(ExitCodes.Failed);
    expect(altered.stderr).toContain('bake bake-a: 1 mismatch(es) with its manifest:\n  - hello:1: code content SHA-256 is ');
  });
});

describe('bakery verify and prune with --backend aws', () => {
  const lambda = mockClient(lambdaClient);
  const s3 = mockClient(s3Client);
  const dynamo = mockClient(documentClient);
  // Credentials as the CLI checks them before any call; the mocked clients never use them.
  const env = { ARTEFACTS_BUCKET: 'bakery-artefacts', TABLE_NAME: 'bakery', AWS_REGION: 'eu-west-1', ...FAKE_CREDENTIALS };
  const layerArn = 'arn:aws:lambda:eu-west-1:123456789012:layer:rt:1';
  const sha = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('base64');
  let layerZip: Buffer;
  let manifest: string;

  beforeAll(async () => {
    const scratch = await tempDir();
    const zip = await zipOf(scratch.dir, 'rt', { '!bootstrap': '#!/bin/sh\n' });
    layerZip = await readFile(zip.file);
    await scratch.remove();
    manifest = `${JSON.stringify({
      schemaVersion: 1,
      bakeId: 'bake-1',
      status: 'released',
      recordedAt: '2026-11-22T09:00:00.000Z',
      layer: {
        name: 'rt',
        arn: layerArn,
        version: 1,
        codeSha256: sha(layerZip),
        size: layerZip.length,
        sha256Hex: zip.sha256Hex,
        unzippedSize: zip.unzippedSize,
      },
      functions: [{ name: 'hello', version: '2', codeSha256: sha('code'), alias: 'live', layers: [layerArn] }],
    })}\n`;
  });

  beforeEach(() => {
    dynamo.on(QueryCommand).resolves({
      Items: [
        {
          entry: {
            type: 'released',
            bakeId: 'bake-1',
            at: '2026-11-22T09:00:00.000Z',
            trigger: { type: 'cli', user: 'tester' },
            layer: { arn: layerArn, version: 1, codeSha256: sha(layerZip) },
            functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }],
            manifest: { uri: `s3://bakery-artefacts/${manifestKey('bake-1')}`, sha256Hex: 'unchecked-here', size: 1 },
          },
        },
      ],
    });
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(manifest) }));
    const config = (version: string) => ({ Version: version, CodeSha256: sha('code'), Layers: [{ Arn: layerArn }] });
    lambda.on(ListVersionsByFunctionCommand).resolves({ Versions: [config('$LATEST'), config('1'), config('2')] });
    lambda.on(ListAliasesCommand).resolves({ Aliases: [{ Name: 'live', FunctionVersion: '2', RevisionId: 'r' }] });
    lambda.on(ListLayerVersionsCommand).resolves({ LayerVersions: [{ LayerVersionArn: layerArn, Version: 1 }] });
  });

  afterEach(() => {
    lambda.reset();
    s3.reset();
    dynamo.reset();
  });

  it('prune reads the ledger from DynamoDB and, in a dry run, deletes nothing', async () => {
    // Act
    const result = await bakery(['--backend', 'aws', 'prune', '--keep', '1'], env);

    // Assess
    expect(result.stderr).toBe('');
    expect(result.code).toBe(ExitCodes.Success);
    expect(result.stdout).toContain('function hello\n  version 1  would delete\n  version 2  kept: alias live; pinned by bake-1');
    expect(dynamo).toHaveReceivedCommandWith(QueryCommand, { TableName: 'bakery' });
    expect(lambda).not.toHaveReceivedCommand(DeleteFunctionCommand);
    expect(lambda).not.toHaveReceivedCommand(DeleteLayerVersionCommand);
  });

  it('verify downloads from the presigned locations and exits 1 on a mismatch', async () => {
    // Prepare
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves({ LayerVersionArn: layerArn, Version: 1, Content: { CodeSha256: sha(layerZip), CodeSize: layerZip.length } });
    lambda.on(GetLayerVersionCommand).resolves({ Content: { Location: 'https://layer.example/rt-1' } });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '2', CodeSha256: sha('code'), Layers: [{ Arn: layerArn }] });
    lambda.on(GetFunctionCommand).resolves({ Code: { Location: 'https://code.example/hello-2' } });
    const fetched: string[] = [];
    vi.stubGlobal('fetch', async (url: string) => {
      fetched.push(url);
      // The layer is served as pinned; the code is not the code whose hash Lambda reports.
      return new Response(url.includes('layer') ? new Uint8Array(layerZip) : 'other');
    });

    // Act
    const result = await bakery(['--backend', 'aws', 'verify', 'bake-1'], env);

    // Assess
    expect(fetched).toEqual(['https://layer.example/rt-1', 'https://code.example/hello-2']);
    expect(result.code).toBe(ExitCodes.Failed);
    expect(result.stderr).toContain('bake bake-1: 2 mismatch(es) with its manifest:');
    expect(result.stderr).toContain(`  - hello:2: code content SHA-256 is ${sha('other')}, the manifest says ${sha('code')}`);
    // The ledger entry above records a made-up hash for the manifest: that is found too.
    expect(result.stderr).toContain('  - manifest: sha256 (as in the ledger) is ');
    expect(result.stdout).toContain(`✓ layer ${layerArn}  content SHA-256 ${sha(layerZip)}`);
  });
});
