import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LayerIntegrityError, LayerPackagingError } from '../errors.ts';
import type { ArtefactStore, BuiltImage, LayerRegistry, PublishedLayer, ResolvedBake } from '../ports.ts';
import { zipTree } from '../zip/deterministic.ts';

/** Lambda's quota: function code plus all its layers, unzipped. */
export const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;

/**
 * PublishLayer: zip the runtime tree reproducibly; reuse the layer version whose
 * CodeSha256 equals ours, else publish and prove that what was stored is what we built.
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
    const largestCode = Math.max(0, ...bake.functions.map((f) => f.code.size));
    if (zip.unzippedSize + largestCode > MAX_UNZIPPED_BYTES) {
      throw new LayerPackagingError(`layer (${zip.unzippedSize} bytes unzipped) plus function code exceeds Lambda's 250 MB unzipped limit`);
    }
    const name = bake.spec.layer.name;
    const existing = await deps.layers.findByCodeSha256(name, zip.sha256Base64);
    if (existing) {
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
