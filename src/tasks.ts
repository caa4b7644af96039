import { requestApproval } from './cores/approval.ts';
import { startImageBuild } from './cores/image.ts';
import { publishLayer } from './cores/layer.ts';
import { resolveBakeTask } from './cores/patch.ts';
import { type NotifyBudget, recordFailure, recordSuccess } from './cores/record.ts';
import { release, shiftTraffic, undoRelease } from './cores/release.ts';
import { validateVersions } from './cores/validate.ts';
import { publishVersions } from './cores/version.ts';
import type { AlarmMonitor } from './ports/alarms.ts';
import type { ApprovalStore } from './ports/approval.ts';
import type { TaskCallbacks } from './ports/callbacks.ts';
import type { ImageBuilder, ImageInventory } from './ports/image-build.ts';
import type { FunctionInvoker, FunctionRegistry, LayerRegistry } from './ports/lambda.ts';
import type { Notifier } from './ports/notifier.ts';
import type { PatchResolver } from './ports/patches.ts';
import type { RecipeCatalog, SourceReader } from './ports/sources.ts';
import type { ArtefactStore, Ledger } from './ports/storage.ts';
import type { Clock, IdSource } from './ports/system.ts';
import { parseBakeRequest, parseFailureInput, parseTaskInput } from './state.ts';

/** Every port a task may need; the AWS and the local composition both provide all of them. */
export interface Deps {
  sources: SourceReader;
  recipes: RecipeCatalog;
  artefacts: ArtefactStore;
  imageBuilder: ImageBuilder;
  layers: LayerRegistry;
  functions: FunctionRegistry;
  invoker: FunctionInvoker;
  approvals: ApprovalStore;
  notifier: Notifier;
  callbacks: TaskCallbacks;
  ledger: Ledger;
  alarms: AlarmMonitor;
  /** The newest runtime patch and base image, for scheduled patch rebuilds (and wildcard base images). */
  patches: PatchResolver;
  clock: Clock;
  ids: IdSource;
  /** How long the record tasks try to notify (src/cores/record.ts NOTIFY_BUDGET when absent). */
  notifyBudget?: NotifyBudget;
  /** The image builds and recipe versions `bakery prune` looks at (AWS only; a local build leaves none). */
  images?: ImageInventory;
}

/**
 * The state machine's tasks by function key (the key in serverless.yml). A Lambda
 * handler and the local runner call exactly these, with AWS or local ports. Each parses
 * its payload with its state's schema first (src/state.ts): a mismatch is a
 * StateContractError naming the state and the field.
 */
export const TASKS = {
  resolveBake: (payload: unknown, deps: Deps) => resolveBakeTask(parseBakeRequest(payload), deps),
  buildImage: (payload: unknown, deps: Deps) => startImageBuild(parseTaskInput('BuildImage', payload), deps),
  publishLayer: (payload: unknown, deps: Deps) => publishLayer(parseTaskInput('PublishLayer', payload), deps),
  publishVersion: (payload: unknown, deps: Deps) => publishVersions(parseTaskInput('PublishVersion', payload), deps),
  validate: (payload: unknown, deps: Deps) => validateVersions(parseTaskInput('Validate', payload), deps),
  requestApproval: (payload: unknown, deps: Deps) => requestApproval(parseTaskInput('RequestApproval', payload), deps),
  release: (payload: unknown, deps: Deps) => release(parseTaskInput('Release', payload), deps),
  shiftTraffic: (payload: unknown, deps: Deps) => shiftTraffic(parseTaskInput('ShiftTraffic', payload), deps),
  undoRelease: (payload: unknown, deps: Deps) => undoRelease(parseTaskInput('UndoRelease', payload), deps),
  recordSuccess: (payload: unknown, deps: Deps) => recordSuccess(parseTaskInput('RecordSuccess', payload), deps),
  recordFailure: (payload: unknown, deps: Deps) => recordFailure(parseFailureInput(payload), deps),
} as const;

export type TaskName = keyof typeof TASKS;

export const isTaskName = (name: string): name is TaskName => Object.hasOwn(TASKS, name);
