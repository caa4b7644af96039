import { createHash } from 'node:crypto';
import { ReadStream } from 'node:fs';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { S3ArtefactStore, S3SourceReader } from '../../../src/adapters/aws/s3.ts';
import { resolveBake } from '../../../src/cores/resolve.ts';
import { BakeSpecError, NotFoundError, TransientBackendError, UnsafeSourceBundleError } from '../../../src/errors.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import { DirectoryRecipeCatalog } from '../../../src/recipes/recipe.ts';
import { FakeClock, MemoryArtefactStore, sequentialIds } from '../../helpers/memory.ts';
import { rawZip } from '../../helpers/raw-zip.ts';
import { awsError, body, tempDir, zipOf } from './fixtures.ts';

const BUCKET = 'bakery-artefacts';
const client = new S3Client({ region: 'eu-west-1' });
const s3 = mockClient(client);

const sha = (data: string | Buffer) => createHash('sha256').update(data);

describe('S3ArtefactStore', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let store: S3ArtefactStore;

  beforeEach(async () => {
    work = await tempDir();
    tmp = await tempDir('bakery-aws-tmp-');
    store = new S3ArtefactStore({ bucket: BUCKET, client, tmpDir: tmp.dir });
  });

  afterEach(async () => {
    s3.reset();
    await work.remove();
    await tmp.remove();
  });

  it('putFile streams the file with its SHA-256 so S3 verifies the bytes', async () => {
    // Prepare
    const file = path.join(work.dir, 'code.zip');
    await writeFile(file, 'zip bytes');
    s3.on(PutObjectCommand).resolves({});

    // Act
    const ref = await store.putFile('code/hello/abc.zip', file);

    // Assess
    expect(ref).toEqual({ uri: `s3://${BUCKET}/code/hello/abc.zip`, sha256Hex: sha('zip bytes').digest('hex'), size: 9 });
    expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: BUCKET,
      Key: 'code/hello/abc.zip',
      ContentLength: 9,
      ChecksumSHA256: sha('zip bytes').digest('base64'),
    });
    expect(s3.commandCalls(PutObjectCommand)[0]?.args[0].input.Body).toBeInstanceOf(ReadStream);
  });

  it('refuses keys that climb out of the bucket prefix', async () => {
    const file = path.join(work.dir, 'x');
    await writeFile(file, 'x');
    await expect(store.putFile('code/../secrets', file)).rejects.toThrow(/bad artefact key/);
    expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
  });

  it('putJson writes JSON with its checksum and returns its reference', async () => {
    // Prepare
    s3.on(PutObjectCommand).resolves({});
    const text = `${JSON.stringify({ ok: true }, null, 2)}\n`;

    // Act
    const ref = await store.putJson('manifests/b1.json', { ok: true });

    // Assess
    expect(ref).toEqual({ uri: `s3://${BUCKET}/manifests/b1.json`, sha256Hex: sha(text).digest('hex'), size: Buffer.byteLength(text) });
    const input = s3.commandCalls(PutObjectCommand)[0]?.args[0].input;
    expect(input).toMatchObject({ Key: 'manifests/b1.json', ContentType: 'application/json', ChecksumSHA256: sha(text).digest('base64') });
    expect(Buffer.from(input?.Body as Buffer).toString()).toBe(text);
  });

  it('getJson parses the object, and is undefined on NoSuchKey', async () => {
    // Prepare
    s3.on(GetObjectCommand, { Key: 'reports/b1/validation.json' })
      .resolves({ Body: body('{"passed":true}') })
      .on(GetObjectCommand, { Key: 'reports/none.json' })
      .rejects(new NoSuchKey({ $metadata: { httpStatusCode: 404 }, message: 'The specified key does not exist.' }));

    // Act
    const found = await store.getJson<{ passed: boolean }>('reports/b1/validation.json');
    const missing = await store.getJson('reports/none.json');

    // Assess
    expect(found).toEqual({ passed: true });
    expect(missing).toBeUndefined();
  });

  it('getJson lets other errors through, transient ones as TransientBackendError', async () => {
    s3.on(GetObjectCommand, { Key: 'denied.json' }).rejects(awsError('AccessDenied', 403));
    s3.on(GetObjectCommand, { Key: 'busy.json' }).rejects(awsError('SlowDown', 503));
    await expect(store.getJson('denied.json')).rejects.toMatchObject({ name: 'AccessDenied' });
    await expect(store.getJson('busy.json')).rejects.toBeInstanceOf(TransientBackendError);
  });

  it('fetchFile downloads to /tmp once, verified against the reference', async () => {
    // Prepare
    const bytes = 'function code';
    const ref = { uri: `s3://${BUCKET}/code/hello/x.zip`, sha256Hex: sha(bytes).digest('hex'), size: bytes.length };
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(bytes) }));

    // Act
    const first = await store.fetchFile(ref);
    const second = await store.fetchFile(ref);

    // Assess
    expect(await readFile(first, 'utf8')).toBe(bytes);
    expect(first.startsWith(tmp.dir)).toBe(true);
    expect(second).toBe(first);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: BUCKET, Key: 'code/hello/x.zip' });
  });

  it('fetchFile refuses bytes that do not match the reference, and keeps nothing', async () => {
    // Prepare
    const ref = { uri: `s3://${BUCKET}/code/hello/x.zip`, sha256Hex: sha('expected').digest('hex'), size: 8 };
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body('tampered') }));

    // Act + Assess
    await expect(store.fetchFile(ref)).rejects.toThrow(/is not what was stored/);
    await expect(store.fetchFile(ref)).rejects.toThrow(/is not what was stored/);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 2);
  });

  it('fetchFile names a missing artefact', async () => {
    s3.on(GetObjectCommand).rejects(new NoSuchKey({ $metadata: {}, message: 'no' }));
    const ref = { uri: `s3://${BUCKET}/gone.zip`, sha256Hex: sha('x').digest('hex'), size: 1 };
    await expect(store.fetchFile(ref)).rejects.toThrow(NotFoundError);
  });

  it('fetchTree extracts a zip artefact (keeping exec bits) once per hash', async () => {
    // Prepare
    const zip = await zipOf(work.dir, 'runtime', { '!bootstrap': '#!/bin/sh\n', 'lib/x.txt': 'x' });
    const ref = { uri: `s3://${BUCKET}/images/key/runtime.zip`, sha256Hex: zip.sha256Hex, size: zip.size };
    const bytes = await readFile(zip.file);
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(bytes) }));

    // Act
    const dir = await store.fetchTree(ref);
    const again = await store.fetchTree(ref);

    // Assess
    expect(again).toBe(dir);
    expect(await readFile(path.join(dir, 'lib/x.txt'), 'utf8')).toBe('x');
    expect((await stat(path.join(dir, 'bootstrap'))).mode & 0o111).not.toBe(0);
    expect(s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
    // The downloaded zip is dropped once extracted: /tmp is small.
    expect(await readdir(path.join(tmp.dir, 'bakery-artefacts', zip.sha256Hex))).toEqual([]);
  });
});

