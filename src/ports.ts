/**
 * Ports: what the cores need from the outside world. Each has an AWS adapter
 * (`src/adapters/aws/`) and a local adapter (`src/adapters/local/`); local mode only
 * chooses adapters, it never branches inside a core.
 *
 * The `*Result` types are the JSON that flows between the states of
 * `statemachines/bake.asl.json`; every field is always present (null when absent)
 * because the ASL's `ResultSelector` fails on a missing path.
 */
import type { BakeSpec } from './spec.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

// ---------------------------------------------------------------- requests

/** Where the spec and code of a bake come from. */
export type BakeSource = { type: 'file'; path: string } | { type: 's3'; bucket: string; key: string; versionId: string | null };

/** What started a bake; recorded in the ledger and the manifest. */
export type Trigger =
  | { type: 'cli'; user: string }
  | { type: 's3'; bucket: string; key: string; versionId: string | null }
  | { type: 'schedule'; scheduleArn: string | null };

/** The execution input of the state machine. */
export interface BakeRequest {
  bakeId?: string;
  source: BakeSource;
  trigger: Trigger;
  options?: { rebuild?: boolean };
}

// ---------------------------------------------------------------- state results

/** A stored artefact: `file:///abs/path` locally, `s3://bucket/key` in AWS. */
export interface ArtefactRef {
  uri: string;
  sha256Hex: string;
  size: number;
}

export interface ResolvedRecipe {
  name: string;
  /** The image the build starts from (`baseImage` in recipe.yml; part of the bake key). Set by every resolve. */
  baseImage?: string;
  runtime: string;
  architecture: 'x86_64' | 'arm64';
  /** Component documents, relative to the recipe directory, with their SHA-256. */
  documents: Array<{ path: string; sha256Hex: string }>;
  /** Parameter values after the spec's overrides. */
  parameters: Record<string, string>;
  /** SHA-256 over every file of the recipe but recipe.yml (documents and the files they install). */
  contentSha256Hex: string;
}

export interface ResolvedFunction {
  name: string;
  handler: string;
  memorySize: number;
  timeout: number;
  environment: Record<string, string>;
  alias: string;
  /** The function's code, zipped reproducibly and staged as an artefact. */
  code: ArtefactRef & {
    sha256Base64: string;
    /** Bytes once extracted (Lambda's 250 MB limit); absent in bakes resolved before it was recorded. */
    unzippedSize?: number;
  };
}

/** Output of ResolveBake, kept at `$.bake` for the whole execution. */
export interface ResolvedBake {
  bakeId: string;
  requestedAt: string;
  trigger: Trigger;
  rebuild: boolean;
  spec: BakeSpec;
  recipe: ResolvedRecipe;
  functions: ResolvedFunction[];
  approval: { timeoutSeconds: number; approvers: string[] };
  /** The bake key of `recipe` (src/cores/image.ts). Set by every resolve. */
  bakeKey?: string;
  /**
   * A scheduled bake whose bake key and function code equal those of the releases live
   * now: it ends as "up to date", publishing nothing and asking nobody. Set by every resolve.
   */
  upToDate?: boolean;
  /** The bakes whose live releases it equals, when up to date (empty otherwise). Set by every resolve. */
  upToDateWith?: string[];
  /** The pins a scheduled bake moved to the newest patch (empty for other bakes). Set by every resolve. */
  patched?: PatchChange[];
}

/** A pin a scheduled bake moved: `parameters.NodeVersion` or `baseImage`, from what to what. */
export interface PatchChange {
  field: string;
  from: string | null;
  to: string;
}

export interface BuildRecord {
  recipe: string;
  bakeKey: string;
  documents: Array<{ path: string; sha256Hex: string }>;
  parameters: Record<string, string>;
  sources: Record<string, string>;
  tools: Record<string, string>;
  startedAt: string;
  finishedAt: string;
}

/** Output of BuildImage (`$.image`), sent through the task token when the build completes. */
export interface BuiltImage {
  bakeKey: string;
  cacheHit: boolean;
  imageArn: string | null;
  /** The runtime tree that becomes the layer's content. */
  runtime: ArtefactRef;
  buildRecord: BuildRecord;
}

export interface LayerVersionInfo {
  name: string;
  arn: string;
  version: number;
  /** Base64 SHA-256 of the zip, as Lambda reports it. */
  codeSha256: string;
  size: number;
}

/** Output of PublishLayer (`$.layer`). */
export interface PublishedLayer extends LayerVersionInfo {
  sha256Hex: string;
  unzippedSize: number;
  reused: boolean;
}

export interface PublishedFunctionVersion {
  name: string;
  version: string;
  codeSha256: string;
  alias: string;
}

/** Output of PublishVersion (`$.versions`). */
export interface PublishedVersions {
  functions: PublishedFunctionVersion[];
}

export interface CaseReport {
  name: string;
  passed: boolean;
  durationMs: number;
  /** Why it failed: a readable diff or the error; null when it passed. */
  failure: string | null;
}

export interface FunctionValidationReport {
  name: string;
  version: string;
  passed: boolean;
  initDurationMs: number | null;
  initError: string | null;
  cases: CaseReport[];
  /**
   * The immutability check: the cases run again with no network at all. `checked`
   * false means it could not run here, and `reason` says why; it never passes silently.
   */
  selfContained: { checked: boolean; passed: boolean | null; reason: string | null; cases: CaseReport[] };
}

/** Output of Validate (`$.validation`). */
export interface ValidationReport {
  passed: boolean;
  functions: FunctionValidationReport[];
}

/** Output of RequestApproval (`$.approval`), sent through the task token when decided. */
export interface ApprovalResult {
  approvalId: string;
  decision: 'approved';
  by: string;
  at: string;
}

export interface AliasMove {
  name: string;
  alias: string;
  from: string | null;
  to: string;
  changed: boolean;
}

/** One traffic step of a gradual release: `weight` percent on the new version for `seconds`. */
export interface TrafficStep {
  weight: number;
  seconds: number;
}

/**
 * A gradual release under way: each alias stays on its previous version (`from`) and
 * sends `steps[step].weight` percent to the new one (`to`) through its routing weights,
 * until the last step's wait is over and the alias moves to `to` outright (`done`).
 */
export interface GradualRelease {
  /** Index in `steps` of the weight that is live now. */
  step: number;
  steps: TrafficStep[];
  /** CloudWatch alarms checked before every further step; one in ALARM moves everything back. */
  alarms: string[];
  /** How long the state machine waits before the next check (its Wait state's SecondsPath); 0 when done. */
  waitSeconds: number;
  done: boolean;
  /** The aliases being shifted, with the revision of bakery's last move: the next move's compare-and-swap. */
  functions: Array<{ name: string; alias: string; from: string; to: string; revisionId: string }>;
}

/** Output of Release (`$.release`), and of each ShiftTraffic step. */
export interface ReleaseResult {
  functions: AliasMove[];
  /** Null when everything moved at once (no `release.steps` in the spec, or nothing to shift from). */
  gradual: GradualRelease | null;
}

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
