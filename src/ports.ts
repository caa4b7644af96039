/**
 * Ports: what the cores need from the outside world. Each has an AWS adapter
 * (`src/adapters/aws/`) and a local adapter (`src/adapters/local/`); local mode only
 * chooses adapters, it never branches inside a core.
 */
import type {
  AliasMove,
  ArtefactRef,
  BakeRequest,
  BakeSource,
  BuiltImage,
  Json,
  LayerVersionInfo,
  ResolvedRecipe,
  Trigger,
} from './state.ts';

// The state JSON lives in src/state.ts (zod schemas, types derived from them); re-exported
// here so that code importing it from ports still compiles.
export type {
  AliasMove,
  ApprovalResult,
  ArtefactRef,
  BakeRequest,
  BakeSource,
  BuildRecord,
  BuiltImage,
  CaseReport,
  FunctionValidationReport,
  GradualRelease,
  Json,
  LayerVersionInfo,
  PatchChange,
  PublishedFunctionVersion,
  PublishedLayer,
  PublishedVersions,
  ReleaseResult,
  ResolvedBake,
  ResolvedFunction,
  ResolvedRecipe,
  TrafficStep,
  Trigger,
  ValidationReport,
} from './state.ts';

// ---------------------------------------------------------------- ports

export interface Clock {
  now(): Date;
}

export interface IdSource {
  /** A short random id (approval ids, tokens). */
  random(): string;
}

/** Opens the source of a bake as a local directory holding the spec file. */
export interface SourceReader {
  open(source: BakeSource): Promise<{ specFile: string; where: string }>;
}

/** Where recipes (`layers/<name>/recipe.yml` and their component documents) live. */
export interface RecipeCatalog {
  /** Absolute directory of the recipe, or undefined when there is none of that name. */
  find(name: string): Promise<string | undefined>;
  list(): Promise<string[]>;
}

/** Blobs and JSON documents passed between states (S3 artefacts bucket / state directory). */
export interface ArtefactStore {
  putFile(key: string, file: string): Promise<ArtefactRef>;
  putJson(key: string, value: unknown): Promise<ArtefactRef>;
  getJson<T>(key: string): Promise<T | undefined>;
  /** A local path holding the artefact's bytes (downloaded first when remote). */
  fetchFile(ref: ArtefactRef): Promise<string>;
  /** A local directory holding a tree artefact (downloaded and extracted first when remote). */
  fetchTree(ref: ArtefactRef): Promise<string>;
}

/** Resumes a waiting callback task (Step Functions `SendTaskSuccess` / `SendTaskFailure`). */
export interface TaskCallbacks {
  succeed(token: string, output: Json): Promise<void>;
  fail(token: string, error: string, cause: string): Promise<void>;
}

export interface ImageBuildStart {
  bakeId: string;
  bakeKey: string;
  rebuild: boolean;
  recipe: ResolvedRecipe;
  taskToken: string;
}

/** Starts an image build; its completion resumes the task through {@link TaskCallbacks}. */
export interface ImageBuilder {
  start(request: ImageBuildStart): Promise<{ buildId: string }>;
}

/** The task token a running image build resumes, as {@link ImageBuilder.start} parked it. */
export interface ImageBuildTicket {
  /** The build's id (the image build version ARN in AWS). */
  buildId: string;
  bakeId: string;
  bakeKey: string;
  recipe: string;
  taskToken: string;
  createdAt: string;
  documents: Array<{ path: string; sha256Hex: string }>;
  parameters: Record<string, string>;
  /**
   * The build the cache holds under this bake key that this one may replace when it
   * succeeds (a forced rebuild, or a cached runtime found gone or changed); null: none.
   */
  replaces: string | null;
  /** Set once an outcome was claimed for sending; a ticket is resumed at most once. */
  done: { status: string; at: string; claim: string } | null;
}

/** Task tokens of running image builds, by build id (a DynamoDB item in AWS). */
export interface ImageBuildTokens {
  find(buildId: string): Promise<ImageBuildTicket | undefined>;
  /** Mark the ticket done before resuming; false when it already was (a duplicate event). */
  markDone(buildId: string, done: { status: string; at: string; claim: string }): Promise<boolean>;
  /** Undo {@link markDone} of `claim`, so a retry can resume the task after all. */
  release(buildId: string, claim: string): Promise<void>;
}

