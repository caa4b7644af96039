import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LayerIntegrityError } from '../errors.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore } from '../ports/storage.ts';
import type { BuiltImage, PublishedLayer, ResolvedBake } from '../state.ts';
import { BLOCK_SIZE, LEVEL } from '../zip/deflate.ts';
import { zipTree } from '../zip/deterministic.ts';
import { checkLimits, extraLayerFacts, functionFacts, isCompatible, type LayerFacts, whereNamed } from './limits.ts';

export { MAX_LAYERS_PER_FUNCTION, MAX_UNZIPPED_BYTES } from './limits.ts';

/** What zipping a runtime tree gave, recorded by the tree's SHA-256 so an unchanged runtime is not zipped again. */
export interface LayerZipFacts {
  sha256Hex: string;
  sha256Base64: string;
  size: number;
  unzippedSize: number;
}

/**
 * Where the zip facts of a runtime are kept: by the runtime's SHA-256 (the build record's
 * tree hash locally, the runtime artefact's hash in AWS) and by what decides the zip's
 * bytes (the block size and level of src/zip/deflate.ts), so a change of format never
 * reuses facts of the old one. Under `layers/`, where PublishLayer may already read and write.
 */
export const layerZipKey = (runtimeSha256Hex: string): string => `layers/zip-facts/b${BLOCK_SIZE}-l${LEVEL}/${runtimeSha256Hex}.json`;

/**
 * PublishLayer: zip the runtime tree reproducibly; check Lambda's limits for every
 * function (size with all its layers, layer count, runtime and architecture) before
 * anything is published; reuse the layer version whose CodeSha256 equals ours, else
 * publish and prove that what was stored is what we built. A runtime zipped before (same
 * SHA-256) whose layer version still exists is reused without fetching or zipping the
 * tree again: a bake of changed code on an unchanged runtime makes no second layer zip.
 */
export async function publishLayer(
  input: { bake: ResolvedBake; image: BuiltImage },
  deps: { artefacts: ArtefactStore; layers: LayerRegistry },
): Promise<PublishedLayer> {
  const { bake, image } = input;
  const name = bake.spec.layer.name;
  const target = { runtime: bake.recipe.runtime, architecture: bake.recipe.architecture };
  const checkFor = async (unzippedSize: number): Promise<void> => {
    const runtime: LayerFacts = {
      label: `${name} (the runtime layer)`,
      unzippedSize,
      compatibleRuntimes: [target.runtime],
      architectures: [target.architecture],
    };
    const extras = await extraLayerFacts(bake, deps, { sizes: true });
    checkLimits(functionFacts(bake, runtime, extras.facts), target, whereNamed(bake, extras.missing));
  };
  /** The layer version with these bytes, when it can be attached to the bake's functions. */
  const reusable = async (sha256Base64: string) => {
    const existing = await deps.layers.findByCodeSha256(name, sha256Base64);
    // Same bytes published for another runtime or architecture cannot be attached: publish ours.
    const details = existing ? await deps.layers.describe(existing.arn) : undefined;
    return existing && details && isCompatible(details, target) ? existing : undefined;
  };

  const factsKey = layerZipKey(image.runtime.sha256Hex);
  // A cache: a record that cannot be read (S3 answers 403, not 404, for a missing key to a
  // role without s3:ListBucket) costs only a zip, so any failure to read it is a miss.
  const known = await deps.artefacts.getJson<LayerZipFacts>(factsKey).catch(() => undefined);
  if (known) {
    const existing = await reusable(known.sha256Base64);
    if (existing) {
      await checkFor(known.unzippedSize);
      return { ...existing, sha256Hex: known.sha256Hex, unzippedSize: known.unzippedSize, reused: true };
    }
  }

  const tree = await deps.artefacts.fetchTree(image.runtime);
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-layer-'));
  try {
    const zip = await zipTree(tree, path.join(work, 'layer.zip'));
    await checkFor(zip.unzippedSize);
    const facts: LayerZipFacts = {
      sha256Hex: zip.sha256Hex,
      sha256Base64: zip.sha256Base64,
      size: zip.size,
      unzippedSize: zip.unzippedSize,
    };
    const existing = await reusable(zip.sha256Base64);
    if (existing) {
      if (!known) await deps.artefacts.putJson(factsKey, facts);
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
    // Recorded once the layer is known good, so a later bake of this runtime finds it without zipping.
    await deps.artefacts.putJson(factsKey, facts);
    // A bake that lost a publish race to another with the same bytes gets the winner's version.
    const { reused = false, ...version } = published;
    return { ...version, sha256Hex: zip.sha256Hex, unzippedSize: zip.unzippedSize, reused };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
