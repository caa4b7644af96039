import { parseBakeRequest, requireKeys } from './contracts.ts';
import { type ApprovalInput, requestApproval } from './cores/approval.ts';
import { startImageBuild } from './cores/image.ts';
import { publishLayer } from './cores/layer.ts';
import { resolveBakeTask } from './cores/patch.ts';
import { type BakeState, type NotifyBudget, recordFailure, recordSuccess } from './cores/record.ts';
import { release, shiftTraffic, undoRelease } from './cores/release.ts';
import { validateVersions } from './cores/validate.ts';
import { publishVersions } from './cores/version.ts';
import type {
  AlarmMonitor,
  ApprovalStore,
  ArtefactStore,
  BuiltImage,
  Clock,
  FunctionInvoker,
  FunctionRegistry,
  IdSource,
  ImageBuilder,
  LayerRegistry,
  Ledger,
  Notifier,
  PatchResolver,
  PublishedLayer,
  PublishedVersions,
  RecipeCatalog,
  ReleaseResult,
  ResolvedBake,
  SourceReader,
  TaskCallbacks,
} from './ports.ts';

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
}

/**
 * The state machine's tasks by function key (the key in serverless.yml). A Lambda
 * handler and the local runner call exactly these, with AWS or local ports.
 */
export const TASKS = {
  resolveBake: (payload: unknown, deps: Deps) => resolveBakeTask(parseBakeRequest(payload), deps),
  buildImage: (payload: unknown, deps: Deps) =>
    startImageBuild(requireKeys<{ bake: ResolvedBake; taskToken: string }>(payload, ['bake', 'taskToken'], 'buildImage'), deps),
  publishLayer: (payload: unknown, deps: Deps) =>
    publishLayer(requireKeys<{ bake: ResolvedBake; image: BuiltImage }>(payload, ['bake', 'image'], 'publishLayer'), deps),
  publishVersion: (payload: unknown, deps: Deps) =>
    publishVersions(requireKeys<{ bake: ResolvedBake; layer: PublishedLayer }>(payload, ['bake', 'layer'], 'publishVersion'), deps),
  validate: (payload: unknown, deps: Deps) =>
    validateVersions(requireKeys<{ bake: ResolvedBake; versions: PublishedVersions }>(payload, ['bake', 'versions'], 'validate'), deps),
  requestApproval: (payload: unknown, deps: Deps) =>
    requestApproval(requireKeys<ApprovalInput>(payload, ['bake', 'layer', 'versions', 'validation', 'taskToken'], 'requestApproval'), deps),
  // `bake` carries the spec's gradual-release plan; without it the aliases move all at once.
  release: (payload: unknown, deps: Deps) =>
    release(requireKeys<{ versions: PublishedVersions; bake?: ResolvedBake }>(payload, ['versions'], 'release'), deps),
  shiftTraffic: (payload: unknown, deps: Deps) =>
    shiftTraffic(requireKeys<{ release: ReleaseResult }>(payload, ['release'], 'shiftTraffic'), deps),
  undoRelease: (payload: unknown, deps: Deps) =>
    undoRelease(requireKeys<{ release: ReleaseResult }>(payload, ['release'], 'undoRelease'), deps),
  recordSuccess: (payload: unknown, deps: Deps) =>
    recordSuccess(requireKeys<BakeState>(payload, ['bake', 'layer', 'release'], 'recordSuccess'), deps),
  recordFailure: (payload: unknown, deps: Deps) => recordFailure(requireKeys<BakeState>(payload, ['errors'], 'recordFailure'), deps),
} as const;

export type TaskName = keyof typeof TASKS;

export const isTaskName = (name: string): name is TaskName => Object.hasOwn(TASKS, name);
