/**
 * The deciding part of the local composition: what `bakery bake` needs to check a bake's
 * input and to ask ResolveBake's decision whether it is up to date (src/cores/patch.ts
 * `upToDateBake`), and nothing that bakes. An up-to-date bake therefore ends without
 * loading the image builder, the invoker and its runtime API sandbox, the notifiers or the
 * state-machine runner (test/cli/startup.test.ts); src/compose/local.ts composes those
 * when the bake really runs. Kept apart from it, as src/compose/local-read.ts is.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { LocalAlarms } from '../adapters/local/alarms.ts';
import type { LocalHome } from '../adapters/local/home.ts';
import { InstalledNodePatchResolver } from '../adapters/local/patches.ts';
import { LocalLayerRegistry } from '../adapters/local/registries.ts';
import { LocalSourceReader } from '../adapters/local/sources.ts';
import { LocalArtefactStore, LocalLedger } from '../adapters/local/stores.ts';
import type { PatchDeps } from '../cores/patch.ts';
import type { ResolveDeps } from '../cores/resolve.ts';
import type { AlarmMonitor } from '../ports/alarms.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { Ledger } from '../ports/storage.ts';
import { DirectoryRecipeCatalog } from '../recipes/recipe.ts';

/** The recipes of this checkout (layers/<name>/recipe.yml). */
export const projectRecipes = (projectRoot: string) => new DirectoryRecipeCatalog(path.join(projectRoot, 'layers'));

/**
 * The ports of ResolveBake's decision and of a bake's pre-checks, on the same local adapters
 * as src/compose/local.ts `createLocalDeps` gives a bake. The pre-checks read the state
 * directory (alarms, layers, the ledger, manifests) and nothing here writes.
 */
export interface LocalDecisionDeps extends ResolveDeps, PatchDeps {
  home: LocalHome;
  // Every pre-check runs locally: its ports are all there.
  alarms: AlarmMonitor;
  layers: LayerRegistry;
  ledger: Ledger;
}

/** The decision's ports, all state under `home`, as their local adapters (the execution record is the caller's to write). */
export function localDecisionDeps(home: LocalHome, projectRoot: string) {
  return {
    home,
    sources: new LocalSourceReader(),
    recipes: projectRecipes(projectRoot),
    artefacts: new LocalArtefactStore(home),
    ledger: new LocalLedger(home),
    alarms: new LocalAlarms(home),
    layers: new LocalLayerRegistry(home),
    patches: new InstalledNodePatchResolver({ projectRoot }),
    clock: { now: () => new Date() },
    ids: { random: () => randomBytes(8).toString('hex') },
  } satisfies LocalDecisionDeps;
}
