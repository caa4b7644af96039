import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { BakeSpecError } from '../errors.ts';
import type { SourceReader } from '../ports/sources.ts';
import type { SourceCatalog, SourceObject } from '../ports/triggers.ts';
import type { BucketStore } from '../s3local/store.ts';
import type { BakeSource } from '../state.ts';
import { extractBundle } from '../zip/bundle.ts';

/**
 * Bake sources of `bakery serve`: an `s3` source in the local bucket is read straight
 * from the bucket's files (the same object version the event named) and extracted with
 * the same untrusted-bundle checks as the AWS S3SourceReader; anything else goes to the
 * local backend's own reader (a spec file).
 */
export class BucketSourceReader implements SourceReader {
  private readonly store: BucketStore;
  private readonly workDir: string;
  private readonly fallback: SourceReader;
  private previous: string | undefined;

  constructor(options: { store: BucketStore; workDir: string; fallback: SourceReader }) {
    this.store = options.store;
    this.workDir = options.workDir;
    this.fallback = options.fallback;
  }

  async open(source: BakeSource): Promise<{ specFile: string; where: string }> {
    if (source.type !== 's3') return this.fallback.open(source);
    const where = `s3://${source.bucket}/${source.key}`;
    const named = source.versionId === null ? where : `${where} (version ${source.versionId})`;
    if (source.bucket !== this.store.bucket) {
      throw new BakeSpecError(`bake bundle ${named} is not in the local source bucket ${this.store.bucket}`);
    }
    const version = await this.store.get(source.key, source.versionId ?? undefined);
    if (!version || version.deleteMarker) throw new BakeSpecError(`bake bundle ${named} does not exist`);
    // As in AWS, one extracted source at a time: the previous one goes when the next is opened.
    if (this.previous) await rm(this.previous, { recursive: true, force: true });
    await mkdir(this.workDir, { recursive: true });
    const dir = await mkdtemp(path.join(this.workDir, 'source-'));
    this.previous = dir;
    const bundle = path.join(dir, 'bundle.zip');
    await copyFile(this.store.dataFile(version), bundle);
    try {
      return { specFile: await extractBundle(bundle, path.join(dir, 'bundle'), named), where };
    } finally {
      await rm(bundle, { force: true });
    }
  }
}

/** The current version of every `.zip` under a prefix of the local bucket (ListObjectVersions' latest, as in AWS). */
export class BucketSourceCatalog implements SourceCatalog {
  private readonly store: BucketStore;

  constructor(store: BucketStore) {
    this.store = store;
  }

  async latest(bucket: string, prefix: string): Promise<SourceObject[]> {
    if (bucket !== this.store.bucket) return [];
    return (await this.store.listLatest(prefix))
      .filter((v) => v.key.toLowerCase().endsWith('.zip'))
      .map((v) => ({ bucket, key: v.key, versionId: v.versionId }));
  }
}
