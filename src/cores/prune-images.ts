import type { BuiltImageResource, ImageInventory } from '../ports/image-build.ts';
import type { ArtefactStore, LedgerEntry } from '../ports/storage.ts';
import { manifestKey, type PinManifest } from './record.ts';

/** One image build or recipe version prune looked at. */
export interface ImagePruneItem {
  kind: 'image' | 'image recipe';
  arn: string;
  bakeId: string | null;
  bakeKey: string | null;
  /** For an image: its AMIs and their snapshots (what deleting it frees). */
  amis: BuiltImageResource['amis'];
  /** Why it stays; empty when it goes. */
  keptBecause: string[];
  result: 'kept' | 'would delete' | 'deleted' | 'failed';
  error: string | null;
}

export interface ImagePruneDeps {
  images: ImageInventory;
  artefacts: ArtefactStore;
}

/**
 * The image side of `bakery prune` (after the layer and function versions): the image
 * builds, their AMIs and snapshots, and the per-key recipe versions that nothing kept
 * uses. With the same safety rules as layer versions, an image stays when:
 * - a manifest prune keeps (`keptManifests`) names it;
 * - its bake is not in the ledger: the bake may be waiting (approval) or interrupted;
 * - it is the cached build of its key and a bake that took it from the cache is not in
 *   the ledger yet;
 * - one of its AMIs does not carry bakery's tags (bakery may not delete it).
 * A recipe version stays while an image of it stays, or a kept manifest's key is its key.
 * Images go first; a recipe whose image could not be deleted stays.
 */
export async function pruneImages(
  input: { apply: boolean; keptManifests: string[]; entries: LedgerEntry[] },
  deps: ImagePruneDeps,
): Promise<ImagePruneItem[]> {
  const recorded = new Set(input.entries.flatMap((e) => (e.bakeId ? [e.bakeId] : [])));
  const keptImages = new Map<string, string[]>();
  const keptKeys = new Map<string, string[]>();
  const add = (map: Map<string, string[]>, k: string | null, bakeId: string) => {
    if (k) map.set(k, [...(map.get(k) ?? []), bakeId]);
  };
  for (const bakeId of input.keptManifests) {
    const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
    add(keptImages, manifest?.imageArn ?? null, bakeId);
    add(keptKeys, manifest?.bakeKey ?? null, bakeId);
  }

  const items: ImagePruneItem[] = [];
  const images = await deps.images.images();
  const users = new Map<string, Awaited<ReturnType<ImageInventory['cacheUsers']>>>();
  for (const image of images) {
    const keptBecause = (keptImages.get(image.arn) ?? []).map((b) => `named by the manifest of ${b}`);
    if (image.bakeId && !recorded.has(image.bakeId))
      keptBecause.push(`bake ${image.bakeId} is not recorded (it may be waiting or interrupted)`);
    if (image.bakeKey) {
      if (!users.has(image.bakeKey)) users.set(image.bakeKey, await deps.images.cacheUsers(image.bakeKey));
      const cache = users.get(image.bakeKey);
      if (cache?.imageArn === image.arn) {
        for (const b of cache.bakeIds.filter((id) => !recorded.has(id))) {
          keptBecause.push(`bake ${b} took it from the build cache and is not recorded (it may be waiting or interrupted)`);
        }
      }
    }
    const untagged = image.amis.filter((a) => !a.tagged).map((a) => a.id);
    if (untagged.length) keptBecause.push(`AMI ${untagged.join(', ')} does not carry bakery's tags`);
    items.push({
      kind: 'image',
      arn: image.arn,
      bakeId: image.bakeId,
      bakeKey: image.bakeKey,
      amis: image.amis,
      keptBecause,
      result: keptBecause.length ? 'kept' : 'would delete',
      error: null,
    });
  }
  if (input.apply) {
    for (const item of items) {
      if (item.result !== 'would delete') continue;
      const image = images.find((i) => i.arn === item.arn) as BuiltImageResource;
      try {
        await deps.images.deleteImage(image);
        item.result = 'deleted';
      } catch (error) {
        item.result = 'failed';
        item.error = error instanceof Error ? error.message : String(error);
      }
    }
  }

  const staying = items.filter((i) => i.result === 'kept' || i.result === 'failed');
  for (const recipe of await deps.images.recipes()) {
    const of = images.filter((i) => i.recipeArn === recipe.arn);
    const keptBecause = [
      ...of.filter((i) => staying.some((s) => s.arn === i.arn)).map((i) => `image ${i.arn} stays`),
      ...(recipe.bakeKey ? (keptKeys.get(recipe.bakeKey) ?? []) : []).map((b) => `its bake key is pinned by ${b}`),
    ];
    const item: ImagePruneItem = {
      kind: 'image recipe',
      arn: recipe.arn,
      bakeId: null,
      bakeKey: recipe.bakeKey,
      amis: [],
      keptBecause,
      result: keptBecause.length ? 'kept' : 'would delete',
      error: null,
    };
    items.push(item);
    if (!input.apply || item.result !== 'would delete') continue;
    try {
      await deps.images.deleteRecipe(recipe.arn);
      item.result = 'deleted';
    } catch (error) {
      item.result = 'failed';
      item.error = error instanceof Error ? error.message : String(error);
    }
  }
  return items;
}
