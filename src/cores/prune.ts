import { BakeryError } from '../errors.ts';
import type { ExecutionRefs, ExecutionsInFlight } from '../ports/executions.ts';
import type { ImageInventory } from '../ports/image-build.ts';
import type { FunctionRegistry, FunctionVersionInfo, LayerRegistry } from '../ports/lambda.ts';
import type { ArtefactStore, Ledger, LedgerEntry } from '../ports/storage.ts';
import { type ImagePruneItem, pruneImages } from './prune-images.ts';
import { manifestKey, type PinManifest } from './record.ts';
import { releasedVersions } from './rollback.ts';

/** How many of each function's newest releases keep what they pin when `--keep` is not given. */
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
  /** The bakes whose manifests keep what they pin (each function's newest `keep` releases), oldest first. */
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
  /** What executions that have not ended hold (the local journal); absent in AWS. */
  executions?: ExecutionRefs;
}

type VersionRef = { name: string; version: number };

/**
 * What one bake pinned: each function's version (undefined when not a numbered one) with
 * the layer versions it runs on (the runtime layer and its own), and every layer version.
 */
interface Pins {
  functions: Array<{ name: string; version: number | undefined; layers: VersionRef[] }>;
  layers: VersionRef[];
}

const LAYER_ARN = /:layer:([A-Za-z0-9_-]+):(\d+)$/;

function parseLayer(arn: string): VersionRef | undefined {
  const match = LAYER_ARN.exec(arn);
  return match ? { name: match[1] as string, version: Number(match[2]) } : undefined;
}

const numbered = (version: string): number | undefined => (/^\d+$/.test(version) ? Number(version) : undefined);

const parseLayers = (arns: string[]): VersionRef[] => arns.flatMap((arn) => parseLayer(arn) ?? []);

function pinsOfManifest(manifest: PinManifest): Pins {
  const runtime = manifest.layer ? [manifest.layer.arn] : [];
  const functions = manifest.functions.map((f) => ({
    name: f.name,
    version: numbered(f.version),
    layers: parseLayers([...runtime, ...((f as { layers?: string[] }).layers ?? [])]),
  }));
  const layerArns = new Set([...runtime, ...manifest.functions.flatMap((f) => (f as { layers?: string[] }).layers ?? [])]);
  return { functions, layers: parseLayers([...layerArns]) };
}

/** What a released ledger entry says, for a bake whose manifest cannot be read. */
function pinsOfEntry(entry: Extract<LedgerEntry, { type: 'released' }>): Pins {
  const layers = parseLayers([entry.layer.arn]);
  return { functions: entry.functions.map((m) => ({ name: m.name, version: numbered(m.to), layers })), layers };
}

const key = (name: string, version: number) => `${name}\0${version}`;

/** `fn` under the registry's publish lock where it has one (locally), else directly. */
const underPublishLock = <T>(
  registry: { withPublishLock?<U>(name: string, fn: () => Promise<U>): Promise<U> },
  name: string,
  fn: () => Promise<T>,
) => (registry.withPublishLock ? registry.withPublishLock(name, fn) : fn());

/** A version a bake took up after prune listed it: it stays, and says why. */
function keepAfterAll(item: PruneItem, held: string[]): void {
  item.keptBecause = held;
  item.result = 'kept';
}

/** Why an execution in flight keeps a version, if it does. */
function heldInFlight(flight: ExecutionsInFlight, kind: 'function' | 'layer', name: string, version: number, arn: string | null): string[] {
  const held =
    kind === 'function'
      ? flight.functions.filter((f) => f.name === name && f.version === String(version))
      : flight.layers.filter((l) => l.arn === arn);
  const publishing = flight.publishing.filter((p) => (kind === 'function' ? p.functions : p.layers).includes(name));
  return [
    ...held.map((h) => `in use by bake ${h.bakeId} (${h.status})`),
    ...publishing.map((p) => `bake ${p.bakeId} is in ${p.state} (${p.status}) and may reuse it`),
  ];
}

const NOTHING_IN_FLIGHT: ExecutionsInFlight = { layers: [], functions: [], publishing: [] };

