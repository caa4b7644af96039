/**
 * `verify` and `prune` against AWS: the Lambda adapters with aws-sdk-client-mock, the
 * manifests in the S3 artefact store (mocked too), presigned downloads through an
 * injected fetch. Nothing touches the network.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  DeleteFunctionCommand,
  DeleteLayerVersionCommand,
  type FunctionConfiguration,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  LambdaClient,
  ListAliasesCommand,
  ListLayerVersionsCommand,
  ListVersionsByFunctionCommand,
  ResourceConflictException,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Fetch } from '../../../src/adapters/aws/download.ts';
import { LambdaFunctionRegistry } from '../../../src/adapters/aws/functions.ts';
import { LambdaLayerRegistry } from '../../../src/adapters/aws/layers.ts';
import { S3ArtefactStore } from '../../../src/adapters/aws/s3.ts';
import { type PruneItem, prune } from '../../../src/cores/prune.ts';
import { manifestKey } from '../../../src/cores/record.ts';
import { verifyBake } from '../../../src/cores/verify.ts';
import { AliasConflictError, BakeryError } from '../../../src/errors.ts';
import { MemoryLedger } from '../../helpers/memory.ts';
import { rejection } from '../../helpers/rejection.ts';
import { body, tempDir, zipOf } from './fixtures.ts';

const lambdaClient = new LambdaClient({ region: 'eu-west-1' });
const s3Client = new S3Client({ region: 'eu-west-1' });
const lambda = mockClient(lambdaClient);
const s3 = mockClient(s3Client);

const BUCKET = 'bakery-artefacts';
const LAYER = 'node22-runtime';
const layerArn = (v: number) => `arn:aws:lambda:eu-west-1:123456789012:layer:${LAYER}:${v}`;
const b64 = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('base64');
const hex = (bytes: string | Buffer) => createHash('sha256').update(bytes).digest('hex');
/** Real zips (verify measures them unzipped), made once. */
const layerZips = new Map<number, { bytes: Buffer; unzippedSize: number }>();
const layerBytes = (v: number): Buffer => layerZips.get(v)?.bytes ?? Buffer.alloc(0);
const codeBytes = (v: number) => `code zip ${v}`;
const layerUrl = (v: number) => `https://awslambda-eu-west-1-layers.s3.example/${LAYER}-${v}?X-Amz-Signature=secret`;
const codeUrl = (v: string) => `https://awslambda-eu-west-1-tasks.s3.example/hello-${v}?X-Amz-Signature=secret`;
const notFound = () => new ResourceNotFoundException({ $metadata: { httpStatusCode: 404 }, message: 'not found' });
const summary = (items: PruneItem[]) => items.map((i) => `${i.kind} ${i.name}:${i.version} ${i.result}`);

function configuration(version: string, layer: number): FunctionConfiguration {
  const v = version === '$LATEST' ? 3 : Number(version);
  return {
    FunctionName: 'hello',
    Version: version,
    CodeSha256: b64(codeBytes(v)),
    Handler: 'index.handler',
    Runtime: 'provided.al2023',
    Layers: [{ Arn: layerArn(layer), CodeSize: 10 }],
  };
}