/** What a finished image build left behind (the zipped runtime tree its test phase uploaded). */
export interface ImageBuildOutputs {
  /** The runtime zip, or why there is none; throws only on failures worth retrying. */
  runtime(buildId: string): Promise<{ found: true; ref: ArtefactRef; details: Record<string, string> } | { found: false; reason: string }>;
  /** Why a build failed, as the builder reports it (null when it says nothing). */
  failureReason(buildId: string): Promise<string | null>;
}

/**
 * Finished, verified builds by bake key (a DynamoDB item per key in AWS; the local
 * builder keeps its own under `<home>/builds/<bakeKey>/`): the same key is never built twice.
 */
export interface BuildCache {
  /** The build recorded under `bakeKey`, if any. */
  get(bakeKey: string): Promise<BuiltImage | undefined>;
  /**
   * Record `image` under its bake key, once: only when nothing is recorded yet or the
   * recorded build is `replaces`. False when another build holds the key (kept as it is).
   */
  record(image: BuiltImage, replaces: string | null): Promise<boolean>;
}

export interface LayerPublishInput {
  name: string;
  description: string;
  zipFile: string;
  sha256Base64: string;
  size: number;
  compatibleRuntimes: string[];
  architectures: string[];
}

/** A layer version and what Lambda lets it be attached to (an empty list declares no constraint). */
export interface LayerVersionDetails extends LayerVersionInfo {
  compatibleRuntimes: string[];
  architectures: string[];
}

export interface LayerRegistry {
  findByCodeSha256(name: string, codeSha256: string): Promise<LayerVersionInfo | undefined>;
  publish(input: LayerPublishInput): Promise<LayerVersionInfo>;
  get(arn: string): Promise<LayerVersionInfo | undefined>;
  /** The version with its compatible runtimes and architectures; undefined when there is no such version. */
  describe(arn: string): Promise<LayerVersionDetails | undefined>;
  /** Write the version's zip to `file` (downloaded from Lambda in AWS); false when there is no such version. */
  download(arn: string, file: string): Promise<boolean>;
  /** Every version the layer has now; empty when there is no such layer. */
  listVersions(name: string): Promise<Array<{ name: string; arn: string; version: number }>>;
  /** Delete one version (gone already is fine). A deleted version's number is never given out again. */
  deleteVersion(arn: string): Promise<void>;
}

export interface FunctionVersionInput {
  name: string;
  description: string;
  codeFile: string;
  codeSha256: string;
  handler: string;
  runtime: string;
  architecture: string;
  memorySize: number;
  timeout: number;
  environment: Record<string, string>;
  layers: string[];
}

export interface FunctionVersionInfo {
  name: string;
  version: string;
  codeSha256: string;
  handler: string;
  runtime: string;
  layers: string[];
  environment: Record<string, string>;
}

export interface AliasInfo {
  name: string;
  alias: string;
  /** The primary version. */
  version: string;
  revisionId: string;
  /** Routing weights (Lambda's AdditionalVersionWeights): other version → share of traffic in (0, 1). Empty: all on `version`. */
  weights: Record<string, number>;
}

export interface FunctionRegistry {
  /** Publish an immutable version with this code and configuration (Lambda returns the latest one when nothing changed). */
  publishVersion(input: FunctionVersionInput): Promise<FunctionVersionInfo>;
  getVersion(name: string, version: string): Promise<FunctionVersionInfo | undefined>;
  getAlias(name: string, alias: string): Promise<AliasInfo | undefined>;
  /**
   * Point `alias` at `version`. `expectedRevisionId` is the revision read before
   * (null: the alias must not exist yet); a concurrent change fails with AliasConflictError.
   */
  setAlias(
    name: string,
    alias: string,
    version: string,
    expectedRevisionId: string | null,
    /** Routing weights to set (a gradual release); omitted or empty: all traffic on `version`. */
    weights?: Record<string, number>,
  ): Promise<AliasInfo>;
  /** Remove an alias a release created, only if it is still at `expectedRevisionId` (AliasConflictError otherwise). */
  deleteAlias(name: string, alias: string, expectedRevisionId: string): Promise<void>;
  /** Every version of the function, `$LATEST` included where there is one; empty when there is no such function. */
  listVersions(name: string): Promise<FunctionVersionInfo[]>;
  /** Every alias of the function; empty when there is no such function. */
  listAliases(name: string): Promise<AliasInfo[]>;
  /** Write the code zip of a numbered version to `file`; false when there is no such version. */
  downloadCode(name: string, version: string, file: string): Promise<boolean>;
  /** Delete a numbered version (never `$LATEST`); AliasConflictError when an alias points at it. Gone already is fine. */
  deleteVersion(name: string, version: string): Promise<void>;
}

