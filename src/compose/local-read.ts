/**
 * The read-only part of the local composition, for the read commands (status, history,
 * drift, verify): the state directory's stores and registries and nothing that bakes, so
 * such a command loads no image builder, invoker, Slack client or runner
 * (test/cli/startup.test.ts). Kept apart from src/compose/local.ts, which loads all of them.
 */
import type { LocalHome } from '../adapters/local/home.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from '../adapters/local/registries.ts';
import { LocalArtefactStore, LocalLedger } from '../adapters/local/stores.ts';
import type { ReadDeps } from './deps.ts';

export function localReadDeps(home: LocalHome): ReadDeps {
  return {
    ledger: new LocalLedger(home),
    functions: new LocalFunctionRegistry(home),
    layers: new LocalLayerRegistry(home),
    artefacts: new LocalArtefactStore(home),
    clock: { now: () => new Date() },
  };
}
