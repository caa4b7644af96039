import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, type GetObjectCommandInput, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BakeryError, BakeSpecError, NotFoundError } from '../../errors.ts';
import type { SourceReader } from '../../ports/sources.ts';
import type { ArtefactStore } from '../../ports/storage.ts';
import type { ArtefactRef, BakeSource } from '../../state.ts';
import { exists, sha256File } from '../../util/fsx.ts';
import { extractBundle } from '../../zip/bundle.ts';
import { unzipTo } from '../../zip/deterministic.ts';
import { s3Client } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';

const NOT_FOUND = ['NoSuchKey', 'NoSuchVersion', 'NotFound'];
const SHA256_HEX = /^[0-9a-f]{64}$/;

export const s3Uri = (bucket: string, key: string): string => `s3://${bucket}/${key}`;

/** Split `s3://bucket/key`; the key is everything after the bucket, unencoded. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!match) throw new BakeryError(`not an S3 artefact reference: ${uri}`);
  return { bucket: match[1] as string, key: match[2] as string };
}

function checkKey(key: string): string {
  if (key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '' || part === '.')) {
    throw new BakeryError(`bad artefact key ${key}`);
  }
  return key;
}

/**
 * GetObject streamed to `file` through a SHA-256, written under a temporary name first:
 * a cut download never sits at `file`.
 */
export async function downloadObject(
  client: S3Client,
  input: GetObjectCommandInput,
  file: string,
): Promise<{ file: string; sha256Hex: string; size: number }> {
  const where = s3Uri(input.Bucket ?? '', input.Key ?? '');
  const out = await callAws(`GetObject ${where}`, () => client.send(new GetObjectCommand(input)));
  if (!(out.Body instanceof Readable)) throw new BakeryError(`GetObject ${where} returned no body stream`);
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomBytes(6).toString('hex')}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    await callAws(`downloading ${where}`, () => pipeline(out.Body as Readable, tap, createWriteStream(temp)));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  return { file, sha256Hex: hash.digest('hex'), size };
}

/**
 * Artefacts in the S3 artefacts bucket, referenced as `s3://bucket/key`. Hashes are
 * computed here, and S3 is given the SHA-256 with every upload so it refuses bytes
 * that changed on the way. Downloads land in /tmp, keyed by content hash, so a warm
 * Lambda does not fetch the same artefact twice.
 */
export class S3ArtefactStore implements ArtefactStore {
  private readonly client: S3Client;
  private readonly bucket: Setting;
  private readonly tmp: string;

  constructor(options: { bucket: Setting; client?: S3Client; tmpDir?: string }) {
    this.client = options.client ?? s3Client;
    this.bucket = options.bucket;
    this.tmp = options.tmpDir ?? os.tmpdir();
  }