export type InvokeOutcome =
  | { ok: true; result: Json; durationMs: number; logTail: string }
  | { ok: false; errorType: string; errorMessage: string; durationMs: number; logTail: string };

export interface InvokeSession {
  /** How long the runtime took to initialise, and why it failed if it did. */
  readonly init: { durationMs: number | null; error: string | null };
  invoke(event: Json, timeoutMs: number): Promise<InvokeOutcome>;
  close(): Promise<void>;
}

export type NetworkMode = 'host' | 'none';

/** Runs events against one published version (never the alias). */
export interface FunctionInvoker {
  /** `network: 'none'` runs the version with no network at all (only where {@link isolation} says it can). */
  open(target: { name: string; version: string; initTimeoutMs: number; network?: NetworkMode }): Promise<InvokeSession>;
  /** Whether versions can be run with no network here, and why not. */
  isolation(): Promise<{ available: boolean; reason: string | null }>;
}

export interface ApprovalDecision {
  /** `expired`: nobody decided in time; RecordFailure writes it (by `bakery`) so that a late click changes nothing. */
  outcome: 'approved' | 'rejected' | 'expired';
  by: string;
  at: string;
  reason: string | null;
}

export interface ApprovalRecord {
  id: string;
  bakeId: string;
  taskToken: string;
  /** SHA-256 of what is being approved: layer, versions and validation report. */
  digest: string;
  approvers: string[];
  createdAt: string;
  expiresAt: string;
  summary: {
    functions: Array<{ name: string; version: string; alias: string; live: string | null }>;
    layer: { arn: string; codeSha256: string; sha256Hex: string };
    runtime: string;
    validation: { passed: boolean; cases: number };
  };
  /** Where the request was posted, so the message can show the outcome; null until posted (always, in the terminal). */
  message: ApprovalMessage | null;
  decision: ApprovalDecision | null;
}

/** A posted approval request: the Slack channel id and message `ts`. */
export interface ApprovalMessage {
  channel: string;
  ts: string;
}

export interface ApprovalStore {
  create(record: ApprovalRecord): Promise<void>;
  get(id: string): Promise<ApprovalRecord | undefined>;
  findByBake(bakeId: string): Promise<ApprovalRecord | undefined>;
  /** Decide once: a conditional write; throws AlreadyDecidedError when a decision exists. */
  decide(id: string, decision: ApprovalDecision): Promise<ApprovalRecord>;
  /**
   * Hand an undecided approval the task token (and expiry) of a retried request: a
   * conditional write; throws AlreadyDecidedError, changing nothing, once it is decided.
   */
  renew(id: string, update: { taskToken: string; expiresAt: string }): Promise<ApprovalRecord>;
  /** Remember where the request was posted. */
  setMessage(id: string, message: ApprovalMessage): Promise<void>;
}

export type AlarmState = 'OK' | 'ALARM' | 'INSUFFICIENT_DATA';

/** The state of named alarms (CloudWatch in AWS, a file in the state directory locally). */
export interface AlarmMonitor {
  /** Every name asked for, with its state; `null` when no such alarm exists. */
  states(names: string[]): Promise<Array<{ name: string; state: AlarmState | null }>>;
}

export interface DriftDifference {
  /** What differs: `alias`, `alias.version`, `alias.weights`, `version`, `layers`, `runtime`, `handler`, `environment.names`, `codeSha256`. */
  field: string;
  expected: Json;
  live: Json;
}

export interface FunctionDrift {
  name: string;
  alias: string;
  /** The bake whose manifest says what should be live (the last release or rollback). */
  bakeId: string | null;
  expectedVersion: string;
  liveVersion: string | null;
  differences: DriftDifference[];
}

/** What `bakery drift` and the scheduled drift check find. */
export interface DriftReport {
  checkedAt: string;
  drifted: boolean;
  functions: FunctionDrift[];
}

