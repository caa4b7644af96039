import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { ExecutionRefs } from '../../ports/executions.ts';
import type { SourceReader } from '../../ports/sources.ts';
import { DirectoryRecipeCatalog } from '../../recipes/recipe.ts';
import type { StepEvent } from '../../recipes/toe.ts';
import type { BakeSource } from '../../state.ts';
import type { Deps } from '../../tasks.ts';
import type { SlackNotifier } from '../aws/slack.ts';
import { LocalAlarms } from './alarms.ts';
import type { LocalHome } from './home.ts';
import { LocalImageBuilder } from './image-builder.ts';
import { LocalInvoker } from './invoker.ts';
import { TerminalNotifier } from './notifier.ts';
import { InstalledNodePatchResolver } from './patches.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from './registries.ts';
import { TerminalAndSlackNotifier } from './slack.ts';
import { LocalApprovalStore, LocalArtefactStore, LocalLedger, LocalTaskCallbacks } from './stores.ts';

/** Sources on this machine: the spec file is read where it is. */
export class LocalSourceReader implements SourceReader {
  async open(source: BakeSource): Promise<{ specFile: string; where: string }> {
    if (source.type !== 'file') throw new Error('the local backend reads bakes from files; S3 sources need the AWS backend');
    return { specFile: path.resolve(source.path), where: source.path };
  }
}

export interface LocalDeps extends Deps {
  home: LocalHome;
  callbacks: LocalTaskCallbacks;
  layers: LocalLayerRegistry;
  functions: LocalFunctionRegistry;
  alarms: LocalAlarms;
  /** What executions that have not ended hold (the journal); set by the CLI, which owns the journal. */
  executions?: ExecutionRefs;
}

/** Every port on its local adapter, all state under `home`. */
export function createLocalDeps(options: {
  home: LocalHome;
  projectRoot: string;
  write?: (line: string) => void;
  onStep?: (event: StepEvent) => void;
  waitingHint?: boolean;
  /** Post to Slack as well as to the terminal (a bot token and channel are configured locally). */
  slack?: SlackNotifier;
}): LocalDeps {
  const { home, projectRoot } = options;
  const recipes = new DirectoryRecipeCatalog(path.join(projectRoot, 'layers'));
  const callbacks = new LocalTaskCallbacks(home);
  // A lock taken over from a dead holder is said so, where the bake's progress goes.
  const lockNotices = { onLockTakeover: (message: string) => options.write?.(`  ! ${message}`) };
  const layers = new LocalLayerRegistry(home, lockNotices);
  const functions = new LocalFunctionRegistry(home, lockNotices);
  return {
    home,
    sources: new LocalSourceReader(),
    recipes,
    artefacts: new LocalArtefactStore(home),
    imageBuilder: new LocalImageBuilder({
      home,
      recipes,
      callbacks,
      projectRoot,
      ...(options.onStep ? { onStep: options.onStep } : {}),
    }),
    layers,
    functions,
    invoker: new LocalInvoker(functions, layers),
    approvals: new LocalApprovalStore(home),
    notifier: options.slack
      ? new TerminalAndSlackNotifier(options.write ?? (() => {}), options.slack, { waitingHint: options.waitingHint ?? true })
      : new TerminalNotifier(options.write ?? (() => {}), { waitingHint: options.waitingHint ?? true }),
    callbacks,
    ledger: new LocalLedger(home),
    alarms: new LocalAlarms(home),
    patches: new InstalledNodePatchResolver({ projectRoot }),
    clock: { now: () => new Date() },
    ids: { random: () => randomBytes(8).toString('hex') },
  };
}
