import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { LayerPackagingError } from '../errors.ts';
import { writeZip } from './writer.ts';

/**
 * Byte-reproducible zips: entries sorted by path, one fixed DOS timestamp written as
 * constant words (so no time zone applies), modes normalised to 644/755 (the exec bit
 * is kept), no extra fields (no owner ids, no "UT" timestamp). Large files are deflated
 * in parallel blocks (./deflate.ts) into a hand-written container (./format.ts,
 * ./writer.ts); the bytes never depend on how many blocks ran at once.
 */

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  /** Absolute path on disk. */
  source: string;
  kind: 'file' | 'dir';
  executable: boolean;
  size: number;
}

export interface ZipTreeOptions {
  /** Blocks deflated at once (default: the number of CPUs, at least 2). Never changes the bytes. */
  concurrency?: number;
}

export interface ZipResult {
  file: string;
  sha256Hex: string;
  /** Base64 SHA-256: the form Lambda reports as `CodeSha256`. */
  sha256Base64: string;
  size: number;
  unzippedSize: number;
  entries: number;
}

/** File-system calls in flight at once while listing: enough to hide their latency, few enough to stay light. */
const LIST_CONCURRENCY = 32;

/**
 * Walk `root` and return its entries in archive order. Symlinks are rejected: they could
 * point out of the tree. Directories are read concurrently; when several entries are
 * unacceptable, the one reported is the first in archive order, whatever finished first.
 */
export async function listTree(root: string): Promise<ZipEntry[]> {
  const entries: ZipEntry[] = [];
  const problems: Array<{ name: string; error: LayerPackagingError }> = [];
  const io = limiter(LIST_CONCURRENCY);
  async function walk(dir: string, prefix: string): Promise<void> {
    const names = await io(() => readdir(dir));
    if (names.length === 0 && prefix !== '') {
      entries.push({ name: `${prefix}/`, source: dir, kind: 'dir', executable: false, size: 0 });
    }
    const walks = names.map(async (name) => {
      const abs = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const info = await io(() => lstat(abs));
      if (info.isSymbolicLink()) {
        const error = new LayerPackagingError(`symlink in the artefact tree: ${rel}`, {
          hint: 'Copy the file it points to instead; links are never followed out of the tree.',
        });
        problems.push({ name: rel, error });
      } else if (info.isDirectory()) {
        await walk(abs, rel);
      } else if (info.isFile()) {
        entries.push({ name: rel, source: abs, kind: 'file', executable: (info.mode & 0o111) !== 0, size: info.size });
      } else {
        problems.push({ name: rel, error: new LayerPackagingError(`not a regular file or directory: ${rel}`) });
      }
    });
    // Settle every walk before failing, so none is left running (or rejecting) unobserved.
    const failed = (await Promise.allSettled(walks)).find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  }
  await walk(root, '');
  const first = problems.sort((a, b) => byName(a.name, b.name))[0];
  if (first) throw first.error;
  // Sort on the full archive path (code-unit order), independent of locale and of
  // the order the file system returns names in.
  return entries.sort((a, b) => byName(a.name, b.name));
}

function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Run at most `slots` of the given calls at once. */
function limiter(slots: number): <T>(call: () => Promise<T>) => Promise<T> {
  let free = slots;
  const waiting: Array<() => void> = [];
  return async (call) => {
    if (free > 0) free--;
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await call();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else free++;
    }
  };
}

/** Zip `root` into `outFile` deterministically; the file appears only when complete. */
export async function zipTree(root: string, outFile: string, options: ZipTreeOptions = {}): Promise<ZipResult> {
  const entries = await listTree(root);
  return writeZip(entries, outFile, options.concurrency === undefined ? {} : { concurrency: options.concurrency });
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true }, (error, zip) => {
      if (error) reject(error);
      else resolve(zip);
    });
  });
}

/** Extract `zipFile` into `dest`, keeping the exec bit. yauzl rejects absolute and `..` paths. */
export async function unzipTo(zipFile: string, dest: string): Promise<void> {
  const zip = await openZip(zipFile);
  await mkdir(dest, { recursive: true });
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', () => resolve());
    zip.on('entry', (entry: yauzl.Entry) => {
      const target = path.join(dest, entry.fileName);
      const mode = (entry.externalFileAttributes >>> 16) & 0o177777;
      if ((mode & 0o170000) === 0o120000) {
        zip.close();
        reject(new LayerPackagingError(`symlink entry in ${zipFile}: ${entry.fileName}`));
        return;
      }
      if (entry.fileName.endsWith('/')) {
        mkdir(target, { recursive: true }).then(() => zip.readEntry(), reject);
        return;
      }
      zip.openReadStream(entry, (error, stream) => {
        if (error) {
          reject(error);
          return;
        }
        mkdir(path.dirname(target), { recursive: true })
          .then(() => pipeline(stream, createWriteStream(target, { mode: 0o644 })))
          .then(() => chmod(target, mode & 0o111 ? 0o755 : 0o644))
          .then(() => zip.readEntry(), reject);
      });
    });
    zip.readEntry();
  });
}
