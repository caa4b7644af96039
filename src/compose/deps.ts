/**
 * What each serverless function key is given: the dependency types of the composition
 * roots (src/compose/aws.ts, src/compose/local.ts). Types only, so the local CLI can name
 * them without loading an AWS adapter. A core declares the narrow ports it uses; these
 * are the sets a composition provides.
 */
import type { ImageEventDeps } from '../cores/image-events.ts';
import type { NotifyBudget } from '../cores/record.ts';
import type { SlackCallbackDeps } from '../cores/slack-callback.ts';
import type { AlarmMonitor } from '../ports/alarms.ts';
import type { ApprovalStore } from '../ports/approval.ts';
import type { TaskCallbacks } from '../ports/callbacks.ts';
import type { ImageBuilder, ImageInventory } from '../ports/image-build.ts';
import type { FunctionInvoker, FunctionRegistry, LayerRegistry } from '../ports/lambda.ts';
import type { Notifier } from '../ports/notifier.ts';
import type { PatchResolver } from '../ports/patches.ts';
import type { RecipeCatalog, SourceReader } from '../ports/sources.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { Clock, IdSource } from '../ports/system.ts';
import type { BakeStarter, SourceCatalog } from '../ports/triggers.ts';

export type { ImageEventDeps, SlackCallbackDeps };

/** Every port a state-machine task may need; the AWS and the local composition both provide all of them. */
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

/** The ports of the S3 trigger and the scheduled rebuild (not state-machine tasks). */
export interface TriggerDeps {
  starter: BakeStarter;
  catalog: SourceCatalog;
  clock: Clock;
  /** Where the scheduled rebuild looks for sources; read on first use. */
  source: { bucket: () => string; prefix: () => string };
}

/** startBake: the EventBridge target of uploads to the source bucket. */
export type StartBakeDeps = Pick<TriggerDeps, 'starter'>;

/** scheduledRebake: the patch-rebuild schedule's target. */
export type ScheduledRebakeDeps = Pick<TriggerDeps, 'starter' | 'catalog' | 'clock' | 'source'>;

/** driftCheck: the scheduled comparison of what is live with the release manifests. */
export type DriftCheckDeps = Pick<Deps, 'ledger' | 'functions' | 'artefacts' | 'notifier' | 'clock' | 'layers'>;

/**
 * The ports a read command uses (status, history, drift, verify): on the local backend
 * only the state directory's stores and registries (src/compose/local-read.ts), on AWS
 * the deployed stack's.
 */
export type ReadDeps = Pick<Deps, 'ledger' | 'functions' | 'layers' | 'artefacts' | 'clock'>;
