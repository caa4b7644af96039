import { BakeryError } from '../errors.ts';
import type { ImageInventory } from '../ports/image-build.ts';
import type { FunctionRegistry, FunctionVersionInfo, LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore, Ledger, LedgerEntry } from '../ports/storage.ts';
import { type ImagePruneItem, pruneImages } from './prune-images.ts';
import { manifestKey, type PinManifest } from './record.ts';

/** How many of the newest manifests keep what they pin when `--keep` is not given. */
export const DEFAULT_KEEP = 3;

/** One version prune looked at. */
export interface PruneItem {
  kind: 'function' | 'layer';
  name: string;
  version: number;
  /** The layer version's ARN; null for a function version. */
  arn: string | null;
  /** Why it stays; empty when it goes. */
  keptBecause: string[];
  /** `would delete` in a dry run; `deleted` or `failed` with `--apply`. */
  result: 'kept' | 'would delete' | 'deleted' | 'failed';
  error: string | null;
}

export interface PruneResult {
  keep: number;
  applied: boolean;
  /** The bakes whose manifests keep what they pin (the newest `keep`), oldest first. */
  keptManifests: string[];
  items: PruneItem[];
  /** Image builds (their AMIs and snapshots) and per-key recipe versions; empty where the backend has none. */
  images: ImagePruneItem[];
}

export interface PruneDeps {
  ledger: Ledger;
  artefacts: ArtefactStore;
  layers: LayerRegistry;
  functions: FunctionRegistry;
  /** The image builds and recipe versions of the backend (AWS); none locally. */
  images?: ImageInventory;
}

/** What one bake pinned: function versions and runtime layer versions. */
interface Pins {
  functions: Array<{ name: string; version: number }>;
  layers: Array<{ name: string; version: number }>;
}

const LAYER_ARN = /:layer:([A-Za-z0-9_-]+):(\d+)$/;

function parseLayer(arn: string): { name: string; version: number } | undefined {
  const match = LAYER_ARN.exec(arn);
  return match ? { name: match[1] as string, version: Number(match[2]) } : undefined;
}

const numbered = (version: string): number | undefined => (/^\d+$/.test(version) ? Number(version) : undefined);

function pinsOfManifest(manifest: PinManifest): Pins {
  const layerArns = new Set([
    ...(manifest.layer ? [manifest.layer.arn] : []),
    ...manifest.functions.flatMap((f) => (f as { layers?: string[] }).layers ?? []),
  ]);
  return {
    functions: manifest.functions.flatMap((f) => {
      const version = numbered(f.version);
      return version === undefined ? [] : [{ name: f.name, version }];
    }),
    layers: [...layerArns].flatMap((arn) => parseLayer(arn) ?? []),
  };
}

/** What a released ledger entry says, for a bake whose manifest cannot be read. */
function pinsOfEntry(entry: Extract<LedgerEntry, { type: 'released' }>): Pins {
  return {
    functions: entry.functions.flatMap((m) => {
      const version = numbered(m.to);
      return version === undefined ? [] : [{ name: m.name, version }];
    }),
    layers: [parseLayer(entry.layer.arn) ?? []].flat(),
  };
}

const key = (name: string, version: number) => `${name}\0${version}`;

/**
 * `bakery prune`: the layer and function versions that no alias points at and none of
 * the newest `keep` manifests pins, of the functions and runtime layers the ledger knows.
 * A dry run unless `apply`. What is kept, and why:
 * - a version an alias points at (or routes a weight to), and `$LATEST` (never listed);
 * - a version a manifest among the newest `keep` pins;
 * - a version newer than every one any bake recorded: it may belong to a bake still in
 *   progress (published, waiting for validation or approval, not yet recorded);
 * - a layer version a remaining function version uses.
 * Function versions are deleted first; a layer version whose user could not be deleted stays.
 */
