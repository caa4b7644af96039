/** Storage: the artefacts passed between states and the append-only ledger of releases, failures and rollbacks. */
import type { AliasMove, ArtefactRef, Trigger } from '../state.ts';

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
