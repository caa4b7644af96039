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
import type { ApprovalMessage, ApprovalRecord } from '../../ports/approval.ts';
import { APPROVE_ACTION, type ClickReplies, type DriftReport, type Notifier, REJECT_ACTION } from '../../ports/notifier.ts';
import { resolveSetting, type Setting } from './config.ts';

type Blocks = Extract<ChatPostMessageArguments, { blocks: unknown }>['blocks'];

/** Reads a secret by name; by default from SSM through Powertools, decrypted and cached for five minutes. */
export type TokenSource = (parameterName: string) => Promise<string | undefined>;

/** A SecureString from SSM Parameter Store, decrypted, cached five minutes (a rotated value is picked up then). */
export const ssmSecret: TokenSource = async (name) => {
  // Imported on first use: the local backend posts through this adapter too (with its own
  // token source), and must not load the AWS SDK's SSM client for it.
  const { getParameter } = await import('@aws-lambda-powertools/parameters/ssm');
  return getParameter(name, { decrypt: true, maxAge: 300 });
};

/**
 * The Slack app's signing secret, read on each use through `read` (cached by Powertools
 * in AWS). Fails clearly when it cannot be read or is empty.
 */
export function signingSecretFrom(parameter: Setting, read: TokenSource = ssmSecret, label = 'SSM parameter'): () => Promise<string> {
  return async () => {
    const name = resolveSetting(parameter);
    let secret: string | undefined;
    try {
      secret = await read(name);
    } catch (cause) {
      throw new BakeryError(`cannot read the Slack signing secret from ${label} ${name}: ${(cause as Error).message}`, { cause });
    }
    if (!secret) throw new BakeryError(`${label} ${name} holds no Slack signing secret`);
    return secret;
  };
}

const AUTH_ERRORS = new Set(['invalid_auth', 'not_authed', 'token_revoked', 'token_expired', 'account_inactive', 'no_permission']);
const CHANNEL_ERRORS = new Set(['channel_not_found', 'not_in_channel', 'is_archived']);

/** Block Kit action ids of the approval buttons; the interaction handler (src/cores/slack-callback.ts) matches on them. */
export { APPROVE_ACTION, REJECT_ACTION };

/** Slack errors on updating a message that is gone or not ours: post a new one instead. */
const UPDATE_GONE = new Set(['message_not_found', 'cant_update_message', 'edit_window_closed']);

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

const slackDate = (iso: string): string => `<!date^${Math.floor(Date.parse(iso) / 1000)}^{date_short_pretty} {time}|${esc(iso)}>`;

/** One line saying how an approval ended: what, who, when (and why). */
export function decisionText(record: ApprovalRecord): string {
  const d = record.decision;
  if (!d) return '';
  if (d.outcome === 'expired') {
    return `:hourglass: *Expired* ${slackDate(d.at)}: nobody decided in time, so nothing was released.`;
  }
  const icon = d.outcome === 'approved' ? ':white_check_mark: *Approved*' : ':no_entry: *Rejected*';
  return cut(`${icon} by ${person(d.by)} ${slackDate(d.at)}${d.reason ? `: ${esc(d.reason)}` : ''}`, 3000);
}

/** The request's message once decided: the same summary, the buttons replaced by the outcome. */
export function decidedBlocks(record: ApprovalRecord): Blocks {
  const blocks = approvalBlocks(record).filter((b) => b.type !== 'actions');
  const context = blocks.findIndex((b) => b.type === 'context');
  blocks.splice(context < 0 ? blocks.length : context, 0, { type: 'section', text: { type: 'mrkdwn', text: decisionText(record) } });
  return blocks;
}

/**
 * Tells the release channel in Slack. The WebClient is built on first use, with the bot
 * token read from SSM (never from a plain environment variable); a rotated token is
 * picked up when the Powertools cache expires.
 */
export class SlackNotifier implements Notifier, ClickReplies {
  private readonly channel: Setting;
  private readonly tokenParameter: Setting;
  private readonly tokenLabel: string;
  private readonly readToken: TokenSource;
  private readonly clientOptions: WebClientOptions;
  private readonly maxRateLimitWaitSeconds: number;
  private readonly rateLimitRetries: number;
  private client: { token: string; web: WebClient } | undefined;

