import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { FunctionRegistry, LayerRegistry } from '../ports/lambda.ts';
import type { DriftDifference, DriftReport, FunctionDrift, Notifier } from '../ports/notifier.ts';
import type { ArtefactStore, Ledger, LedgerEntry } from '../ports/storage.ts';
import type { Clock } from '../ports/system.ts';
import type { ArtefactRef, Json } from '../state.ts';
import { sha256File } from '../util/fsx.ts';
import { manifestKey } from './manifest-keys.ts';
import type { ManifestFunction, PinManifest } from './record.ts';

/** The manifest the ledger's entry of `bakeId` references, with whether its bytes still hash as recorded. */
async function ledgerManifest(
  bakeId: string,
  entries: LedgerEntry[],
  artefacts: ArtefactStore,
): Promise<{ manifest: PinManifest | undefined; ref: ArtefactRef | null; actualSha256: string | null }> {
  const ref =
    entries.flatMap((e): ArtefactRef[] => ('manifest' in e && e.bakeId === bakeId && e.manifest ? [e.manifest] : [])).at(-1) ?? null;
  const manifest = await artefacts.getJson<PinManifest>(manifestKey(bakeId));
  if (!ref) return { manifest, ref, actualSha256: null };
  const actualSha256 = await artefacts
    .fetchFile(ref)
    .then((file) => sha256File(file))
    .then((got) => got.hex)
    .catch(() => null);
  return { manifest, ref, actualSha256 };
}

/** What should be live for one alias: the target of its last release or rollback, and the bake that released it. */
export interface Expected {
  name: string;
  alias: string;
  version: string;
  bakeId: string | null;
}

/** For every alias bakery ever moved, what the ledger says it should point at now. */
export function expectedAliases(entries: LedgerEntry[]): Expected[] {
  const latest = new Map<string, Expected>();
  for (const e of entries) {
    if (e.type === 'released') {
      for (const m of e.functions) latest.set(`${m.name}\0${m.alias}`, { name: m.name, alias: m.alias, version: m.to, bakeId: e.bakeId });
    } else if (e.type === 'rolledBack') {
      latest.set(`${e.name}\0${e.alias}`, { name: e.name, alias: e.alias, version: e.to, bakeId: e.bakeId });
    }
  }
  return [...latest.values()].sort((a, b) => a.name.localeCompare(b.name) || a.alias.localeCompare(b.alias));
}

const same = (a: Json, b: Json): boolean => JSON.stringify(a) === JSON.stringify(b);

/**
 * Compare what is live with the release manifests: for each alias bakery moved, the
 * alias target and routing weights against its last release (or rollback), and the
 * live version's layers, runtime, handler, environment variable names and code SHA-256
 * against what that bake published. The manifest itself must still hash as the ledger
 * recorded (a changed manifest is reported as such, never blamed on what is live), and
 * the layer the bake pinned must still be the record and the bytes it published. Every
 * difference is listed; none means no drift.
 */
export async function drift(deps: {
  ledger: Ledger;
  functions: FunctionRegistry;
  artefacts: ArtefactStore;
  clock: Clock;
  /** To check the pinned layer's record and bytes (skipped without it). */
  layers?: LayerRegistry;
}): Promise<DriftReport> {
  const entries = await deps.ledger.list();
  const out: FunctionDrift[] = [];
  const layerChecks = new Map<string, DriftDifference[]>();
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-drift-'));
  try {
    for (const expected of expectedAliases(entries)) {
      const differences: DriftDifference[] = [];
      const differ = (field: string, want: Json, live: Json) => {
        if (!same(want, live)) differences.push({ field, expected: want, live });
      };
      const alias = await deps.functions.getAlias(expected.name, expected.alias);
      out.push({
        name: expected.name,
        alias: expected.alias,
        bakeId: expected.bakeId,
        expectedVersion: expected.version,
        liveVersion: alias?.version ?? null,
        differences,
      });
      if (!alias) {
        differ('alias', expected.version, null);
        continue;
      }
      differ('alias.version', expected.version, alias.version);
      differ('alias.weights', {}, alias.weights);

      const read = expected.bakeId ? await ledgerManifest(expected.bakeId, entries, deps.artefacts) : undefined;
      const manifest = read?.manifest;
      const recorded: ManifestFunction | undefined = manifest?.functions.find((f) => f.name === expected.name);
      if (!manifest || !recorded) {
        differ('manifest', expected.bakeId ? manifestKey(expected.bakeId) : 'a manifest', null);
        continue;
      }
      if (read?.ref && read.actualSha256 !== read.ref.sha256Hex) {
        // A manifest that is not the one recorded says nothing about what should be live.
        differ('manifest.sha256', read.ref.sha256Hex, read.actualSha256);
        continue;
      }
      if (manifest.layer && deps.layers) {
        const pinned = manifest.layer;
        let found = layerChecks.get(pinned.arn);
        if (!found) {
          found = await layerDifferences(pinned, deps.layers, path.join(work, `layer-${layerChecks.size}.zip`));
          layerChecks.set(pinned.arn, found);
        }
        differences.push(...found);
      }
      const live = await deps.functions.getVersion(expected.name, alias.version);
      if (!live) {
        differ('version', alias.version, null);
        continue;
      }
      differ('codeSha256', recorded.codeSha256, live.codeSha256);
      // Manifests written before the configuration was recorded still know the layer and runtime.
      const layers = recorded.layers ?? (manifest.layer ? [manifest.layer.arn] : undefined);
      if (layers) differ('layers', layers, live.layers);
      const runtime = recorded.runtime ?? manifest.recipe?.runtime;
      if (runtime !== undefined) differ('runtime', runtime, live.runtime);
      if (recorded.handler !== undefined) differ('handler', recorded.handler, live.handler);
      if (recorded.environmentNames) differ('environment.names', recorded.environmentNames, Object.keys(live.environment).sort());
      if (recorded.memorySize !== undefined) differ('memorySize', recorded.memorySize, live.memorySize ?? null);
      if (recorded.timeout !== undefined) differ('timeout', recorded.timeout, live.timeout ?? null);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { checkedAt: deps.clock.now().toISOString(), drifted: out.some((f) => f.differences.length > 0), functions: out };
}

/** How the pinned layer version differs from what the bake published: its record (CodeSha256) and its bytes. */
async function layerDifferences(
  pinned: { arn: string; codeSha256: string },
  layers: LayerRegistry,
  file: string,
): Promise<DriftDifference[]> {
  const info = await layers.get(pinned.arn);
  if (!info) return [{ field: 'layer', expected: pinned.arn, live: null }];
  const out: DriftDifference[] = [];
  if (info.codeSha256 !== pinned.codeSha256) out.push({ field: 'layer.codeSha256', expected: pinned.codeSha256, live: info.codeSha256 });
  const content = (await layers.download(pinned.arn, file)) ? (await sha256File(file)).base64 : null;
  if (content !== pinned.codeSha256) out.push({ field: 'layer.content', expected: pinned.codeSha256, live: content });
  await rm(file, { force: true });
  return out;
}

/** The scheduled drift check (AWS): compare, and tell Slack when anything differs. */
export async function driftCheck(deps: {
  ledger: Ledger;
  functions: FunctionRegistry;
  artefacts: ArtefactStore;
  clock: Clock;
  notifier: Notifier;
  layers?: LayerRegistry;
}): Promise<DriftReport> {
  const report = await drift(deps);
  if (report.drifted) await deps.notifier.driftFound(report);
  return report;
}
