import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ObjectCreatedEvent, type S3Server, startS3Server } from '../../src/s3local/server.ts';
import { BucketStore } from '../../src/s3local/store.ts';
import { findAwsCliV2, toolMissing } from '../helpers/tools.ts';

const run = promisify(execFile);
const credentials = { accessKeyId: 'AKIALOCALTEST0000001', secretAccessKey: randomBytes(20).toString('hex'), region: 'eu-west-1' };
const BUCKET = 'bakery-source';

let dir: string;
let store: BucketStore;
let server: S3Server;
const events: ObjectCreatedEvent[] = [];

function client(secret = credentials.secretAccessKey): S3Client {
  return new S3Client({
    endpoint: server.endpoint,
    forcePathStyle: true,
    region: credentials.region,
    credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: secret },
    maxAttempts: 1,
  });
}

async function stored(): Promise<string[]> {
  const root = path.join(dir, 'bucket', BUCKET, 'objects');
  return (await readdir(root).catch(() => [] as string[])).sort();
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-s3local-'));
  store = new BucketStore({ root: path.join(dir, 'bucket'), bucket: BUCKET });
  server = await startS3Server({
    store,
    credentials,
    onObjectCreated: async (event) => {
      events.push(event);
    },
  });
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  events.length = 0;
});

describe('the local bucket with @aws-sdk/client-s3 (default flexible checksums)', () => {
  it('stores a streamed (aws-chunked, trailing CRC32) upload as its decoded bytes, versioned, and emits Object Created', async () => {
    // Prepare
    const s3 = client();
    const data = randomBytes(70_000);
    // Act
    const put = await s3.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: 'bakes/a.zip', Body: Readable.from([data]), ContentLength: data.length }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bakes/a.zip' }));
    const bytes = Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());
    // Assess
    expect(bytes.equals(data)).toBe(true);
    expect(put.VersionId).toMatch(/^[0-9a-z]+$/);
    expect(got.VersionId).toBe(put.VersionId);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      detail: {
        bucket: { name: BUCKET },
        object: { key: 'bakes/a.zip', size: data.length, 'version-id': put.VersionId },
        reason: 'PutObject',
      },
    });
  });

  it('keeps every version, lists them, reads an older one by id, and a delete leaves a marker', async () => {
    const s3 = client();
    const first = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip', Body: Buffer.from('one') }));
    const second = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip', Body: Buffer.from('two') }));
    const old = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip', VersionId: first.VersionId }));
    expect(await old.Body?.transformToString()).toBe('one');
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip' }));
    expect(head.VersionId).toBe(second.VersionId);
    expect(head.ContentLength).toBe(3);

    const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'bakes/v' }));
    expect(versions.Versions?.map((v) => [v.VersionId, v.IsLatest])).toEqual([
      [second.VersionId, true],
      [first.VersionId, false],
    ]);
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: BUCKET }))).Status).toBe('Enabled');

    const deleted = await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip' }));
    expect(deleted.DeleteMarker).toBe(true);
    await expect(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bakes/v.zip' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    const after = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'bakes/v' }));
    expect(after.DeleteMarkers?.map((m) => [m.VersionId, m.IsLatest])).toEqual([[deleted.VersionId, true]]);
    expect(after.Versions?.every((v) => v.IsLatest === false)).toBe(true);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'bakes/' }));
    expect(listed.Contents?.map((c) => c.Key)).not.toContain('bakes/v.zip');
  });

  it('pages ListObjectsV2 and ListObjectVersions', async () => {
    const s3 = client();
    for (const name of ['p/1', 'p/2', 'p/3']) await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: name, Body: Buffer.from(name) }));
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'p/', MaxKeys: 2, ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key ?? ''));
      token = page.NextContinuationToken;
    } while (token);
    expect(keys).toEqual(['p/1', 'p/2', 'p/3']);
    const first = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'p/', MaxKeys: 2 }));
    expect(first.IsTruncated).toBe(true);
    const rest = await s3.send(
      new ListObjectVersionsCommand({
        Bucket: BUCKET,
        Prefix: 'p/',
        KeyMarker: first.NextKeyMarker,
        VersionIdMarker: first.NextVersionIdMarker,
      }),
    );
    expect([...(first.Versions ?? []), ...(rest.Versions ?? [])].map((v) => v.Key)).toEqual(['p/1', 'p/2', 'p/3']);
  });

  it('assembles a multipart upload into one version and emits one event for it', async () => {
    const s3 = client();
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(1000)];
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'bakes/big.zip' }));
    const etags: string[] = [];
    for (const [i, body] of parts.entries()) {
      const out = await s3.send(new UploadPartCommand({ Bucket: BUCKET, Key: 'bakes/big.zip', UploadId, PartNumber: i + 1, Body: body }));
      etags.push(out.ETag ?? '');
    }
    const done = await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: BUCKET,
        Key: 'bakes/big.zip',
        UploadId,
        MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'bakes/big.zip' }));
    expect(
      Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(Buffer.concat(parts)),
    ).toBe(true);
    expect(done.ETag).toMatch(/-2"$/);
    expect(events.map((e) => [e.detail.reason, e.detail.object['version-id']])).toEqual([['CompleteMultipartUpload', done.VersionId]]);
  });

  it('refuses a wrongly signed or unsigned request with 403 and writes nothing', async () => {
    const before = await stored();
    await expect(
      client('not-the-secret').send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bakes/evil.zip', Body: Buffer.from('x') })),
    ).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    const unsigned = await fetch(`${server.endpoint}/${BUCKET}/bakes/evil.zip`, { method: 'PUT', body: 'x' });
    expect(unsigned.status).toBe(403);
    expect(await unsigned.text()).toContain('<Code>AccessDenied</Code>');
    const listing = await fetch(`${server.endpoint}/${BUCKET}?list-type=2`);
    expect(listing.status).toBe(403);
    expect(await stored()).toEqual(before);
    expect(events).toEqual([]);
  });

  it('refuses a body that does not match its signed SHA-256, and keeps nothing of it', async () => {
    const before = await stored();
    const s3 = client();
    // The middleware changes the bytes after signing: what a corrupted transfer looks like.
    s3.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { body?: unknown };
        request.body = Buffer.from('tampered');
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low', name: 'tamper' },
    );
    await expect(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'bakes/t.zip', Body: Buffer.from('original') })),
    ).rejects.toMatchObject({
      $metadata: { httpStatusCode: 400 },
    });
    expect(await stored()).toEqual(before);
    expect(await readdir(path.join(dir, 'bucket', BUCKET, '.staging'))).toEqual([]);
  });
});

