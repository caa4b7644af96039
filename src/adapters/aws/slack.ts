import { getParameter } from '@aws-lambda-powertools/parameters/ssm';
import {
  type ChatPostMessageArguments,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
  type WebClientOptions,
} from '@slack/web-api';
import { BakeryError, TransientBackendError } from '../../errors.ts';
import type { ApprovalRecord, DriftReport, Notifier } from '../../ports.ts';
import { resolveSetting, type Setting } from './config.ts';

type Blocks = Extract<ChatPostMessageArguments, { blocks: unknown }>['blocks'];

/** Reads the bot token; by default from SSM through Powertools, decrypted and cached for five minutes. */
export type TokenSource = (parameterName: string) => Promise<string | undefined>;

const ssmToken: TokenSource = (name) => getParameter(name, { decrypt: true, maxAge: 300 });

const AUTH_ERRORS = new Set(['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive', 'no_permission']);
const CHANNEL_ERRORS = new Set(['channel_not_found', 'not_in_channel', 'is_archived']);

/** Block Kit action ids of the approval buttons; the interaction handler matches on them. */
export const APPROVE_ACTION = 'bakery_approve';
export const REJECT_ACTION = 'bakery_reject';

/** Slack's mrkdwn control characters. */
const esc = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

const cut = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** Slack user ids render as mentions; anything else (a name) as text. */
const person = (who: string): string => (/^[UW][A-Z0-9]{2,}$/.test(who) ? `<@${who}>` : esc(who));

/** The Block Kit message of an approval request. The buttons carry the approval id only, never the task token. */
export function approvalBlocks(record: ApprovalRecord): Blocks {
  const s = record.summary;
  const functions = s.functions
    .map(
      (f) =>
        `• *${esc(f.name)}* \`${esc(f.alias)}\`: ${f.live === null ? 'no live version' : `version ${f.live}`} → *version ${f.version}*`,
    )
    .join('\n');
  const expires = Math.floor(Date.parse(record.expiresAt) / 1000);
  return [
    { type: 'header', text: { type: 'plain_text', text: cut(`Release approval: ${record.bakeId}`, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: cut(functions || '(no functions)', 3000) } },
    {
      type: 'section',
      fields: [
        { type: 'mrkdwn', text: cut(`*Runtime*\n${esc(s.runtime)}`, 2000) },
        {
          type: 'mrkdwn',
          text: `*Validation*\n${s.validation.passed ? ':white_check_mark: passed' : ':x: FAILED'} (${s.validation.cases} cases)`,
        },
        { type: 'mrkdwn', text: cut(`*Layer*\n\`${esc(s.layer.arn)}\``, 2000) },
        { type: 'mrkdwn', text: `*Layer SHA-256*\n\`${esc(s.layer.sha256Hex)}\`` },
        { type: 'mrkdwn', text: `*Expires*\n<!date^${expires}^{date_short_pretty} {time}|${esc(record.expiresAt)}>` },
        {
          type: 'mrkdwn',
          text: cut(`*Approvers*\n${record.approvers.length ? record.approvers.map(person).join(' ') : 'anyone in this channel'}`, 2000),
        },
      ],
    },
    {
      type: 'actions',
      block_id: 'bakery_approval',
      elements: [
        {
          type: 'button',
          action_id: APPROVE_ACTION,
          style: 'primary',
          text: { type: 'plain_text', text: 'Approve' },
          value: record.id,
          confirm: {
            title: { type: 'plain_text', text: 'Release?' },
            text: { type: 'mrkdwn', text: cut(`Move the aliases of bake *${esc(record.bakeId)}* to the new versions.`, 300) },
            confirm: { type: 'plain_text', text: 'Release' },
            deny: { type: 'plain_text', text: 'Cancel' },
          },
        },
        { type: 'button', action_id: REJECT_ACTION, style: 'danger', text: { type: 'plain_text', text: 'Reject' }, value: record.id },
      ],
    },
    {
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `approval \`${esc(record.id)}\` · digest \`${esc(record.digest.slice(0, 16))}\`` }],
    },
  ];
}

/**
 * Tells the release channel in Slack. The WebClient is built on first use, with the bot
 * token read from SSM (never from a plain environment variable); a rotated token is
 * picked up when the Powertools cache expires.
 */
export class SlackNotifier implements Notifier {
  private readonly channel: Setting;
  private readonly tokenParameter: Setting;
  private readonly readToken: TokenSource;
  private readonly clientOptions: WebClientOptions;
  private client: { token: string; web: WebClient } | undefined;

