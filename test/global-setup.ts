/**
 * Runs once per `vitest run`, in vitest's main process: makes the run's directory for the
 * default packaging that the deploy test files share (test/helpers/package.ts,
 * `sharedDefaultPackage()`), and removes it when the run ends. It packages nothing itself:
 * a run without deploy tests pays nothing for it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

/** The key under which the workers `inject()` the shared directory. */
export const SHARED_PACKAGE_DIR = 'bakerySharedPackageDir';

declare module 'vitest' {
  interface ProvidedContext {
    [SHARED_PACKAGE_DIR]: string;
  }
}

/** The part of vitest's TestProject this setup uses. */
type Project = Pick<TestProject, 'provide' | 'onTestsRerun'>;

export default async function setup(project: Project): Promise<() => Promise<void>> {
  let dir = '';
  // The packaged service's files are symlinks to the repo: rm's recursion unlinks them, it never follows them.
  const remove = () => rm(dir, { recursive: true, force: true });
  const fresh = async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-shared-package-'));
    project.provide(SHARED_PACKAGE_DIR, dir);
  };
  await fresh();
  // In watch mode each rerun is a run of its own: it packages the files as they are now.
  project.onTestsRerun(async () => {
    await remove();
    await fresh();
  });
  return remove;
}
