import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { LayerPackagingError } from '../errors.ts';

/**
 * Byte-reproducible zips. yazl does the format; what makes the bytes reproducible is
 * decided here: entries sorted by path, one fixed timestamp, normalised modes, no
 * extra fields (no owner ids, no "UT" timestamp that would carry the time zone).
 */

// DOS timestamps are stored in *local* time; building the date from local fields
// gives the same stored bytes (1980-01-01 00:00:00) in every time zone.
const FIXED_MTIME = new Date(1980, 0, 1, 0, 0, 0);
const FILE_MODE = 0o100644;
const EXEC_MODE = 0o100755;
const DIR_MODE = 0o040755;

export interface ZipEntry {
  /** Path inside the archive, '/'-separated. */
  name: string;
  /** Absolute path on disk. */
  source: string;
  kind: 'file' | 'dir';
  executable: boolean;
  size: number;
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

/** Walk `root` and return its entries in archive order. Symlinks are rejected: they could point out of the tree. */
export async function listTree(root: string): Promise<ZipEntry[]> {
  const entries: ZipEntry[] = [];
  async function walk(dir: string, prefix: string): Promise<void> {
    const names = (await readdir(dir)).sort();
    if (names.length === 0 && prefix !== '') {
      entries.push({ name: `${prefix}/`, source: dir, kind: 'dir', executable: false, size: 0 });
    }
    for (const name of names) {
      const abs = path.join(dir, name);
      const rel = prefix ? `${prefix}/${name}` : name;
      const info = await lstat(abs);
      if (info.isSymbolicLink()) {
        throw new LayerPackagingError(`symlink in the artefact tree: ${rel}`, {
          hint: 'Copy the file it points to instead; links are never followed out of the tree.',
        });
      }
      if (info.isDirectory()) await walk(abs, rel);
      else if (info.isFile()) {
        entries.push({ name: rel, source: abs, kind: 'file', executable: (info.mode & 0o111) !== 0, size: info.size });
      } else {
        throw new LayerPackagingError(`not a regular file or directory: ${rel}`);
      }
    }
  }
  await walk(root, '');
  // Sort on the full archive path (code-unit order), independent of locale and of
  // the order the file system returns names in.
  return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Zip `root` into `outFile` deterministically; the file appears only when complete. */
export async function zipTree(root: string, outFile: string): Promise<ZipResult> {
  const entries = await listTree(root);
  const zip = new yazl.ZipFile();
  let unzippedSize = 0;
  for (const entry of entries) {
    if (entry.kind === 'dir') {
      zip.addEmptyDirectory(entry.name, { mtime: FIXED_MTIME, mode: DIR_MODE, forceDosTimestamp: true });
    } else {
      unzippedSize += entry.size;
      zip.addFile(entry.source, entry.name, {
        mtime: FIXED_MTIME,
        mode: entry.executable ? EXEC_MODE : FILE_MODE,
        compress: true,
        compressionLevel: 6,
        forceDosTimestamp: true,
      });
    }
  }
  zip.end();
  await mkdir(path.dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.partial`;
  const hash = createHash('sha256');
  let size = 0;
  zip.outputStream.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    size += chunk.length;
  });
  try {
    await pipeline(zip.outputStream, createWriteStream(temp));
    await rename(temp, outFile);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const digest = hash.digest();
  return {
    file: outFile,
    sha256Hex: digest.toString('hex'),
    sha256Base64: digest.toString('base64'),
    size,
    unzippedSize,
    entries: entries.length,
  };
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