  constructor(options: { channel: Setting; tokenParameter: Setting; readToken?: TokenSource; clientOptions?: WebClientOptions }) {
    this.channel = options.channel;
    this.tokenParameter = options.tokenParameter;
    this.readToken = options.readToken ?? ssmToken;
    // Slack's default retries for half an hour; a Lambda must give up well before its timeout
    // and let the ASL retry, so: two retries, a 10 s timeout, and 429s surface at once.
    this.clientOptions = {
      retryConfig: { retries: 2, maxTimeout: 2000 },
      timeout: 10_000,
      rejectRateLimitedCalls: true,
      ...options.clientOptions,
    };
  }

  async approvalRequested(record: ApprovalRecord): Promise<void> {
    const s = record.summary;
    await this.post(
      `Approval requested for bake ${record.bakeId}: ${s.functions.map((f) => `${f.name} → version ${f.version}`).join(', ')}`,
      approvalBlocks(record),
    );
  }

  async approvalDecided(record: ApprovalRecord): Promise<void> {
    const d = record.decision;
    if (!d) return;
    const icon = d.outcome === 'approved' ? ':white_check_mark:' : ':no_entry:';
    const text = `${icon} Bake *${esc(record.bakeId)}* ${d.outcome} by ${person(d.by)}${d.reason ? `: ${esc(d.reason)}` : ''}`;
    await this.post(cut(text, 3000));
  }

  async bakeFailed(failure: { bakeId: string | null; state: string; error: string; cause: string }): Promise<void> {
    const head = `:x: Bake *${esc(failure.bakeId ?? '(unresolved)')}* failed in *${esc(failure.state)}*: \`${esc(failure.error)}\``;
    const text = failure.cause ? `${head}\n\`\`\`${esc(cut(failure.cause, 2500))}\`\`\`` : head;
    await this.post(text);
  }

  async driftFound(report: DriftReport): Promise<void> {
    const drifted = report.functions.filter((f) => f.differences.length > 0);
    const lines = drifted.map(
      (f) =>
        `• *${esc(f.name)}* \`${esc(f.alias)}\` (bake ${esc(f.bakeId ?? 'unknown')}): ${f.differences
          .map((d) => `${esc(d.field)} expected \`${esc(JSON.stringify(d.expected))}\`, live \`${esc(JSON.stringify(d.live))}\``)
          .join('; ')}`,
    );
    await this.post(cut(`:warning: Drift: what is live differs from the release manifests\n${lines.join('\n')}`, 3000));
  }

  private async post(text: string, blocks?: Blocks): Promise<void> {
    const channel = resolveSetting(this.channel);
    const web = await this.web();
    try {
      await web.chat.postMessage({ channel, text, ...(blocks ? { blocks } : {}) });
    } catch (error) {
      throw this.explain(error, channel);
    }
  }

  private async web(): Promise<WebClient> {
    const parameter = resolveSetting(this.tokenParameter);
    let token: string | undefined;
    try {
      token = await this.readToken(parameter);
    } catch (cause) {
      throw new BakeryError(`cannot read the Slack bot token from SSM parameter ${parameter}: ${(cause as Error).message}`, { cause });
    }
    if (!token) throw new BakeryError(`SSM parameter ${parameter} holds no Slack bot token`);
    if (this.client?.token !== token) this.client = { token, web: new WebClient(token, this.clientOptions) };
    return this.client.web;
  }

  private explain(error: unknown, channel: string): unknown {
    if (error instanceof WebAPIPlatformError) {
      const code = error.data.error;
      const parameter = resolveSetting(this.tokenParameter);
      if (AUTH_ERRORS.has(code)) {
        return new BakeryError(`Slack rejected the bot token (${code}): check the SSM parameter ${parameter}`, {
          cause: error,
          hint: `Put a valid bot token (xoxb-…) in ${parameter} as a SecureString.`,
        });
      }
      if (code === 'missing_scope') {
        return new BakeryError('Slack refused the post (missing_scope): the bot token needs the chat:write scope', { cause: error });
      }
      if (CHANNEL_ERRORS.has(code)) {
        return new BakeryError(`Slack cannot post to channel ${channel} (${code}): invite the bot to the channel or fix SLACK_CHANNEL`, {
          cause: error,
        });
      }
      return new BakeryError(`Slack refused chat.postMessage (${code})`, { cause: error });
    }
    if (
      error instanceof WebAPIRateLimitedError ||
      error instanceof WebAPIRequestError ||
      (error instanceof WebAPIHTTPError && error.statusCode >= 500)
    ) {
      return new TransientBackendError(`Slack is unreachable or busy: ${error.message}`, { cause: error });
    }
    return error;
  }
}
