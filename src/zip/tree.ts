import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { LayerPackagingError } from '../errors.ts';
import { sha256File, sha256Hex } from '../util/fsx.ts';

/**
 * A tree as a zip of it would hold it: its entries in archive order (what ./deterministic.ts
 * zips) and its identity without zipping it. Nothing here loads a zip library, so deciding
 * whether a bake is up to date (src/cores/patch.ts) and keying a recipe do not either.
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

/** Files hashed at once: enough to overlap reads with hashing, few enough to stay light. */
const HASH_CONCURRENCY = 8;

/**
 * SHA-256 over a tree's paths, kinds, exec bits and contents: the identity of a tree,
 * computed without zipping it. Symlinks and special files are rejected as `listTree` does.
 */
export async function treeSha256(root: string): Promise<{ hex: string; size: number; files: number }> {
  const entries = await listTree(root);
  const lines: string[] = new Array(entries.length);
  let size = 0;
  let files = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i];
      if (entry === undefined) continue;
      if (entry.kind === 'dir') {
        lines[i] = `${entry.name}\0d`;
        continue;
      }
      size += entry.size;
      files++;
      lines[i] = `${entry.name}\0${entry.executable ? 'x' : '-'}\0${(await sha256File(entry.source)).hex}`;
    }
  };
  await Promise.all(Array.from({ length: Math.min(HASH_CONCURRENCY, entries.length) }, worker));
  return { hex: sha256Hex(lines.join('\n')), size, files };
}
