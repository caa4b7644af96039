import { sha256File, sha256Hex } from '../util/fsx.ts';
import { listTree } from './deterministic.ts';

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