  constructor(options: {
    channel: Setting;
    tokenParameter: Setting;
    readToken?: TokenSource;
    /** What `tokenParameter` names, for error messages: `SSM parameter` (AWS) or `environment variable` (local). */
    tokenLabel?: string;
    clientOptions?: WebClientOptions;
    /** A rate limit is waited out, and the call retried, when Slack asks for at most this long (default 10 s). */
    maxRateLimitWaitSeconds?: number;
    /** How many rate limits in a row one call waits out (default 2). */
    rateLimitRetries?: number;
  }) {
    this.channel = options.channel;
    this.tokenParameter = options.tokenParameter;
    this.tokenLabel = options.tokenLabel ?? 'SSM parameter';
    this.readToken = options.readToken ?? ssmSecret;
    this.maxRateLimitWaitSeconds = options.maxRateLimitWaitSeconds ?? 10;
    this.rateLimitRetries = options.rateLimitRetries ?? 2;
    // Slack's default retries for half an hour; a Lambda must give up well before its timeout
    // and let the ASL retry, so: two retries, a 10 s timeout, and 429s handed to `call`,
    // which waits out a short Retry-After itself and surfaces a long one at once.
    this.clientOptions = {
      retryConfig: { retries: 2, maxTimeout: 2000 },
      timeout: 10_000,
      ...options.clientOptions,
      rejectRateLimitedCalls: true,
    };
  }

  /** Posts the request, or updates the message it posted before (a retried request); says where it is. */
  async approvalRequested(record: ApprovalRecord): Promise<ApprovalMessage | null> {
    const s = record.summary;
    const text = `Approval requested for bake ${record.bakeId}: ${s.functions.map((f) => `${f.name} → version ${f.version}`).join(', ')}`;
    const blocks = approvalBlocks(record);
    if (record.message && (await this.update(record.message, text, blocks))) return record.message;
    return this.post(text, blocks);
  }

  /** Updates the request's message to show the outcome, who decided and when (a new message when there is none). */
  async approvalDecided(record: ApprovalRecord): Promise<void> {
    const d = record.decision;
    if (!d) return;
    if (record.message && (await this.update(record.message, cut(`Bake ${record.bakeId}: ${d.outcome}`, 3000), decidedBlocks(record))))
      return;
    if (d.outcome === 'expired') {
      await this.post(cut(`:hourglass: Bake *${esc(record.bakeId)}*: the approval expired; nothing was released`, 3000));
      return;
    }
    const icon = d.outcome === 'approved' ? ':white_check_mark:' : ':no_entry:';
    const text = `${icon} Bake *${esc(record.bakeId)}* ${d.outcome} by ${person(d.by)}${d.reason ? `: ${esc(d.reason)}` : ''}`;
    await this.post(cut(text, 3000));
  }

  /**
   * The request's message once an approved release went stale (what is live moved while
   * it waited): the summary, the outcome, and why nothing was released.
   */
  async approvalStale(record: ApprovalRecord, reason: string): Promise<void> {
    const text = cut(`:warning: *Stale*: approved, but nothing was released: ${esc(reason)}`, 3000);
    const blocks = decidedBlocks(record);
    const context = blocks.findIndex((b) => b.type === 'context');
    blocks.splice(context < 0 ? blocks.length : context, 0, { type: 'section', text: { type: 'mrkdwn', text } });
    if (record.message && (await this.update(record.message, cut(`Bake ${record.bakeId}: approval stale`, 3000), blocks))) return;
    await this.post(cut(`:warning: Bake *${esc(record.bakeId)}*: the approval went stale, nothing was released: ${esc(reason)}`, 3000));
  }