describe('verify and prune against AWS (aws-sdk-client-mock)', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let fetched: string[];
  let served: Map<string, string | Buffer>;
  let ledger: MemoryLedger;
  let deps: {
    ledger: MemoryLedger;
    artefacts: S3ArtefactStore;
    layers: LambdaLayerRegistry;
    functions: LambdaFunctionRegistry;
  };

  /** A manifest in the bucket and its released ledger entry: bake-N pinned hello:N on layer N. */
  async function recordRelease(n: number) {
    const bakeId = `bake-${n}`;
    const manifest = {
      schemaVersion: 1,
      bakeId,
      status: 'released',
      recordedAt: `2026-11-2${n}T09:00:00.000Z`,
      layer: {
        name: LAYER,
        arn: layerArn(n),
        version: n,
        codeSha256: b64(layerBytes(n)),
        size: layerBytes(n).length,
        sha256Hex: hex(layerBytes(n)),
        unzippedSize: layerZips.get(n)?.unzippedSize ?? -1,
      },
      functions: [{ name: 'hello', version: String(n), codeSha256: b64(codeBytes(n)), alias: 'live', layers: [layerArn(n)] }],
    };
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    s3.on(GetObjectCommand, { Bucket: BUCKET, Key: manifestKey(bakeId) }).callsFake(() => ({ Body: body(text) }));
    await ledger.append({
      type: 'released',
      bakeId,
      at: manifest.recordedAt,
      trigger: { type: 'cli', user: 'tester' },
      layer: { arn: layerArn(n), version: n, codeSha256: manifest.layer.codeSha256 },
      functions: [{ name: 'hello', alias: 'live', from: n > 1 ? String(n - 1) : null, to: String(n), changed: true }],
      manifest: { uri: `s3://${BUCKET}/${manifestKey(bakeId)}`, sha256Hex: hex(text), size: Buffer.byteLength(text) },
    });
  }

  beforeAll(async () => {
    const scratch = await tempDir();
    for (const v of [1, 2, 3]) {
      const zip = await zipOf(scratch.dir, `layer-${v}`, { '!bootstrap': `#!/bin/sh\necho runtime ${v}\n` });
      layerZips.set(v, { bytes: await readFile(zip.file), unzippedSize: zip.unzippedSize });
    }
    await scratch.remove();
  });

  beforeEach(async () => {
    work = await tempDir();
    fetched = [];
    served = new Map();
    for (const v of [1, 2, 3]) {
      served.set(layerUrl(v), layerBytes(v));
      served.set(codeUrl(String(v)), codeBytes(v));
    }
    const fetchFake: Fetch = async (url) => {
      fetched.push(url);
      const bytes = served.get(url);
      return bytes === undefined ? new Response('denied', { status: 403 }) : new Response(new Uint8Array(Buffer.from(bytes)));
    };
    ledger = new MemoryLedger();
    deps = {
      ledger,
      artefacts: new S3ArtefactStore({ bucket: BUCKET, client: s3Client, tmpDir: work.dir }),
      layers: new LambdaLayerRegistry({ bucket: BUCKET, lambda: lambdaClient, s3: s3Client, fetch: fetchFake }),
      functions: new LambdaFunctionRegistry({
        bucket: BUCKET,
        role: 'arn:aws:iam::123456789012:role/r',
        lambda: lambdaClient,
        s3: s3Client,
        fetch: fetchFake,
      }),
    };
    // Three bakes: layer versions 1-3, hello versions 1-3 (each on its layer), $LATEST on layer 3, live on 3.
    for (const v of [1, 2, 3]) {
      await recordRelease(v);
      lambda.on(GetLayerVersionByArnCommand, { Arn: layerArn(v) }).resolves({
        LayerVersionArn: layerArn(v),
        Version: v,
        Content: { CodeSha256: b64(layerBytes(v)), CodeSize: layerBytes(v).length },
        CompatibleRuntimes: ['provided.al2023'],
        CompatibleArchitectures: ['x86_64'],
      });
      lambda.on(GetLayerVersionCommand, { LayerName: LAYER, VersionNumber: v }).resolves({
        LayerVersionArn: layerArn(v),
        Version: v,
        Content: { CodeSha256: b64(layerBytes(v)), CodeSize: layerBytes(v).length, Location: layerUrl(v) },
      });
      lambda.on(GetFunctionConfigurationCommand, { FunctionName: 'hello', Qualifier: String(v) }).resolves(configuration(String(v), v));
      lambda
        .on(GetFunctionCommand, { FunctionName: 'hello', Qualifier: String(v) })
        .resolves({ Configuration: configuration(String(v), v), Code: { RepositoryType: 'S3', Location: codeUrl(String(v)) } });
    }
    lambda
      .on(ListLayerVersionsCommand, { LayerName: LAYER })
      .resolvesOnce({ LayerVersions: [3, 2].map((v) => ({ LayerVersionArn: layerArn(v), Version: v })), NextMarker: 'page-2' })
      .resolvesOnce({ LayerVersions: [{ LayerVersionArn: layerArn(1), Version: 1 }] });
    lambda.on(ListVersionsByFunctionCommand, { FunctionName: 'hello' }).resolves({
      Versions: [configuration('$LATEST', 3), configuration('1', 1), configuration('2', 2), configuration('3', 3)],
    });
    lambda
      .on(ListAliasesCommand, { FunctionName: 'hello' })
      .resolves({ Aliases: [{ Name: 'live', FunctionVersion: '3', RevisionId: 'rev-3' }] });
    lambda.on(DeleteFunctionCommand).resolves({});
    lambda.on(DeleteLayerVersionCommand).resolves({});
  });

  afterEach(async () => {
    lambda.reset();
    s3.reset();
    await work.remove();
  });

  describe('verifyBake', () => {
    it('re-fetches the layer through GetLayerVersion and Content.Location, each version through its configuration and code', async () => {
      // Act
      const result = await verifyBake('bake-2', deps);

      // Assess
      expect(result.mismatches).toEqual([]);
      expect(result.checks).toHaveLength(10);
      expect(lambda).toHaveReceivedCommandWith(GetLayerVersionByArnCommand, { Arn: layerArn(2) });
      expect(lambda).toHaveReceivedCommandWith(GetLayerVersionCommand, { LayerName: LAYER, VersionNumber: 2 });
      expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'hello', Qualifier: '2' });
      expect(lambda).toHaveReceivedCommandWith(GetFunctionCommand, { FunctionName: 'hello', Qualifier: '2' });
      expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: BUCKET, Key: 'manifests/bake-2.json' });
      expect(fetched).toEqual([layerUrl(2), codeUrl('2')]);
    });

    it('lists each mismatch: bytes Lambda serves that are not the pinned ones, and a configuration that changed', async () => {
      // Prepare
      served.set(layerUrl(2), 'swapped layer');
      lambda
        .on(GetFunctionConfigurationCommand, { FunctionName: 'hello', Qualifier: '2' })
        .resolves({ ...configuration('2', 2), Layers: [{ Arn: layerArn(9) }] });

      // Act
      const result = await verifyBake('bake-2', deps);

      // Assess
      expect(result.mismatches.map((m) => `${m.subject} | ${m.property} | ${m.actual}`)).toEqual([
        `layer ${layerArn(2)} | content SHA-256 | ${b64('swapped layer')}`,
        `layer ${layerArn(2)} | content size | ${'swapped layer'.length}`,
        `layer ${layerArn(2)} | unzipped size | null`,
        `hello:2 | layers (in order) | ${layerArn(9)}`,
      ]);
    });

    it('reports a layer version that was deleted', async () => {
      // Prepare
      lambda.on(GetLayerVersionByArnCommand, { Arn: layerArn(1) }).rejects(notFound());

      // Act
      const result = await verifyBake('bake-1', deps);

      // Assess
      expect(result.mismatches.map((m) => `${m.subject} | ${m.property}`)).toEqual([`layer ${layerArn(1)} | exists`]);
      expect(lambda).not.toHaveReceivedCommand(GetLayerVersionCommand);
    });
  });

  describe('prune', () => {
    it('dry run: lists what would go and sends no Delete*', async () => {
      // Act
      const result = await prune({ keep: 1, apply: false }, deps);

      // Assess
      expect(summary(result.items)).toEqual([
        'function hello:1 would delete',
        'function hello:2 would delete',
        'function hello:3 kept',
        `layer ${LAYER}:1 would delete`,
        `layer ${LAYER}:2 would delete`,
        `layer ${LAYER}:3 kept`,
      ]);
      expect(lambda).toHaveReceivedCommandWith(ListVersionsByFunctionCommand, { FunctionName: 'hello' });
      expect(lambda).toHaveReceivedCommandWith(ListAliasesCommand, { FunctionName: 'hello' });
      expect(lambda).toHaveReceivedCommandTimes(ListLayerVersionsCommand, 2);
      expect(lambda).not.toHaveReceivedCommand(DeleteFunctionCommand);
      expect(lambda).not.toHaveReceivedCommand(DeleteLayerVersionCommand);
    });

    it('--apply deletes exactly the unreferenced versions, never $LATEST', async () => {
      // Act
      await prune({ keep: 1, apply: true }, deps);

      // Assess
      expect(lambda.commandCalls(DeleteFunctionCommand).map((c) => c.args[0].input)).toEqual([
        { FunctionName: 'hello', Qualifier: '1' },
        { FunctionName: 'hello', Qualifier: '2' },
      ]);
      expect(lambda.commandCalls(DeleteLayerVersionCommand).map((c) => c.args[0].input)).toEqual([
        { LayerName: LAYER, VersionNumber: 1 },
        { LayerName: LAYER, VersionNumber: 2 },
      ]);
    });

    it('keeps a version an alias routes a weight to, and its layer', async () => {
      // Prepare
      lambda.on(ListAliasesCommand, { FunctionName: 'hello' }).resolves({
        Aliases: [{ Name: 'live', FunctionVersion: '3', RevisionId: 'rev-3', RoutingConfig: { AdditionalVersionWeights: { '2': 0.1 } } }],
      });

      // Act
      const result = await prune({ keep: 1, apply: true }, deps);

      // Assess
      expect(summary(result.items)).toEqual([
        'function hello:1 deleted',
        'function hello:2 kept',
        'function hello:3 kept',
        `layer ${LAYER}:1 deleted`,
        `layer ${LAYER}:2 kept`,
        `layer ${LAYER}:3 kept`,
      ]);
      expect(result.items[1]?.keptBecause).toEqual(['alias live']);
      expect(lambda.commandCalls(DeleteFunctionCommand).map((c) => c.args[0].input)).toEqual([{ FunctionName: 'hello', Qualifier: '1' }]);
    });

    it('a version an alias took meanwhile is refused by Lambda: reported, and its layer stays', async () => {
      // Prepare
      lambda
        .on(DeleteFunctionCommand, { FunctionName: 'hello', Qualifier: '2' })
        .rejects(new ResourceConflictException({ $metadata: { httpStatusCode: 409 }, message: 'referenced by alias canary' }));

      // Act
      const result = await prune({ keep: 1, apply: true }, deps);

      // Assess
      expect(summary(result.items)).toEqual([
        'function hello:1 deleted',
        'function hello:2 failed',
        'function hello:3 kept',
        `layer ${LAYER}:1 deleted`,
        `layer ${LAYER}:2 kept`,
        `layer ${LAYER}:3 kept`,
      ]);
      expect(result.items[1]?.error).toBe('hello:2 is in use by an alias; it was not deleted');
      expect(lambda.commandCalls(DeleteLayerVersionCommand).map((c) => c.args[0].input)).toEqual([{ LayerName: LAYER, VersionNumber: 1 }]);
    });
  });

  describe('the adapters', () => {
    it('never sends DeleteFunction without a version number (that would delete the whole function)', async () => {
      // Act
      const error = await rejection(deps.functions.deleteVersion('hello', '$LATEST'));

      // Assess
      expect(error).toBeInstanceOf(BakeryError);
      expect(lambda).not.toHaveReceivedCommand(DeleteFunctionCommand);
    });

    it('maps a conflict to AliasConflictError and treats a version that is gone as deleted', async () => {
      // Prepare
      lambda
        .on(DeleteFunctionCommand, { Qualifier: '1' })
        .rejects(new ResourceConflictException({ $metadata: { httpStatusCode: 409 }, message: 'alias' }))
        .on(DeleteFunctionCommand, { Qualifier: '2' })
        .rejects(notFound());

      // Act
      const conflict = await rejection(deps.functions.deleteVersion('hello', '1'));
      await deps.functions.deleteVersion('hello', '2');

      // Assess
      expect(conflict).toBeInstanceOf(AliasConflictError);
    });

    it('downloads nothing for a version that does not exist, and fails clearly when the presigned URL is refused', async () => {
      // Prepare
      lambda.on(GetLayerVersionCommand, { VersionNumber: 7 }).rejects(notFound());
      served.delete(codeUrl('1'));

      // Act
      const missing = await deps.layers.download(layerArn(7), `${work.dir}/l7.zip`);
      const refused = await rejection(deps.functions.downloadCode('hello', '1', `${work.dir}/c1.zip`));

      // Assess
      expect(missing).toBe(false);
      expect(refused).toBeInstanceOf(BakeryError);
      expect(refused.message).toBe('downloading the code of hello:1 failed: HTTP 403');
      expect(refused.message).not.toContain('Signature');
    });

    it('describes a layer version with its compatible runtimes and architectures', async () => {
      // Act
      const details = await deps.layers.describe(layerArn(1));

      // Assess
      expect(details).toEqual({
        name: LAYER,
        arn: layerArn(1),
        version: 1,
        codeSha256: b64(layerBytes(1)),
        size: layerBytes(1).length,
        compatibleRuntimes: ['provided.al2023'],
        architectures: ['x86_64'],
      });
    });
  });
});
