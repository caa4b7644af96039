/** The approval gate's records (DynamoDB in AWS, the state directory locally). */

export interface ApprovalDecision {
  /** `expired`: nobody decided in time; RecordFailure writes it (by `bakery`) so that a late click changes nothing. */
  outcome: 'approved' | 'rejected' | 'expired';
  by: string;
  at: string;
  reason: string | null;
  /**
   * How `by` is known, for decisions from the CLI: `aws-sts`, the caller's ARN as STS verified it
   * (`--backend aws`); `self-asserted`, the name given with `--by` (local backend). Absent for a
   * Slack click (a member id, authenticated by the request signature) and for expiry.
   */
  identity?: 'aws-sts' | 'self-asserted';
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
    /**
     * Per function: the version asked for, and the alias as it is live (`live`, with its
     * routing weights and revision: what the approval binds; the last two are absent in
     * records made before approvals were bound).
     */
    functions: Array<{
      name: string;
      version: string;
      alias: string;
      live: string | null;
      liveWeights?: Record<string, number>;
      liveRevisionId?: string | null;
    }>;
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