  /** An ephemeral message only `to.user` sees: why their click changed nothing. */
  async tell(to: { channel: string; user: string }, text: string): Promise<void> {
    await this.call('chat.postEphemeral', to.channel, (web) => web.chat.postEphemeral({ channel: to.channel, user: to.user, text }));
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

  private async post(text: string, blocks?: Blocks): Promise<ApprovalMessage | null> {
    const channel = resolveSetting(this.channel);
    const out = await this.call('chat.postMessage', channel, (web) =>
      web.chat.postMessage({ channel, text, ...(blocks ? { blocks } : {}) }),
    );
    return out.channel && out.ts ? { channel: out.channel, ts: out.ts } : null;
  }

  /** Replace a message's content; false when it is gone or can no longer be edited. */
  private async update(message: ApprovalMessage, text: string, blocks: Blocks): Promise<boolean> {
    try {
      await this.call('chat.update', message.channel, (web) => web.chat.update({ channel: message.channel, ts: message.ts, text, blocks }));
      return true;
    } catch (error) {
      if (error instanceof BakeryError && error.cause instanceof WebAPIPlatformError && UPDATE_GONE.has(error.cause.data.error))
        return false;
      throw error;
    }
  }

  /**
   * One Web API call, with its errors explained. A rate limit (HTTP 429) is waited out
   * for exactly the Retry-After Slack names and the call retried, when that is short
   * enough for a Lambda; a longer one is a TransientBackendError for the ASL to retry.
   */
  private async call<T>(method: string, channel: string, send: (web: WebClient) => Promise<T>): Promise<T> {
    const web = await this.web();
    for (let attempt = 0; ; attempt++) {
      try {
        return await send(web);
      } catch (error) {
        if (
          error instanceof WebAPIRateLimitedError &&
          attempt < this.rateLimitRetries &&
          error.retryAfter <= this.maxRateLimitWaitSeconds
        ) {
          await new Promise((resolve) => setTimeout(resolve, error.retryAfter * 1000));
          continue;
        }
        throw this.explain(error, channel, method);
      }
    }
  }

  private async web(): Promise<WebClient> {
    const parameter = resolveSetting(this.tokenParameter);
    let token: string | undefined;
    try {
      token = await this.readToken(parameter);
    } catch (cause) {
      throw new BakeryError(`cannot read the Slack bot token from ${this.tokenLabel} ${parameter}: ${(cause as Error).message}`, { cause });
    }
    if (!token) throw new BakeryError(`${this.tokenLabel} ${parameter} holds no Slack bot token`);
    if (this.client?.token !== token) this.client = { token, web: new WebClient(token, this.clientOptions) };
    return this.client.web;
  }

  private explain(error: unknown, channel: string, method: string): unknown {
    if (error instanceof WebAPIPlatformError) {
      const code = error.data.error;
      const parameter = resolveSetting(this.tokenParameter);
      if (AUTH_ERRORS.has(code)) {
        return new BakeryError(`Slack rejected the bot token (${code}): check the ${this.tokenLabel} ${parameter}`, {
          cause: error,
          hint: `Put a valid bot token (xoxb-…) in ${this.tokenLabel} ${parameter}${this.tokenLabel === 'SSM parameter' ? ' as a SecureString' : ''}.`,
        });
      }
      if (code === 'missing_scope') {
        return new BakeryError(`Slack refused ${method} (missing_scope): the bot token needs the chat:write scope`, { cause: error });
      }
      if (CHANNEL_ERRORS.has(code)) {
        return new BakeryError(`Slack cannot post to channel ${channel} (${code}): invite the bot to the channel or fix SLACK_CHANNEL`, {
          cause: error,
        });
      }
      return new BakeryError(`Slack refused ${method} (${code})`, { cause: error });
    }
    if (
      error instanceof WebAPIRateLimitedError ||
      error instanceof WebAPIRequestError ||
      (error instanceof WebAPIHTTPError && error.statusCode >= 500)
    ) {
      const wait = error instanceof WebAPIRateLimitedError ? ` (rate limited: retry after ${error.retryAfter} s)` : '';
      return new TransientBackendError(`Slack is unreachable or busy on ${method}${wait}: ${error.message}`, { cause: error });
    }
    return error;
  }
}