export async function prune(input: { keep: number; apply: boolean }, deps: PruneDeps): Promise<PruneResult> {
  const { keep, apply } = input;
  if (!Number.isInteger(keep) || keep < 0) throw new BakeryError(`keep must be a whole number of manifests, not ${keep}`);
  const entries = await deps.ledger.list();

  // The bakes with a manifest, newest last, one per bake id.
  const bakes = new Map<string, LedgerEntry>();
  for (const entry of entries) {
    if (entry.bakeId && 'manifest' in entry && entry.manifest) {
      bakes.delete(entry.bakeId);
      bakes.set(entry.bakeId, entry);
    }
  }
  const all: Pins[] = [];
  const recent: Pins[] = [];
  const pinnedBy = new Map<string, string[]>();
  const bakeIds = [...bakes.keys()];
  const keptManifests = keep === 0 ? [] : bakeIds.slice(-keep);
  for (const [bakeId, entry] of bakes) {
    const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
    const isRecent = keptManifests.includes(bakeId);
    let pins: Pins;
    if (manifest) pins = pinsOfManifest(manifest);
    else if (entry.type === 'released') pins = pinsOfEntry(entry);
    else if (isRecent) {
      throw new BakeryError(`the manifest of bake ${bakeId}, one of the newest ${keep}, cannot be read; nothing was deleted`, {
        hint: 'Without it, prune cannot tell which versions it pins. `bakery verify` shows what is wrong with it.',
      });
    } else continue;
    all.push(pins);
    if (!isRecent) continue;
    recent.push(pins);
    for (const ref of [...pins.functions.map((f) => ['function', f] as const), ...pins.layers.map((l) => ['layer', l] as const)]) {
      const k = `${ref[0]}\0${key(ref[1].name, ref[1].version)}`;
      pinnedBy.set(k, [...(pinnedBy.get(k) ?? []), bakeId]);
    }
  }
  // Rollbacks move aliases between released versions: their functions and versions are known too.
  const rollbacks = entries.flatMap((e) => {
    const r = e as { type: string; name?: string; from?: string; to?: string };
    return r.type === 'rolledBack' && r.name ? [{ name: r.name, versions: [r.from, r.to].flatMap((v) => numbered(v ?? '') ?? []) }] : [];
  });

  const functionNames = new Set([...all.flatMap((p) => p.functions.map((f) => f.name)), ...rollbacks.map((r) => r.name)]);
  const layerNames = new Set(all.flatMap((p) => p.layers.map((l) => l.name)));
  const newestRecorded = new Map<string, number>();
  const record = (k: string, version: number) => newestRecorded.set(k, Math.max(newestRecorded.get(k) ?? 0, version));
  for (const pins of all) {
    for (const f of pins.functions) record(`function\0${f.name}`, f.version);
    for (const l of pins.layers) record(`layer\0${l.name}`, l.version);
  }
  for (const r of rollbacks) for (const v of r.versions) record(`function\0${r.name}`, v);

  const items: PruneItem[] = [];
  // Layer versions used by the function versions that stay: `$LATEST` and every kept one.
  const layerUsers = new Map<string, string[]>();
  const used = (fn: FunctionVersionInfo) => {
    for (const arn of fn.layers) {
      const layer = parseLayer(arn);
      if (!layer || !layerNames.has(layer.name)) continue;
      const k = key(layer.name, layer.version);
      layerUsers.set(k, [...(layerUsers.get(k) ?? []), `${fn.name}:${fn.version}`]);
    }
  };
  const versionsOf = new Map<string, FunctionVersionInfo[]>();
  for (const name of [...functionNames].sort()) {
    const versions = await deps.functions.listVersions(name);
    versionsOf.set(name, versions);
    const aliases = await deps.functions.listAliases(name);
    for (const alias of aliases) {
      for (const v of [alias.version, ...Object.keys(alias.weights ?? {})]) {
        const n = numbered(v);
        if (n !== undefined) record(`function\0${name}`, n);
      }
    }
    const newest = newestRecorded.get(`function\0${name}`) ?? 0;
    for (const fn of versions) {
      const version = numbered(fn.version);
      if (version === undefined) {
        used(fn);
        continue;
      }
      const keptBecause = [
        ...aliases.filter((a) => a.version === fn.version || Object.hasOwn(a.weights ?? {}, fn.version)).map((a) => `alias ${a.alias}`),
        ...(pinnedBy.get(`function\0${key(name, version)}`) ?? []).map((b) => `pinned by ${b}`),
        ...(version > newest ? ['newer than every recorded bake (one may be in progress)'] : []),
      ];
      if (keptBecause.length) used(fn);
      items.push({
        kind: 'function',
        name,
        version,
        arn: null,
        keptBecause,
        result: keptBecause.length ? 'kept' : 'would delete',
        error: null,
      });
    }
  }

  if (apply) {
    for (const item of items) {
      if (item.result !== 'would delete') continue;
      try {
        await deps.functions.deleteVersion(item.name, String(item.version));
        item.result = 'deleted';
      } catch (error) {
        item.result = 'failed';
        item.error = error instanceof Error ? error.message : String(error);
        // It stays, so the layers it uses stay too.
        const fn = versionsOf.get(item.name)?.find((v) => v.version === String(item.version));
        if (fn) used(fn);
      }
    }
  }

  for (const name of [...layerNames].sort()) {
    const versions = await deps.layers.listVersions(name);
    const newest = newestRecorded.get(`layer\0${name}`) ?? 0;
    for (const layer of [...versions].sort((a, b) => a.version - b.version)) {
      const k = key(name, layer.version);
      const keptBecause = [
        ...(layerUsers.get(k) ?? []).map((u) => `used by ${u}`),
        ...(pinnedBy.get(`layer\0${k}`) ?? []).map((b) => `pinned by ${b}`),
        ...(layer.version > newest ? ['newer than every recorded bake (one may be in progress)'] : []),
      ];
      const item: PruneItem = {
        kind: 'layer',
        name,
        version: layer.version,
        arn: layer.arn,
        keptBecause,
        result: keptBecause.length ? 'kept' : 'would delete',
        error: null,
      };
      items.push(item);
      if (!apply || item.result !== 'would delete') continue;
      try {
        await deps.layers.deleteVersion(layer.arn);
        item.result = 'deleted';
      } catch (error) {
        item.result = 'failed';
        item.error = error instanceof Error ? error.message : String(error);
      }
    }
  }

  items.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) || a.version - b.version : a.kind === 'function' ? -1 : 1));
  const images = deps.images
    ? await pruneImages({ apply, keptManifests, entries }, { images: deps.images, artefacts: deps.artefacts })
    : [];
  return { keep, applied: apply, keptManifests, items, images };
}