/** Tells people what is happening (Slack in AWS, the terminal locally). */
export interface Notifier {
  /** Ask the approvers; says where the request was posted when it can be updated later (null otherwise). */
  approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null>;
  /** Show the outcome (approved, rejected or expired), on the request's own message where there is one. */
  approvalDecided(record: ApprovalRecord): Promise<void>;
  bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void>;
  /** What is live differs from the release manifests (the scheduled drift check). */
  driftFound(report: DriftReport): Promise<void>;
}

export type LedgerEntry =
  | {
      type: 'released';
      bakeId: string;
      at: string;
      trigger: Trigger;
      layer: { arn: string; version: number; codeSha256: string };
      functions: AliasMove[];
      manifest: ArtefactRef;
    }
  | {
      type: 'failed';
      bakeId: string | null;
      at: string;
      state: string;
      error: string;
      cause: string;
      manifest: ArtefactRef | null;
      /** The functions of the bake's spec, when it was resolved (absent in entries written before it was recorded). */
      functions?: string[];
    }
  | {
      /** `bakery rollback`: an alias moved back to a version an earlier bake released. */
      type: 'rolledBack';
      /** The bake that released the version the alias is back on. */
      bakeId: string | null;
      at: string;
      by: string;
      name: string;
      alias: string;
      from: string;
      to: string;
      /** Routing weights the alias had before (a gradual release cut short); empty when none. */
      fromWeights: Record<string, number>;
    };

/** The entry types that say how a bake ended: at most one of each per bake id. */
export type BakeEndType = 'released' | 'failed';

/** The ledger entry of how a bake ended, as {@link Ledger.endOf} finds it. */
export type BakeEndEntry = Extract<LedgerEntry, { type: BakeEndType }>;

/** Does `entry` say how a bake (with an id) ended? Those are appended once per bake id and type. */
export const isBakeEnd = (entry: LedgerEntry): entry is BakeEndEntry & { bakeId: string } =>
  (entry.type === 'released' || entry.type === 'failed') && entry.bakeId !== null;

/** Append-only record of every release, failure and rollback. */
export interface Ledger {
  /**
   * Append an entry. A bake's end (`released` or `failed`, with a bake id) is appended
   * once per bake id and type: appending it again (a retried RecordSuccess or
   * RecordFailure) finds the first and appends nothing.
   */
  append(entry: LedgerEntry): Promise<void>;
  /** Every entry, oldest first. */
  list(): Promise<LedgerEntry[]>;
  /** The entry recording that bake `bakeId` ended as `type`, if there is one. */
  endOf(bakeId: string, type: BakeEndType): Promise<BakeEndEntry | undefined>;
}

// ---------------------------------------------------------------- triggers and patches

/** Starts executions of the bake state machine by name (Step Functions StartExecution in AWS). */
export interface BakeStarter {
  /**
   * Start the execution `name` with `request` as its input. `started: false` when an
   * execution of that name exists already (running, or finished within the time Step
   * Functions keeps names): the same bake, asked for again.
   */
  start(name: string, request: BakeRequest): Promise<{ started: boolean; executionArn: string | null }>;
}

/** One version of a bake source object. */
export interface SourceObject {
  bucket: string;
  key: string;
  versionId: string | null;
}

/** The bake sources in the source bucket (S3 ListObjectVersions in AWS). */
export interface SourceCatalog {
  /** The current version of every object under `prefix` whose key ends in `.zip`; deleted ones are left out. */
  latest(bucket: string, prefix: string): Promise<SourceObject[]>;
}

/** The newest patch of the runtime line a recipe pins, as the parameter values that pin it. */
export interface RuntimePatch {
  parameters: Record<string, string>;
  /** Where the values were read (for the record), e.g. `https://nodejs.org/dist/index.json`. */
  source: string;
}

/**
 * What is newest for a recipe: the runtime line it pins (e.g. Node.js 22.x) and the
 * base image it builds on. The official release index in AWS; what is installed locally.
 */
export interface PatchResolver {
  /** The newest patch of the line the recipe pins; null when it pins no line this resolver knows. */
  runtime(recipe: ResolvedRecipe): Promise<RuntimePatch | null>;
  /**
   * The newest base image matching `name/pattern`, where an `x` node of the pattern
   * matches any number, as `name/<version>`; null when nothing can be resolved here
   * (a local build starts from the machine it runs on).
   */
  baseImage(pattern: string): Promise<string | null>;
}
