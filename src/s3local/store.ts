import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readJsonIfExists, writeJsonAtomic } from '../util/fsx.ts';

/** One version of an object (or a delete marker), as stored next to its bytes. */
export interface ObjectVersion {
  key: string;
  versionId: string;
  deleteMarker: boolean;
  size: number;
  /** The quoted ETag S3 returns: the MD5 of a single-part object, `md5(md5s)-N` of a multipart one. */
  etag: string;
  sha256Hex: string;
  lastModified: string;
  contentType: string;
  /** Increasing with every write to the bucket: the event's `sequencer`. */
  sequencer: string;
}

/** A body received into a temporary file, with the digests the request may be checked against. */
export interface StagedBody {
  file: string;
  size: number;
  md5: Buffer;
  sha256: Buffer;
}

const VERSION_ID = /^[0-9a-z]{8,64}$/;
const UPLOAD_ID = /^[0-9a-f]{32}$/;

/**
 * A versioned bucket on disk, under `<root>/<bucket>/`. Each key is a directory named by
 * the SHA-256 of the key (keys may be 1024 bytes and hold any character, file names may
 * not), holding `key.json` and per version `<versionId>.json` (the commit point: written
 * atomically, last) and `<versionId>.data` (renamed into place before its metadata).
 * A version that was cut short by a crash has no metadata and is never listed.
 */
export class BucketStore {
  readonly root: string;
  readonly bucket: string;
  private lastMs = 0;
  private seq = 0;

  constructor(options: { root: string; bucket: string }) {
    this.root = options.root;
    this.bucket = options.bucket;
  }

  private dir(...parts: string[]): string {
    return path.join(this.root, this.bucket, ...parts);
  }

  private keyDir(key: string): string {
    return this.dir('objects', createHash('sha256').update(key).digest('hex'));
  }

  /** Lexically increasing ids (time, then a per-process sequence, then randomness): the newest sorts last. */
  private nextVersionId(): string {
    const now = Date.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else this.seq++;
    return `${this.lastMs.toString(36).padStart(9, '0')}${this.seq.toString(36).padStart(4, '0')}${randomBytes(8).toString('hex')}`;
  }

  /** Stream `body` into a temporary file of this bucket, hashing it on the way. */
  async stage(body: Readable): Promise<StagedBody> {
    const dir = this.dir('.staging');
    await mkdir(dir, { recursive: true });
    const file = path.join(dir, randomBytes(12).toString('hex'));
    const md5 = createHash('md5');
    const sha256 = createHash('sha256');
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        md5.update(chunk);
        sha256.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    try {
      await pipeline(body, tap, createWriteStream(file, { mode: 0o600 }));
    } catch (error) {
      await rm(file, { force: true });
      throw error;
    }
    return { file, size, md5: md5.digest(), sha256: sha256.digest() };
  }

  /** Drop a staged body that was refused. */
  async discard(staged: StagedBody): Promise<void> {
    await rm(staged.file, { force: true });
  }

  /** Make a staged body the newest version of `key`. */
  async commit(key: string, staged: StagedBody, options: { contentType: string; etag?: string }): Promise<ObjectVersion> {
    const dir = this.keyDir(key);
    await mkdir(dir, { recursive: true });
    if (!(await readJsonIfExists(path.join(dir, 'key.json')))) await writeJsonAtomic(path.join(dir, 'key.json'), { key });
    const versionId = this.nextVersionId();
    const version: ObjectVersion = {
      key,
      versionId,
      deleteMarker: false,
      size: staged.size,
      etag: options.etag ?? `"${staged.md5.toString('hex')}"`,
      sha256Hex: staged.sha256.toString('hex'),
      lastModified: new Date().toISOString(),
      contentType: options.contentType,
      sequencer: versionId.slice(0, 13).toUpperCase(),
    };
    await rename(staged.file, path.join(dir, `${versionId}.data`));
    await writeJsonAtomic(path.join(dir, `${versionId}.json`), version);
    return version;
  }

  private async versionsOf(dir: string): Promise<ObjectVersion[]> {
    const names = await readdir(dir).catch(() => [] as string[]);
    const versions: ObjectVersion[] = [];
    for (const name of names) {
      if (!name.endsWith('.json') || name === 'key.json') continue;
      const version = await readJsonIfExists<ObjectVersion>(path.join(dir, name));
      if (version) versions.push(version);
    }
    // Newest first, as ListObjectVersions returns them.
    return versions.sort((a, b) => (a.versionId < b.versionId ? 1 : a.versionId > b.versionId ? -1 : 0));
  }

  /** A version of `key` (the newest when `versionId` is absent), or undefined. A delete marker is returned as such. */
  async get(key: string, versionId?: string): Promise<ObjectVersion | undefined> {
    const dir = this.keyDir(key);
    if (versionId !== undefined) {
      if (!VERSION_ID.test(versionId)) return undefined;
      return readJsonIfExists<ObjectVersion>(path.join(dir, `${versionId}.json`));
    }
    return (await this.versionsOf(dir))[0];
  }

  /** The bytes of a version that is not a delete marker. */
  read(version: ObjectVersion, range?: { start: number; end: number }): Readable {
    return createReadStream(path.join(this.keyDir(version.key), `${version.versionId}.data`), range ?? {});
  }

  /** The file holding a version's bytes (read by the local backend, which needs no HTTP in between). */
  dataFile(version: ObjectVersion): string {
    return path.join(this.keyDir(version.key), `${version.versionId}.data`);
  }