/**
 * `bakery prune`: the layer and function versions that no alias points at and none of
 * the kept releases pins, of the functions and runtime layers the ledger knows. A dry run
 * unless `apply`. What is kept, and why:
 * - a version an alias points at (or routes a weight to), and `$LATEST` (never listed);
 * - for each function, what its newest `keep` releases pinned (its version, the runtime
 *   layer and its own layers): every version `bakery rollback` can reach among them.
 *   Failed bakes and other functions' releases do not count towards a function's `keep`;
 * - what an execution that has not ended (running, waiting, interrupted) published or
 *   reused, and every version of a layer or function such an execution is publishing now;
 * - a version newer than every one any bake recorded: it may belong to a bake still in
 *   progress (published, waiting for validation or approval, not yet recorded);
 * - a layer version a remaining function version uses.
 * Function versions are deleted first; a layer version whose user could not be deleted
 * stays. Each deletion re-checks the executions in flight under the lock that publishing
 * takes (locally), so a version a bake reuses after prune listed it is not deleted.
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
  // The window, per function and alias: the newest `keep` bakes that released it. Failed
  // bakes and other functions' releases do not use it up, so every version `bakery
  // rollback` can reach among a function's last `keep` releases stays.
  const windows = new Map<string, Set<string>>();
  const aliasesOf = new Map<string, Set<string>>();
  for (const entry of entries) {
    if (entry.type !== 'released') continue;
    for (const move of entry.functions) aliasesOf.set(move.name, (aliasesOf.get(move.name) ?? new Set()).add(move.alias));
  }
  for (const [name, aliases] of aliasesOf) {
    const window = new Set<string>();
    for (const alias of aliases) {
      const bakeIds = [...new Set(releasedVersions(entries, name, alias).map((r) => r.bakeId))];
      for (const bakeId of keep === 0 ? [] : bakeIds.slice(-keep)) window.add(bakeId);
    }
    windows.set(name, window);
  }
  const inWindow = (bakeId: string) => [...windows.values()].some((w) => w.has(bakeId));
  const all: Pins[] = [];
  const pinnedBy = new Map<string, string[]>();
  const pin = (k: string, bakeId: string) => {
    const by = pinnedBy.get(k) ?? [];
    if (!by.includes(bakeId)) pinnedBy.set(k, [...by, bakeId]);
  };
  const keptManifests = [...bakes.keys()].filter(inWindow);
  for (const [bakeId, entry] of bakes) {
    const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
    let pins: Pins;
    if (manifest) pins = pinsOfManifest(manifest);
    else if (entry.type === 'released') pins = pinsOfEntry(entry);
    else continue;
    all.push(pins);
    // What the bake pinned for each function whose window it is in: its version and the layers it runs on.
    for (const fn of pins.functions) {
      if (!windows.get(fn.name)?.has(bakeId)) continue;
      if (fn.version !== undefined) pin(`function\0${key(fn.name, fn.version)}`, bakeId);
      for (const layer of fn.layers) pin(`layer\0${key(layer.name, layer.version)}`, bakeId);
    }
  }
  // Rollbacks move aliases between released versions: their functions and versions are known too.
  const rollbacks = entries.flatMap((e) => {
    const r = e as { type: string; name?: string; from?: string; to?: string };
    return r.type === 'rolledBack' && r.name ? [{ name: r.name, versions: [r.from, r.to].flatMap((v) => numbered(v ?? '') ?? []) }] : [];
  });

  const functionNames = new Set([
    ...all.flatMap((p) => p.functions.flatMap((f) => (f.version === undefined ? [] : [f.name]))),
    ...rollbacks.map((r) => r.name),
  ]);
  const layerNames = new Set(all.flatMap((p) => p.layers.map((l) => l.name)));
  const newestRecorded = new Map<string, number>();
  const record = (k: string, version: number) => newestRecorded.set(k, Math.max(newestRecorded.get(k) ?? 0, version));
  for (const pins of all) {
    for (const f of pins.functions) if (f.version !== undefined) record(`function\0${f.name}`, f.version);
    for (const l of pins.layers) record(`layer\0${l.name}`, l.version);
  }
  for (const r of rollbacks) for (const v of r.versions) record(`function\0${r.name}`, v);

  const flight = (await deps.executions?.inFlight()) ?? NOTHING_IN_FLIGHT;
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
        ...heldInFlight(flight, 'function', name, version, null),
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
        const held = await underPublishLock(deps.functions, item.name, async () => {
          const now = heldInFlight((await deps.executions?.inFlight()) ?? NOTHING_IN_FLIGHT, 'function', item.name, item.version, null);
          if (!now.length) await deps.functions.deleteVersion(item.name, String(item.version));
          return now;
        });
        if (held.length) {
          keepAfterAll(item, held);
          const fn = versionsOf.get(item.name)?.find((v) => v.version === String(item.version));
          if (fn) used(fn);
        } else item.result = 'deleted';
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
        ...heldInFlight(flight, 'layer', name, layer.version, layer.arn),
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
        const held = await underPublishLock(deps.layers, name, async () => {
          const now = heldInFlight((await deps.executions?.inFlight()) ?? NOTHING_IN_FLIGHT, 'layer', name, layer.version, layer.arn);
          if (!now.length) await deps.layers.deleteVersion(layer.arn);
          return now;
        });
        if (held.length) keepAfterAll(item, held);
        else item.result = 'deleted';
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
