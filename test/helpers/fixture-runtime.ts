import { createHash } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NODE22 } from './local-bake.ts';

/**
 * A stand-in for the 120 MB Node.js binary a node22 build copies, checks and zips: a
 * two-line script that runs the project's Node 22, so `node --version` still answers
 * the pinned version and the runtime loop still runs, while the layer stays a few KB.
 * For tests about the build document, the upload or the packaging, not about the real
 * binary (test/cli/e2e.test.ts and test/recipes/node22.test.ts keep the real one).
 * Returns the recipe parameters that point the build at it: NodeSource and its NodeSha256.
 */
export async function standInNodeBinary(dir: string): Promise<{ NodeSource: string; NodeSha256: string }> {
  const file = path.join(dir, 'node');
  await writeFile(file, `#!/bin/sh\nexec '${NODE22}' "$@"\n`);
  await chmod(file, 0o755);
  return {
    NodeSource: file,
    NodeSha256: createHash('sha256')
      .update(await readFile(file))
      .digest('hex'),
  };
}
