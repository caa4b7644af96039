/**
 * Bakes recorded on a real local backend without the state machine: the real cores
 * (PublishLayer, PublishVersion, Release, RecordSuccess/RecordFailure) on the local
 * adapters in a temporary state directory, with a runtime tree and code the test
 * chooses. No build and no validation run, so a test can record several bakes quickly.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { createLocalDeps, type LocalDeps } from '../../src/compose/local.ts';
import { publishLayer } from '../../src/cores/layer.ts';
import { recordFailure, recordSuccess } from '../../src/cores/record.ts';
import { release } from '../../src/cores/release.ts';
import { publishVersions } from '../../src/cores/version.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import type { PublishedLayer, PublishedVersions, ReleaseResult, ResolvedBake } from '../../src/state.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { treeSha256 } from '../../src/zip/tree.ts';
import { builtImage, functionSpec, resolvedBake, resolvedFunction } from './fixtures.ts';

export interface LocalBackend {
  dir: string;
  home: LocalHome;
  deps: LocalDeps;
  cleanup(): Promise<void>;
}

export async function localBackend(): Promise<LocalBackend> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-pins-'));
  const home = new LocalHome(path.join(dir, 'home'));
  await home.ensure();
  return {
    dir,
    home,
    deps: createLocalDeps({ home, projectRoot: PROJECT_ROOT }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export interface RecordedBake {
  bake: ResolvedBake;
  layer: PublishedLayer;
  versions: PublishedVersions;
  release: ReleaseResult | null;
}

/**
 * Publish `runtime` as the layer and `code` as the function `hello` (and any `others`),
 * then release and record the bake, or record it as failed in Validate (`fail`):
 * published, never released.
 */
export async function recordBake(
  backend: LocalBackend,
  options: { bakeId: string; runtime: string; code: string; fail?: boolean; functions?: string[] },
): Promise<RecordedBake> {
  const names = options.functions ?? ['hello'];
  const work = path.join(backend.dir, 'work', options.bakeId);
  const tree = path.join(work, 'tree');
  await mkdir(tree, { recursive: true });
  await writeFile(path.join(tree, 'bootstrap'), `#!/bin/sh\n# ${options.runtime}\n`, { mode: 0o755 });
  const resolved = [];
  for (const name of names) {
    const codeDir = path.join(work, `code-${name}`);
    await mkdir(codeDir, { recursive: true });
    await writeFile(path.join(codeDir, 'index.mjs'), `export const handler = async () => ${JSON.stringify(`${name} ${options.code}`)};\n`);
    const zip = await zipTree(codeDir, path.join(work, `${name}.zip`));
    resolved.push(
      resolvedFunction(name, {
        code: {
          uri: pathToFileURL(zip.file).href,
          sha256Hex: zip.sha256Hex,
          size: zip.size,
          sha256Base64: zip.sha256Base64,
          unzippedSize: zip.unzippedSize,
        },
      }),
    );
  }
  const bake = resolvedBake({
    bakeId: options.bakeId,
    functions: names.map((n) => functionSpec(n, [{ name: 'says hello' }])),
    resolved,
  });
  const deps = backend.deps;
  // The tree's own identity, as a build reports it: PublishLayer reuses a layer zip by it.
  const built = builtImage(pathToFileURL(tree).href);
  const image = { ...built, runtime: { ...built.runtime, sha256Hex: (await treeSha256(tree)).hex } };
  const layer = await publishLayer({ bake, image }, deps);
  const versions = await publishVersions({ bake, layer }, deps);
  if (options.fail) {
    await recordFailure(
      { bake, image, layer, versions, errors: { Validate: { Error: 'ValidationFailedError', Cause: 'a case failed' } } },
      deps,
    );
    return { bake, layer, versions, release: null };
  }
  const moved = await release({ versions }, deps);
  await recordSuccess({ bake, image, layer, versions, release: moved }, deps);
  return { bake, layer, versions, release: moved };
}
