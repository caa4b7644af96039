/** What starts bakes outside the CLI: the S3 upload rule and the patch-rebuild schedule. */
import type { BakeRequest } from '../state.ts';

/**
 * Starts executions of the bake state machine by name (Step Functions StartExecution in AWS).
 *
 * Only an AWS adapter: a local bake is run in-process by the CLI (src/local/runner.ts), not started by name.
 */
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

/**
 * The bake sources in the source bucket (S3 ListObjectVersions in AWS).
 *
 * Only an AWS adapter: the patch-rebuild schedule lists the S3 source bucket; locally a bake names its spec file.
 */
export interface SourceCatalog {
  /** The current version of every object under `prefix` whose key ends in `.zip`; deleted ones are left out. */
  latest(bucket: string, prefix: string): Promise<SourceObject[]>;
}
