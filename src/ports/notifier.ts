/** Telling people what happens (Slack in AWS, the terminal locally), and the drift report it is told about. */

import type { Json } from '../state.ts';
import type { ApprovalMessage, ApprovalRecord } from './approval.ts';

/**
 * Block Kit action ids of the Approve and Reject buttons: the contract between the
 * message the Slack adapter posts and the callback core that reads the click.
 */
export const APPROVE_ACTION = 'bakery_approve';
export const REJECT_ACTION = 'bakery_reject';

/** Tells the person who clicked why nothing happened (an ephemeral message only they see). */
export interface ClickReplies {
  tell(to: { channel: string; user: string }, text: string): Promise<void>;
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
  /**
   * An approved release did not happen because what is live moved since the approval was
   * asked for (`reason` says what): show that it went stale, on the request's own message.
   */
  approvalStale(record: ApprovalRecord, reason: string): Promise<void>;
  bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void>;
  /** What is live differs from the release manifests (the scheduled drift check). */
  driftFound(report: DriftReport): Promise<void>;
}
