import type { ApprovalMessage, ApprovalRecord } from '../../ports/approval.ts';
import type { DriftReport, Notifier } from '../../ports/notifier.ts';

/**
 * A notifier made on its first use: with Slack configured locally, the Slack client (and
 * the AWS SDK pieces under it) load only once a bake has something to say, so a bake that
 * ends up to date, or a command that never notifies, does not pay for them.
 */
export class LazyNotifier implements Notifier {
  private readonly make: () => Promise<Notifier>;
  private made: Promise<Notifier> | undefined;

  constructor(make: () => Promise<Notifier>) {
    this.make = make;
  }

  private notifier(): Promise<Notifier> {
    this.made ??= this.make();
    return this.made;
  }

  async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    return (await this.notifier()).approvalRequested(record);
  }

  async approvalDecided(record: ApprovalRecord): Promise<void> {
    await (await this.notifier()).approvalDecided(record);
  }

  async approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    await (await this.notifier()).approvalStale(record, reason);
  }

  async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    await (await this.notifier()).bakeFailed(failure);
  }

  async driftFound(report: DriftReport): Promise<void> {
    await (await this.notifier()).driftFound(report);
  }
}
