/** Lambda: layer versions, function versions and aliases, and running a published version (Lambda in AWS, the state directory and the local Runtime API locally). */
import type { Json, LayerVersionInfo } from '../state.ts';

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
  /**
   * Publish a version; `reused` is true when the registry handed back an existing version
   * with the same bytes instead (the local registry does, under its lock, for a bake that
   * lost a race; Lambda always makes a new version).
   */
  publish(input: LayerPublishInput): Promise<LayerVersionInfo & { reused?: boolean }>;
  get(arn: string): Promise<LayerVersionInfo | undefined>;
  /** The version with its compatible runtimes and architectures; undefined when there is no such version. */
  describe(arn: string): Promise<LayerVersionDetails | undefined>;
  /** Write the version's zip to `file` (downloaded from Lambda in AWS); false when there is no such version. */
  download(arn: string, file: string): Promise<boolean>;
  /** Every version the layer has now; empty when there is no such layer. */
  listVersions(name: string): Promise<Array<{ name: string; arn: string; version: number }>>;
  /** Delete one version (gone already is fine). A deleted version's number is never given out again. */
  deleteVersion(arn: string): Promise<void>;
  /**
   * Run `fn` under the lock that publishing (or reusing) a version of layer `name` takes,
   * so a deletion that re-checks under it cannot race a bake about to reuse the version.
   * Local only: Lambda has no such lock (see docs/releases.md for what prune relies on there).
   */
  withPublishLock?<T>(name: string, fn: () => Promise<T>): Promise<T>;
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
  /** MB of memory and seconds of timeout the version runs with (set by every registry; optional for older fakes). */
  memorySize?: number;
  timeout?: number;
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
  /** Run `fn` under the lock that publishing (or reusing) a version of function `name` takes; local only, as for layers. */
  withPublishLock?<T>(name: string, fn: () => Promise<T>): Promise<T>;
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
