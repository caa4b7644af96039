/**
 * The local composition root: the ports of the local backend, every one on its local
 * adapter with all state under one LocalHome. The CLI commands, `bakery serve` and the
 * local runner take their dependencies from here and from nowhere else; the parts that
 * only read, for the read commands (./local-read.ts) and for a bake's pre-checks and
 * up-to-date decision (./local-decision.ts, which this builds on), live beside it so that
 * those paths load nothing that bakes. No AWS adapter is imported here, so the local CLI
 * does not load the AWS SDK for it.
 */
import type { LocalAlarms } from '../adapters/local/alarms.ts';
import type { LocalHome } from '../adapters/local/home.ts';
import { LocalImageBuilder } from '../adapters/local/image-builder.ts';
import { LocalInvoker } from '../adapters/local/invoker.ts';
import { LazyNotifier } from '../adapters/local/lazy-notifier.ts';
import { TerminalNotifier } from '../adapters/local/notifier.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from '../adapters/local/registries.ts';
import type { LocalSlackSettings } from '../adapters/local/slack-settings.ts';
import { LocalApprovalStore, LocalTaskCallbacks } from '../adapters/local/stores.ts';
import type { ExecutionRefs } from '../ports/executions.ts';
import type { DirectoryRecipeCatalog } from '../recipes/recipe.ts';
import type { StepEvent } from '../recipes/toe.ts';
import type { Deps, SlackCallbackDeps } from './deps.ts';
import { localDecisionDeps, projectRecipes } from './local-decision.ts';

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
  // The decision's ports (sources, recipes, artefacts, ledger, alarms, patches, clock, ids), the same ones `bakery bake` decides on.
  const decision = localDecisionDeps(home, projectRoot);
  const { recipes } = decision;
  const callbacks = new LocalTaskCallbacks(home);
  // A lock taken over from a dead holder is said so, where the bake's progress goes.
  const lockNotices = { onLockTakeover: (message: string) => options.write?.(`  ! ${message}`) };
  const layers = new LocalLayerRegistry(home, lockNotices);
  const functions = new LocalFunctionRegistry(home, lockNotices);
  const write = options.write ?? (() => {});
  const waitingHint = { waitingHint: options.waitingHint ?? true };
  const slack = options.slack?.botToken && options.slack.channel ? options.slack : undefined;
  return {
    ...decision,
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
