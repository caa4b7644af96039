import type { ApprovalMessage, ApprovalRecord } from '../../ports/approval.ts';
import type { ClickReplies } from '../../ports/notifier.ts';
import { SlackNotifier } from '../aws/slack.ts';
import { TerminalNotifier } from './notifier.ts';
import { LOCAL_ENV_FILE, type LocalSlackSettings } from './slack-settings.ts';

export { LOCAL_ENV_FILE, type LocalSlackSettings, parseEnvFile, readLocalSlackSettings } from './slack-settings.ts';

/** The Slack notifier of the local backend, when a bot token and a channel are set. */
export function localSlackNotifier(settings: LocalSlackSettings): SlackNotifier | undefined {
  const { botToken, channel, apiUrl } = settings;
  if (!botToken || !channel) return undefined;
  return new SlackNotifier({
    channel,
    tokenParameter: 'SLACK_BOT_TOKEN',
    tokenLabel: `environment variable (or ${LOCAL_ENV_FILE} entry)`,
    readToken: async () => botToken,
    ...(apiUrl ? { clientOptions: { slackApiUrl: apiUrl } } : {}),
  });
}

/** The terminal, and Slack as well: a local bake with Slack configured shows the approval in both. */
export class TerminalAndSlackNotifier extends TerminalNotifier {
  private readonly slack: SlackNotifier;

  constructor(write: (line: string) => void, slack: SlackNotifier, options: { waitingHint?: boolean } = {}) {
    super(write, options);
    this.slack = slack;
  }

  override async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    await super.approvalRequested(record);
    return this.slack.approvalRequested(record);
  }

  override async approvalDecided(record: ApprovalRecord): Promise<void> {
    await super.approvalDecided(record);
    await this.slack.approvalDecided(record);
  }

  override async approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    await super.approvalStale(record, reason);
    await this.slack.approvalStale(record, reason);
  }

  override async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    await super.bakeFailed(failure);
    await this.slack.bakeFailed(failure);
  }
}

/** Replies to a clicker: through Slack when it is configured, else printed (what the clicker would have been told). */
export function localReplies(slack: SlackNotifier | undefined, write: (line: string) => void): ClickReplies {
  return slack ?? { tell: async (to, text) => write(`  → ${to.user}: ${text}`) };
}
