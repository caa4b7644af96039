import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LayerIntegrityError } from '../errors.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore } from '../ports/storage.ts';
import type { BuiltImage, PublishedLayer, ResolvedBake } from '../state.ts';
import { zipTree } from '../zip/deterministic.ts';
import { checkLimits, extraLayerFacts, functionFacts, isCompatible, type LayerFacts, whereNamed } from './limits.ts';

export { MAX_LAYERS_PER_FUNCTION, MAX_UNZIPPED_BYTES } from './limits.ts';

/**
 * PublishLayer: zip the runtime tree reproducibly; check Lambda's limits for every
 * function (size with all its layers, layer count, runtime and architecture) before
 * anything is published; reuse the layer version whose CodeSha256 equals ours, else
 * publish and prove that what was stored is what we built.
 */
export async function publishLayer(
  input: { bake: ResolvedBake; image: BuiltImage },
  deps: { artefacts: ArtefactStore; layers: LayerRegistry },
): Promise<PublishedLayer> {
  const { bake, image } = input;
  const tree = await deps.artefacts.fetchTree(image.runtime);
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-layer-'));
  try {
    const zip = await zipTree(tree, path.join(work, 'layer.zip'));
    const name = bake.spec.layer.name;
    const target = { runtime: bake.recipe.runtime, architecture: bake.recipe.architecture };
    const runtime: LayerFacts = {
      label: `${name} (the runtime layer)`,
      unzippedSize: zip.unzippedSize,
      compatibleRuntimes: [target.runtime],
      architectures: [target.architecture],
    };
    const extras = await extraLayerFacts(bake, deps, { sizes: true });
    checkLimits(functionFacts(bake, runtime, extras.facts), target, whereNamed(bake, extras.missing));

    const existing = await deps.layers.findByCodeSha256(name, zip.sha256Base64);
    // Same bytes published for another runtime or architecture cannot be attached: publish ours.
    const details = existing ? await deps.layers.describe(existing.arn) : undefined;
    if (existing && details && isCompatible(details, target)) {
      return { ...existing, sha256Hex: zip.sha256Hex, unzippedSize: zip.unzippedSize, reused: true };
    }
    const published = await deps.layers.publish({
      name,
      description: bake.spec.layer.description ?? `${bake.recipe.name} runtime, bake key ${image.bakeKey.slice(0, 12)}`,
      zipFile: zip.file,
      sha256Base64: zip.sha256Base64,
      size: zip.size,
      compatibleRuntimes: [bake.recipe.runtime],
      architectures: [bake.recipe.architecture],
    });
    if (published.codeSha256 !== zip.sha256Base64) {
      throw new LayerIntegrityError(
        `${published.arn} stores CodeSha256 ${published.codeSha256}, but the built zip is ${zip.sha256Base64}`,
        { hint: 'The upload was altered or truncated; nothing was deployed. Rerun the bake.' },
      );
    }
    return { ...published, sha256Hex: zip.sha256Hex, unzippedSize: zip.unzippedSize, reused: false };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