  async putFile(key: string, file: string): Promise<ArtefactRef> {
    const bucket = resolveSetting(this.bucket);
    const { hex, base64, size } = await sha256File(file);
    await callAws(`PutObject ${s3Uri(bucket, key)}`, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: checkKey(key),
          // Streamed: layer trees and code bundles can be hundreds of MB.
          Body: createReadStream(file),
          ContentLength: size,
          ChecksumSHA256: base64,
        }),
      ),
    );
    return { uri: s3Uri(bucket, key), sha256Hex: hex, size };
  }

  async putJson(key: string, value: unknown): Promise<ArtefactRef> {
    const bucket = resolveSetting(this.bucket);
    const body = Buffer.from(`${JSON.stringify(value, null, 2)}\n`);
    const digest = createHash('sha256').update(body).digest();
    await callAws(`PutObject ${s3Uri(bucket, key)}`, () =>
      this.client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: checkKey(key),
          Body: body,
          ContentType: 'application/json',
          ChecksumSHA256: digest.toString('base64'),
        }),
      ),
    );
    return { uri: s3Uri(bucket, key), sha256Hex: digest.toString('hex'), size: body.length };
  }

  async getJson<T>(key: string): Promise<T | undefined> {
    const bucket = resolveSetting(this.bucket);
    const where = s3Uri(bucket, key);
    let body: unknown;
    try {
      body = (await callAws(`GetObject ${where}`, () => this.client.send(new GetObjectCommand({ Bucket: bucket, Key: checkKey(key) }))))
        .Body;
    } catch (error) {
      if (hasName(error, ...NOT_FOUND)) return undefined;
      throw error;
    }
    if (!(body instanceof Readable)) throw new BakeryError(`GetObject ${where} returned no body stream`);
    return JSON.parse(await callAws(`reading ${where}`, () => text(body))) as T;
  }

  async fetchFile(ref: ArtefactRef): Promise<string> {
    const { bucket, key } = parseS3Uri(ref.uri);
    if (!SHA256_HEX.test(ref.sha256Hex)) throw new BakeryError(`artefact ${ref.uri} has no valid sha256Hex`);
    const file = path.join(this.tmp, 'bakery-artefacts', ref.sha256Hex, path.posix.basename(key));
    // Only a download whose hash matched is ever renamed into place, so presence means verified.
    if (await exists(file)) return file;
    const staging = path.join(this.tmp, 'bakery-artefacts', `.${ref.sha256Hex}.${randomBytes(6).toString('hex')}`);
    try {
      const got = await downloadObject(this.client, { Bucket: bucket, Key: key }, path.join(staging, 'blob')).catch((error: unknown) => {
        if (hasName(error, ...NOT_FOUND)) throw new NotFoundError(`artefact ${ref.uri} does not exist`, { cause: error });
        throw error;
      });
      if (got.sha256Hex !== ref.sha256Hex || got.size !== ref.size) {
        throw new BakeryError(
          `artefact ${ref.uri} is not what was stored: sha256 ${got.sha256Hex} (${got.size} bytes), expected ${ref.sha256Hex} (${ref.size} bytes)`,
          { hint: 'The object was overwritten or corrupted; rerun the bake.' },
        );
      }
      await mkdir(path.dirname(file), { recursive: true });
      await rename(got.file, file);
      return file;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** `ref` is a zip of the tree (its sha256Hex is the zip's); it is extracted once per hash. */
  async fetchTree(ref: ArtefactRef): Promise<string> {
    if (!SHA256_HEX.test(ref.sha256Hex)) throw new BakeryError(`artefact ${ref.uri} has no valid sha256Hex`);
    const dir = path.join(this.tmp, 'bakery-trees', ref.sha256Hex);
    if (await exists(dir)) return dir;
    const zip = await this.fetchFile(ref);
    const staging = `${dir}.${randomBytes(6).toString('hex')}.partial`;
    try {
      await unzipTo(zip, staging);
      await rename(staging, dir);
    } finally {
      await rm(staging, { recursive: true, force: true });
      // /tmp is small (512 MB by default): keep the tree, not the tree and its zip.
      await rm(zip, { force: true });
    }
    return dir;
  }
}

/**
 * Bake sources in S3: a zip bundle with `bake.json` at its root and the function code
 * directories it names, extracted into a fresh /tmp directory.
 */
export class S3SourceReader implements SourceReader {
  private readonly client: S3Client;
  private readonly tmp: string;
  private previous: string | undefined;

  constructor(options: { client?: S3Client; tmpDir?: string } = {}) {
    this.client = options.client ?? s3Client;
    this.tmp = options.tmpDir ?? os.tmpdir();
  }

  async open(source: BakeSource): Promise<{ specFile: string; where: string }> {
    if (source.type !== 's3') {
      throw new BakeSpecError(`the AWS backend reads bakes from S3, not from the file ${source.path}`, {
        hint: 'Upload the bake bundle (a zip with bake.json at its root) and pass an s3 source.',
      });
    }
    const where = s3Uri(source.bucket, source.key);
    const named = source.versionId === null ? where : `${where} (version ${source.versionId})`;
    // The port has no close(): the previous bake's directory goes when the next one is opened,
    // so a warm container's /tmp holds at most one source.
    if (this.previous) await rm(this.previous, { recursive: true, force: true });
    const dir = await mkdtemp(path.join(this.tmp, 'bakery-source-'));
    this.previous = dir;
    const bundle = path.join(dir, 'bundle.zip');
    await downloadObject(
      this.client,
      { Bucket: source.bucket, Key: source.key, ...(source.versionId === null ? {} : { VersionId: source.versionId }) },
      bundle,
    ).catch((error: unknown) => {
      if (hasName(error, ...NOT_FOUND)) throw new BakeSpecError(`bake bundle ${named} does not exist`, { cause: error });
      throw error;
    });
    try {
      // The bundle is untrusted (anyone who may upload): checked entry by entry before anything is extracted.
      const specFile = await extractBundle(bundle, path.join(dir, 'bundle'), named);
      return { specFile, where };
    } finally {
      await rm(bundle, { force: true });
    }
  }
}
