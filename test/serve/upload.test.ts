import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decideApproval } from '../../src/cores/approval.ts';
import { objectCreatedEvent } from '../../src/s3local/server.ts';
import { type ServeHandle, startServe } from '../../src/serve/serve.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { runCli } from '../helpers/cli.ts';
import { approvalRequested, makeWorkspace, type Workspace } from '../helpers/local-bake.ts';
import { rawZip } from '../helpers/raw-zip.ts';
import { findAwsCliV2, toolMissing } from '../helpers/tools.ts';

const run = promisify(execFile);
const awscli = await findAwsCliV2();

describe('bakery serve: an upload to the local bucket bakes', () => {
  let ws: Workspace;
  let serve: ServeHandle;
  let bundle: Buffer;

  beforeEach(async () => {
    ws = await makeWorkspace();
    // The bake bundle: bake.json at the root with the code directory it names.
    bundle = await readFile((await zipTree(path.dirname(ws.specFile), path.join(ws.dir, 'bundle.zip'))).file);
    serve = await startServe({ home: ws.home, deps: ws.deps, user: 'tester', runOptions: { retryIntervalMs: 0, waitMs: 0 } });
  });

  afterEach(async () => {
    await serve.close();
    await ws.cleanup();
  });

  const s3 = () =>
    new S3Client({
      endpoint: serve.info.s3.endpoint,
      forcePathStyle: true,
      region: serve.info.s3.region,
      credentials: { accessKeyId: serve.info.s3.accessKeyId, secretAccessKey: serve.info.s3.secretAccessKey },
    });

  it('writes serve.json (0600) with the dashboard and the S3 endpoint, bucket, prefix and key pair', async () => {
    const file = ws.home.path('serve.json');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const info = JSON.parse(await readFile(file, 'utf8'));
    expect(info).toEqual(serve.info);
    expect(info.dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(info.s3).toMatchObject({
      endpoint: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      bucket: 'bakery-source',
      prefix: 'bakes/',
    });
  });

  it('starts the bake of an @aws-sdk/client-s3 upload by itself; it waits for approval; approving moves live; a second delivery of the event bakes nothing', async () => {
    // Prepare
    const asked = approvalRequested(ws.deps);

    // Act: a streamed body, so the SDK sends aws-chunked with a trailing checksum.
    const put = await s3().send(
      new PutObjectCommand({
        Bucket: 'bakery-source',
        Key: 'bakes/hello.zip',
        Body: Readable.from([bundle]),
        ContentLength: bundle.length,
      }),
    );
    const approval = await asked;

    // Assess: the bake is waiting, nothing is live yet.
    const [execution] = await serve.executions.list();
    expect(execution).toMatchObject({
      status: 'running',
      request: { trigger: { type: 's3', key: 'bakes/hello.zip', versionId: put.VersionId } },
    });
    expect(approval.bakeId).toBe(execution?.name);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toBeUndefined();

    // Act: the same event delivered again (S3 delivers at least once).
    const version = await serve.store.get('bakes/hello.zip');
    await serve.deliver(
      objectCreatedEvent(version as NonNullable<typeof version>, {
        bucket: 'bakery-source',
        region: serve.info.s3.region,
        reason: 'PutObject',
      }),
    );
    expect((await serve.executions.list()).map((e) => e.name)).toEqual([execution?.name]);

    // Act: approve.
    await decideApproval({ ref: approval.id, outcome: 'approved', by: 'tester' }, ws.deps);
    await serve.executions.settled();

    // Assess
    const done = await serve.executions.get(execution?.name ?? '');
    expect(done).toMatchObject({ status: 'succeeded', failure: null });
    expect(done?.states.map((s) => s.name)).toContain('RequestApproval');
    expect(done?.states.every((s) => s.status === 'succeeded' && s.exitedAt !== null)).toBe(true);
    expect((await ws.deps.functions.getAlias('hello', 'live'))?.version).toBe('1');
  });

  it('refuses a zip-slip upload by name: the bake fails in ResolveBake with UnsafeSourceBundleError, nothing released', async () => {
    const evil = rawZip([
      { name: 'bake.json', data: await readFile(ws.specFile) },
      { name: '../../escaped.mjs', data: 'export const x = 1;' },
    ]);
    await s3().send(new PutObjectCommand({ Bucket: 'bakery-source', Key: 'bakes/evil.zip', Body: evil }));
    await serve.executions.settled();
    const [execution] = await serve.executions.list();
    expect(execution?.status).toBe('failed');
    expect(execution?.failure).toMatchObject({ state: 'ResolveBake', error: 'UnsafeSourceBundleError' });
    expect(await ws.deps.functions.getAlias('hello', 'live')).toBeUndefined();
  });

  it('`bakery schedule run drift-check` fires on the running server, and in its own process once the server is gone', async () => {
    const env = { BAKERY_HOME: ws.home.root, PATH: process.env.PATH ?? '' };
    const onServer = await runCli(['schedule', 'run', 'drift-check'], env);
    expect(onServer).toMatchObject({
      code: 0,
      stdout: expect.stringContaining(`fired drift-check on bakery serve (${serve.info.dashboard.url}): no drift`),
    });
    expect(serve.scheduler.history.map((f) => f.schedule)).toEqual(['drift-check']);
    await serve.close();
    const standalone = await runCli(['schedule', 'run', 'drift-check'], env);
    expect(standalone).toMatchObject({ code: 0, stdout: expect.stringContaining('fired drift-check (no bakery serve running): no drift') });
    expect((await runCli(['schedule', 'run', 'weekly'], env)).code).toBe(2);
  });

  it('ignores uploads outside the prefix', async () => {
    await s3().send(new PutObjectCommand({ Bucket: 'bakery-source', Key: 'notes/readme.zip', Body: bundle }));
    expect(await serve.executions.list()).toEqual([]);
  });

  it.skipIf(toolMissing('awscli', awscli))(
    'starts the bake of an awscli v2 `aws s3 cp` upload, which waits for approval',
    async () => {
      const asked = approvalRequested(ws.deps);
      const file = path.join(ws.dir, 'bundle.zip');
      await run(awscli as string, ['--endpoint-url', serve.info.s3.endpoint, 's3', 'cp', file, 's3://bakery-source/bakes/hello.zip'], {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: ws.dir,
          AWS_ACCESS_KEY_ID: serve.info.s3.accessKeyId,
          AWS_SECRET_ACCESS_KEY: serve.info.s3.secretAccessKey,
          AWS_DEFAULT_REGION: serve.info.s3.region,
        },
      });
      const approval = await asked;
      const [execution] = await serve.executions.list();
      expect(execution).toMatchObject({
        name: approval.bakeId,
        status: 'running',
        request: { trigger: { type: 's3', key: 'bakes/hello.zip' } },
      });
      await decideApproval({ ref: approval.id, outcome: 'approved', by: 'tester' }, ws.deps);
      await serve.executions.settled();
      expect((await ws.deps.functions.getAlias('hello', 'live'))?.version).toBe('1');
    },
    120_000,
  );
});
