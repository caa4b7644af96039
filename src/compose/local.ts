/**
 * The local composition root: the ports of the local backend, every one on its local
 * adapter with all state under one LocalHome. The CLI commands, `bakery serve` and the
 * local runner take their dependencies from here and from nowhere else. No AWS adapter
 * is imported here, so the local CLI does not load the AWS SDK for it.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { LocalAlarms } from '../adapters/local/alarms.ts';
import type { LocalHome } from '../adapters/local/home.ts';
import { LocalImageBuilder } from '../adapters/local/image-builder.ts';
import { LocalInvoker } from '../adapters/local/invoker.ts';
import { LazyNotifier } from '../adapters/local/lazy-notifier.ts';
import { TerminalNotifier } from '../adapters/local/notifier.ts';
import { InstalledNodePatchResolver } from '../adapters/local/patches.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from '../adapters/local/registries.ts';
import type { LocalSlackSettings } from '../adapters/local/slack-settings.ts';
import { LocalSourceReader } from '../adapters/local/sources.ts';
import { LocalApprovalStore, LocalArtefactStore, LocalLedger, LocalTaskCallbacks } from '../adapters/local/stores.ts';
import type { PreCheckDeps } from '../cores/precheck.ts';
import type { ExecutionRefs } from '../ports/executions.ts';
import { DirectoryRecipeCatalog } from '../recipes/recipe.ts';
import type { StepEvent } from '../recipes/toe.ts';
import type { Deps, SlackCallbackDeps } from './deps.ts';

export type { Deps, SlackCallbackDeps };

/** The task ports of the local backend, with the concrete adapters the local commands also reach into. */
export interface LocalDeps extends Deps {
  home: LocalHome;
  callbacks: LocalTaskCallbacks;
  layers: LocalLayerRegistry;
  functions: LocalFunctionRegistry;
  alarms: LocalAlarms;
  /** What executions that have not ended hold (the journal); set by the CLI, which owns the journal. */
  executions?: ExecutionRefs;
}

/** The recipes of this checkout (layers/<name>/recipe.yml). */
export const projectRecipes = (projectRoot: string) => new DirectoryRecipeCatalog(path.join(projectRoot, 'layers'));

/** Every task port on its local adapter, all state under `home`: what the local runner gives each task. */
export function createLocalDeps(options: {
  home: LocalHome;
  projectRoot: string;
  write?: (line: string) => void;
  onStep?: (event: StepEvent) => void;
  waitingHint?: boolean;
  /** Slack settings: with a bot token and channel, approvals are posted to Slack as well as to the terminal. */
  slack?: LocalSlackSettings;
}): LocalDeps {
  const { home, projectRoot } = options;
  const recipes = projectRecipes(projectRoot);
  const callbacks = new LocalTaskCallbacks(home);
  // A lock taken over from a dead holder is said so, where the bake's progress goes.
  const lockNotices = { onLockTakeover: (message: string) => options.write?.(`  ! ${message}`) };
  const layers = new LocalLayerRegistry(home, lockNotices);
  const functions = new LocalFunctionRegistry(home, lockNotices);
  const write = options.write ?? (() => {});
  const waitingHint = { waitingHint: options.waitingHint ?? true };
  const slack = options.slack?.botToken && options.slack.channel ? options.slack : undefined;
  return {
    home,
    sources: new LocalSourceReader(),
    recipes,
    artefacts: new LocalArtefactStore(home),
    imageBuilder: localImageBuilder({ home, projectRoot, ...(options.onStep ? { onStep: options.onStep } : {}) }, { recipes, callbacks }),
    layers,
    functions,
    invoker: new LocalInvoker(functions, layers),
    approvals: new LocalApprovalStore(home),
    // With Slack configured, the Slack client loads when there is first something to post.
    notifier: slack
      ? new LazyNotifier(async () => {
          const { localSlackNotifier, TerminalAndSlackNotifier } = await import('../adapters/local/slack.ts');
          const client = localSlackNotifier(slack);
          return client ? new TerminalAndSlackNotifier(write, client, waitingHint) : new TerminalNotifier(write, waitingHint);
        })
      : new TerminalNotifier(write, waitingHint),
    callbacks,
    ledger: new LocalLedger(home),
    alarms: new LocalAlarms(home),
    patches: new InstalledNodePatchResolver({ projectRoot }),
    clock: { now: () => new Date() },
    ids: { random: () => randomBytes(8).toString('hex') },
  };
}

/** What a bake's pre-checks read of the state directory (alarms, layers, the ledger); nothing here writes. */
export function localPreCheckDeps(home: LocalHome): Required<Pick<PreCheckDeps, 'alarms' | 'layers' | 'ledger' | 'artefacts'>> {
  return {
    alarms: new LocalAlarms(home),
    layers: new LocalLayerRegistry(home),
    ledger: new LocalLedger(home),
    artefacts: new LocalArtefactStore(home),
  };
}

/** The local image builder alone (`bakery build`), or with the catalog and callbacks of a task composition. */
export function localImageBuilder(
  options: { home: LocalHome; projectRoot: string; onStep?: (event: StepEvent) => void },
  shared: { recipes?: DirectoryRecipeCatalog; callbacks?: LocalTaskCallbacks } = {},
): LocalImageBuilder {
  return new LocalImageBuilder({
    home: options.home,
    recipes: shared.recipes ?? projectRecipes(options.projectRoot),
    callbacks: shared.callbacks ?? new LocalTaskCallbacks(options.home),
    projectRoot: options.projectRoot,
    ...(options.onStep ? { onStep: options.onStep } : {}),
  });
}
