import { createWriteStream } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { LayerPackagingError } from '../errors.ts';
import { listTree } from './tree.ts';
import { writeZip } from './writer.ts';

/**
 * Byte-reproducible zips: entries sorted by path (./tree.ts `listTree`), one fixed DOS timestamp written as
 * constant words (so no time zone applies), modes normalised to 644/755 (the exec bit
 * is kept), no extra fields (no owner ids, no "UT" timestamp). Large files are deflated
 * in parallel blocks (./deflate.ts) into a hand-written container (./format.ts,
 * ./writer.ts); the bytes never depend on how many blocks ran at once.
 */

export interface ZipTreeOptions {
  /** Blocks deflated at once (default: ./writer.ts `defaultConcurrency`). Never changes the bytes. */
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