const awscli = await findAwsCliV2();

// awscli takes seconds to start on a busy machine: these tests get minutes, not a timed assertion.
describe.skipIf(toolMissing('awscli', awscli))('the local bucket with awscli v2', { timeout: 180_000 }, () => {
  const cli = (...args: string[]) =>
    run(awscli as string, ['--endpoint-url', server.endpoint, ...args], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
        AWS_DEFAULT_REGION: credentials.region,
        AWS_CONFIG_FILE: path.join(dir, 'no-config'),
        AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
      },
    });

  it('copies a small file up and back, lists it, and a second copy is a second version', async () => {
    const file = path.join(dir, 'hello.zip');
    await writeFile(file, randomBytes(2000));
    await cli('s3', 'cp', file, `s3://${BUCKET}/cli/hello.zip`);
    await cli('s3', 'cp', file, `s3://${BUCKET}/cli/hello.zip`);
    const ls = await cli('s3', 'ls', `s3://${BUCKET}/cli/`);
    expect(ls.stdout).toContain('hello.zip');
    const back = path.join(dir, 'back.zip');
    await cli('s3', 'cp', `s3://${BUCKET}/cli/hello.zip`, back);
    const { stdout } = await cli('s3api', 'list-object-versions', '--bucket', BUCKET, '--prefix', 'cli/');
    expect((JSON.parse(stdout) as { Versions: unknown[] }).Versions).toHaveLength(2);
    expect(events.map((e) => e.detail.reason)).toEqual(['PutObject', 'PutObject']);
  });

  it('uploads a file over 8 MB as a multipart upload', async () => {
    const file = path.join(dir, 'big.zip');
    const data = randomBytes(9 * 1024 * 1024);
    await writeFile(file, data);
    await cli('s3', 'cp', file, `s3://${BUCKET}/cli/big.zip`);
    expect(events.map((e) => e.detail.reason)).toEqual(['CompleteMultipartUpload']);
    const latest = await store.get('cli/big.zip');
    expect(latest?.etag).toMatch(/-2"$/);
    expect(latest && (await store.readAll(latest)).equals(data)).toBe(true);
  });

  it('is refused with a wrong secret', async () => {
    const file = path.join(dir, 'x.zip');
    await writeFile(file, 'x');
    const denied = await run(awscli as string, ['--endpoint-url', server.endpoint, 's3', 'cp', file, `s3://${BUCKET}/cli/x.zip`], {
      env: {
        PATH: process.env.PATH ?? '',
        HOME: dir,
        AWS_ACCESS_KEY_ID: credentials.accessKeyId,
        AWS_SECRET_ACCESS_KEY: 'wrong',
        AWS_DEFAULT_REGION: credentials.region,
      },
    }).catch((error: { stderr: string }) => error);
    expect(String((denied as { stderr: string }).stderr)).toContain('SignatureDoesNotMatch');
    expect(await store.get('cli/x.zip')).toBeUndefined();
  });
});
