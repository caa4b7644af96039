import type { FunctionRegistry } from '../ports/lambda.ts';
import type { DriftDifference, DriftReport, FunctionDrift, Notifier } from '../ports/notifier.ts';
import type { ArtefactStore, Ledger, LedgerEntry } from '../ports/storage.ts';
import type { Clock } from '../ports/system.ts';
import type { Json } from '../state.ts';
import { type ManifestFunction, manifestKey, type PinManifest } from './record.ts';

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
 * against what that bake published. Every difference is listed; none means no drift.
 */
export async function drift(deps: {
  ledger: Ledger;
  functions: FunctionRegistry;
  artefacts: ArtefactStore;
  clock: Clock;
}): Promise<DriftReport> {
  const entries = await deps.ledger.list();
  const out: FunctionDrift[] = [];
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

    const manifest = expected.bakeId ? await deps.artefacts.getJson<PinManifest>(manifestKey(expected.bakeId)) : undefined;
    const recorded: ManifestFunction | undefined = manifest?.functions.find((f) => f.name === expected.name);
    if (!manifest || !recorded) {
      differ('manifest', expected.bakeId ? manifestKey(expected.bakeId) : 'a manifest', null);
      continue;
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
  }
  return { checkedAt: deps.clock.now().toISOString(), drifted: out.some((f) => f.differences.length > 0), functions: out };
}

/** The scheduled drift check (AWS): compare, and tell Slack when anything differs. */
export async function driftCheck(deps: {
  ledger: Ledger;
  functions: FunctionRegistry;
  artefacts: ArtefactStore;
  clock: Clock;
  notifier: Notifier;
}): Promise<DriftReport> {
  const report = await drift(deps);
  if (report.drifted) await deps.notifier.driftFound(report);
  return report;
}