describe('S3SourceReader', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let reader: S3SourceReader;

  beforeEach(async () => {
    work = await tempDir();
    tmp = await tempDir('bakery-aws-tmp-');
    reader = new S3SourceReader({ client, tmpDir: tmp.dir });
  });

  afterEach(async () => {
    s3.reset();
    await work.remove();
    await tmp.remove();
  });

  it('extracts the bundle of the given object version and returns its bake.json', async () => {
    // Prepare
    const zip = await zipOf(work.dir, 'bundle', { 'bake.json': '{"version":1}', 'src/index.mjs': 'export const handler = 1;' });
    s3.on(GetObjectCommand).resolves({ Body: body(await readFile(zip.file)) });

    // Act
    const opened = await reader.open({ type: 's3', bucket: 'uploads', key: 'bakes/hello.zip', versionId: 'v42' });

    // Assess
    expect(opened.where).toBe('s3://uploads/bakes/hello.zip');
    expect(await readFile(opened.specFile, 'utf8')).toBe('{"version":1}');
    expect(await readFile(path.join(path.dirname(opened.specFile), 'src/index.mjs'), 'utf8')).toContain('handler');
    expect(s3).toHaveReceivedCommandWith(GetObjectCommand, { Bucket: 'uploads', Key: 'bakes/hello.zip', VersionId: 'v42' });
  });

  it('asks for the latest object when no version is given, and clears the previous bundle', async () => {
    // Prepare
    const zip = await zipOf(work.dir, 'bundle', { 'bake.json': '{}' });
    const bytes = await readFile(zip.file);
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(bytes) }));

    // Act
    const first = await reader.open({ type: 's3', bucket: 'uploads', key: 'a.zip', versionId: null });
    const second = await reader.open({ type: 's3', bucket: 'uploads', key: 'a.zip', versionId: null });

    // Assess
    expect(s3.commandCalls(GetObjectCommand)[0]?.args[0].input).not.toHaveProperty('VersionId');
    expect(second.specFile).not.toBe(first.specFile);
    await expect(stat(first.specFile)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails with BakeSpecError naming the object when bake.json is not at the root', async () => {
    // Prepare
    const zip = await zipOf(work.dir, 'bundle', { 'hello/bake.json': '{}' });
    s3.on(GetObjectCommand).resolves({ Body: body(await readFile(zip.file)) });

    // Act
    const open = reader.open({ type: 's3', bucket: 'uploads', key: 'bakes/hello.zip', versionId: null });

    // Assess
    await expect(open).rejects.toThrow(BakeSpecError);
    await expect(open).rejects.toThrow('s3://uploads/bakes/hello.zip has no bake.json at its root');
  });

  it('fails with BakeSpecError when the object is missing or not a zip', async () => {
    s3.on(GetObjectCommand, { Key: 'gone.zip' })
      .rejects(new NoSuchKey({ $metadata: {}, message: 'no' }))
      .on(GetObjectCommand, { Key: 'text.zip' })
      .resolves({ Body: body('not a zip') });
    await expect(reader.open({ type: 's3', bucket: 'u', key: 'gone.zip', versionId: null })).rejects.toThrow(
      /bake bundle s3:\/\/u\/gone.zip does not exist/,
    );
    await expect(reader.open({ type: 's3', bucket: 'u', key: 'text.zip', versionId: null })).rejects.toThrow(BakeSpecError);
  });

  it('refuses a zip-slip bundle by name (UnsafeSourceBundleError), and ResolveBake fails with it, extracting nothing', async () => {
    // Prepare: an uploaded bundle with an entry that climbs out of the extraction directory.
    const evil = rawZip([
      { name: 'bake.json', data: '{}' },
      { name: '../../../escaped.txt', data: 'pwned' },
    ]);
    s3.on(GetObjectCommand).callsFake(() => ({ Body: body(evil) }));
    const source = { type: 's3' as const, bucket: 'uploads', key: 'bakes/evil.zip', versionId: 'v1' };

    // Act
    const opened = await reader.open(source).catch((e: unknown) => e);
    const resolved = await resolveBake(
      { source, trigger: source },
      {
        sources: reader,
        recipes: new DirectoryRecipeCatalog(path.join(PROJECT_ROOT, 'layers')),
        artefacts: new MemoryArtefactStore(),
        clock: new FakeClock(),
        ids: sequentialIds(),
      },
    ).catch((e: unknown) => e);

    // Assess
    for (const error of [opened, resolved]) {
      expect(error).toBeInstanceOf(UnsafeSourceBundleError);
      expect((error as Error).message).toContain('s3://uploads/bakes/evil.zip (version v1)');
    }
    expect(await readdir(tmp.dir, { recursive: true })).not.toContain('escaped.txt');
    expect((await readdir(path.dirname(tmp.dir))).includes('escaped.txt')).toBe(false);
  });

  it('refuses a file source: the AWS backend reads S3', async () => {
    await expect(reader.open({ type: 'file', path: 'examples/hello/bake.json' })).rejects.toThrow(BakeSpecError);
    expect(s3).not.toHaveReceivedAnyCommand();
  });
});
