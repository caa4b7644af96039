/**
 * Scratch directories that test fakes make in the OS tmpdir, removed after each test by
 * test/setup.ts so that no run leaves files behind (a fake's file lives as long as the
 * test that asked for it).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const made = new Set<string>();

/** A fresh directory in the OS tmpdir, removed after the current test. */
export async function scratchDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  made.add(dir);
  return dir;
}

/** Remove every scratch directory made so far. */
export async function removeScratch(): Promise<void> {
  const dirs = [...made];
  made.clear();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
}