  /** Every version of every key under `prefix`, keys in UTF-8 byte order, each key's versions newest first. */
  async listVersions(prefix: string): Promise<Array<ObjectVersion & { isLatest: boolean }>> {
    const names = await readdir(this.dir('objects')).catch(() => [] as string[]);
    const keys: Array<{ key: string; dir: string }> = [];
    for (const name of names) {
      const dir = this.dir('objects', name);
      const entry = await readJsonIfExists<{ key: string }>(path.join(dir, 'key.json'));
      if (entry?.key.startsWith(prefix)) keys.push({ key: entry.key, dir });
    }
    keys.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    const out: Array<ObjectVersion & { isLatest: boolean }> = [];
    for (const { dir } of keys) {
      const versions = await this.versionsOf(dir);
      versions.forEach((v, i) => {
        out.push({ ...v, isLatest: i === 0 });
      });
    }
    return out;
  }

  /** The newest version of every key under `prefix` that is not deleted. */
  async listLatest(prefix: string): Promise<ObjectVersion[]> {
    return (await this.listVersions(prefix)).filter((v) => v.isLatest && !v.deleteMarker).map(({ isLatest: _, ...v }) => v);
  }

  /**
   * DeleteObject: without a version id a delete marker becomes the newest version; with
   * one, that version is removed for good (its metadata first, so it is never half there).
   */
  async delete(key: string, versionId?: string): Promise<{ versionId: string | null; deleteMarker: boolean }> {
    const dir = this.keyDir(key);
    if (versionId !== undefined) {
      const version = await this.get(key, versionId);
      if (!version) return { versionId, deleteMarker: false };
      await rm(path.join(dir, `${versionId}.json`), { force: true });
      await rm(path.join(dir, `${versionId}.data`), { force: true });
      return { versionId, deleteMarker: version.deleteMarker };
    }
    await mkdir(dir, { recursive: true });
    if (!(await readJsonIfExists(path.join(dir, 'key.json')))) await writeJsonAtomic(path.join(dir, 'key.json'), { key });
    const id = this.nextVersionId();
    const marker: ObjectVersion = {
      key,
      versionId: id,
      deleteMarker: true,
      size: 0,
      etag: '',
      sha256Hex: '',
      lastModified: new Date().toISOString(),
      contentType: '',
      sequencer: id.slice(0, 13).toUpperCase(),
    };
    await writeJsonAtomic(path.join(dir, `${id}.json`), marker);
    return { versionId: id, deleteMarker: true };
  }

  // ------------------------------------------------------------------ multipart uploads

  private uploadDir(uploadId: string): string {
    if (!UPLOAD_ID.test(uploadId)) throw new Error('bad upload id');
    return this.dir('.uploads', uploadId);
  }

  async createUpload(key: string, contentType: string): Promise<string> {
    const uploadId = randomBytes(16).toString('hex');
    await writeJsonAtomic(path.join(this.uploadDir(uploadId), 'upload.json'), { key, contentType });
    return uploadId;
  }

  async upload(uploadId: string): Promise<{ key: string; contentType: string } | undefined> {
    if (!UPLOAD_ID.test(uploadId)) return undefined;
    return readJsonIfExists(path.join(this.uploadDir(uploadId), 'upload.json'));
  }

  /** Keep a staged body as part `partNumber` of an upload (a part sent again replaces the first). */
  async putPart(uploadId: string, partNumber: number, staged: StagedBody): Promise<string> {
    const dir = this.uploadDir(uploadId);
    const etag = `"${staged.md5.toString('hex')}"`;
    await rename(staged.file, path.join(dir, `${partNumber}.data`));
    await writeJsonAtomic(path.join(dir, `${partNumber}.json`), { etag, size: staged.size });
    return etag;
  }

  /**
   * CompleteMultipartUpload: the parts named, in order and with the ETags the client got,
   * concatenated into a staged body and committed as one version.
   */
  async completeUpload(uploadId: string, parts: Array<{ partNumber: number; etag: string }>): Promise<ObjectVersion> {
    const dir = this.uploadDir(uploadId);
    const upload = await this.upload(uploadId);
    if (!upload) throw Object.assign(new Error('no such upload'), { code: 'NoSuchUpload' });
    const md5s: Buffer[] = [];
    const files: string[] = [];
    let previous = 0;
    for (const part of parts) {
      const stored = await readJsonIfExists<{ etag: string }>(path.join(dir, `${part.partNumber}.json`));
      const quoted = part.etag.startsWith('"') ? part.etag : `"${part.etag}"`;
      if (!stored || stored.etag !== quoted)
        throw Object.assign(new Error(`part ${part.partNumber} was not uploaded`), { code: 'InvalidPart' });
      if (part.partNumber <= previous) throw Object.assign(new Error('parts are not in ascending order'), { code: 'InvalidPartOrder' });
      previous = part.partNumber;
      md5s.push(Buffer.from(stored.etag.slice(1, -1), 'hex'));
      files.push(path.join(dir, `${part.partNumber}.data`));
    }
    if (files.length === 0) throw Object.assign(new Error('no parts'), { code: 'MalformedXML' });
    async function* concatenated(): AsyncGenerator<Buffer> {
      for (const file of files) yield* createReadStream(file);
    }
    const staged = await this.stage(Readable.from(concatenated()));
    const etag = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${files.length}"`;
    const version = await this.commit(upload.key, staged, { contentType: upload.contentType, etag });
    await rm(dir, { recursive: true, force: true });
    return version;
  }

  async abortUpload(uploadId: string): Promise<void> {
    await rm(this.uploadDir(uploadId), { recursive: true, force: true });
  }

  /** The bytes of a small object, whole (tests, bake sources). */
  async readAll(version: ObjectVersion): Promise<Buffer> {
    return readFile(this.dataFile(version));
  }
}
