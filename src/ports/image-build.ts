/** Building the runtime image: EC2 Image Builder in AWS, the AWSTOE executor locally. */

import type { ArtefactRef, BuiltImage, ResolvedRecipe } from '../state.ts';
import type { TaskCallbacks } from './callbacks.ts';

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

/**
 * Task tokens of running image builds, by build id (a DynamoDB item in AWS).
 *
 * Only an AWS adapter: locally the image build runs in the process that waits on it and settles the token itself, so there is no event to match to a token.
 */
export interface ImageBuildTokens {
  find(buildId: string): Promise<ImageBuildTicket | undefined>;
  /** Mark the ticket done before resuming; false when it already was (a duplicate event). */
  markDone(buildId: string, done: { status: string; at: string; claim: string }): Promise<boolean>;
  /** Undo {@link markDone} of `claim`, so a retry can resume the task after all. */
  release(buildId: string, claim: string): Promise<void>;
}

/**
 * What a finished image build left behind (the zipped runtime tree its test phase uploaded).
 *
 * Only an AWS adapter: a local build hands its runtime tree straight to the token; only Image Builder leaves outputs to be looked up afterwards.
 */
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
  /** Note that `bakeId` took the cached build of `bakeKey`, so prune keeps it while that bake runs. */
  use(bakeKey: string, bakeId: string): Promise<void>;
}

/** An image build bakery ran (an Image Builder image in AWS), with what it left that costs money. */
export interface BuiltImageResource {
  /** The image build version ARN. */
  arn: string;
  /** The recipe version it was built from. */
  recipeArn: string;
  bakeId: string | null;
  bakeKey: string | null;
  /** Its AMIs, each with its snapshots, and whether it carries bakery's tags (what deletion is scoped by). */
  amis: Array<{ id: string; snapshots: string[]; tagged: boolean }>;
  /** The bake's own distribution configuration, deleted with it; null when it had none. */
  distributionArn: string | null;
}

/**
 * The image builds and per-key recipe versions bakery created, for `bakery prune`
 * (Image Builder and EC2 in AWS; a local build has none).
 */
export interface ImageInventory {
  images(): Promise<BuiltImageResource[]>;
  /** The per-key recipe versions. */
  recipes(): Promise<Array<{ arn: string; bakeKey: string | null }>>;
  /** The bakes that took the cached build of `bakeKey` (a cache hit records its bake). */
  cacheUsers(bakeKey: string): Promise<{ imageArn: string | null; bakeIds: string[] }>;
  /** Deregister its tagged AMIs, delete their snapshots, its distribution configuration and the image. */
  deleteImage(image: BuiltImageResource): Promise<void>;
  deleteRecipe(arn: string): Promise<void>;
}
