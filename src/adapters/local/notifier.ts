import type { ApprovalMessage, ApprovalRecord } from '../../ports/approval.ts';
import type { DriftReport, Notifier } from '../../ports/notifier.ts';
import { bakeryCommand } from '../../util/self-command.ts';

/** The local stand-in for Slack: approval requests and outcomes printed to the terminal. */
export class TerminalNotifier implements Notifier {
  private readonly write: (line: string) => void;
  private readonly waitingHint: boolean;

  constructor(write: (line: string) => void, options: { waitingHint?: boolean } = {}) {
    this.write = write;
    this.waitingHint = options.waitingHint ?? true;
  }

  async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    const lines = [
      `  ┌ approval requested for bake ${record.bakeId} (${record.id})`,
      ...record.summary.functions.map((f) => `  │ ${f.name}: ${f.alias} ${f.live ?? '(none)'} → version ${f.version}`),
      `  │ runtime ${record.summary.runtime}`,
      `  │ layer ${record.summary.layer.arn}`,
      `  │   sha256 ${record.summary.layer.sha256Hex}`,
      `  │ validation: ${record.summary.validation.passed ? 'passed' : 'FAILED'} (${record.summary.validation.cases} cases)`,
      `  │ expires ${record.expiresAt}${record.approvers.length ? `; approvers: ${record.approvers.join(', ')}` : ''}`,
    ];
    if (this.waitingHint) {
      const bakery = bakeryCommand();
      lines.push(
        `  │ decide from another terminal:  ${bakery} approve ${record.bakeId}`,
        `  │                             or ${bakery} reject ${record.bakeId} --reason "…"`,
      );
    }
    lines.push('  └');
    for (const line of lines) this.write(line);
    return null;
  }

  async approvalDecided(record: ApprovalRecord): Promise<void> {
    const d = record.decision;
    if (!d) return;
    if (d.outcome === 'expired') this.write(`  approval expired at ${d.at}: nobody decided in time`);
    else this.write(`  ${d.outcome} by ${d.by} at ${d.at}${d.reason ? `: ${d.reason}` : ''}`);
  }

  async approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    this.write(`  approval ${record.id} of bake ${record.bakeId} went stale, nothing was released: ${reason}`);
  }

  async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    this.write(`  bake ${failure.bakeId ?? '(unresolved)'} failed in ${failure.state}: ${failure.error}`);
  }

  async driftFound(report: DriftReport): Promise<void> {
    for (const f of report.functions.filter((fn) => fn.differences.length > 0)) {
      this.write(
        `  drift: ${f.name}:${f.alias} differs from bake ${f.bakeId ?? '(unknown)'} (${f.differences.map((d) => d.field).join(', ')})`,
      );
    }
  }
}
