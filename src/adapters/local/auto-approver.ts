import type { ApprovalMessage, ApprovalRecord } from '../../ports/approval.ts';
import type { DriftReport, Notifier } from '../../ports/notifier.ts';

/**
 * The approver of `bakery bake --approve` (CI, the demo): a notifier that tells the
 * approvers as the one it wraps does, then decides at once, when asked. The decision
 * itself (`decide`, the approval core in the local composition) goes through the same
 * decide-once path as `bakery approve`, so a bake approved this way is recorded alike.
 */
export class AutoApprovingNotifier implements Notifier {
  private readonly inner: Notifier;
  private readonly decide: (record: ApprovalRecord, message: ApprovalMessage | null) => Promise<void>;

  /** `decide` gets where the request was posted, so that the decision can update that message. */
  constructor(inner: Notifier, decide: (record: ApprovalRecord, message: ApprovalMessage | null) => Promise<void>) {
    this.inner = inner;
    this.decide = decide;
  }

  async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    const message = await this.inner.approvalRequested(record);
    await this.decide(record, message);
    return message;
  }

  approvalDecided(record: ApprovalRecord): Promise<void> {
    return this.inner.approvalDecided(record);
  }

  approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    return this.inner.approvalStale(record, reason);
  }

  bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    return this.inner.bakeFailed(failure);
  }

  driftFound(report: DriftReport): Promise<void> {
    return this.inner.driftFound(report);
  }
}
