import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { AlreadyDecidedError, ApprovalExpiredError, NotAnApproverError, NotFoundError, NotItsMessageError } from '../errors.ts';
import type { ApprovalRecord, ApprovalStore } from '../ports/approval.ts';
import type { TaskCallbacks } from '../ports/callbacks.ts';
import { APPROVE_ACTION, type ClickReplies, type Notifier, REJECT_ACTION } from '../ports/notifier.ts';
import type { Clock } from '../ports/system.ts';
import { decideApproval } from './approval.ts';

/**
 * The Slack interactivity endpoint as a pure core: the Lambda Function URL handler
 * (`functions/slack-callback/handler.ts`) and the local server (`bakery callback-server`)
 * hand it the raw request and send back what it answers.
 *
 * The order matters: the signature is checked over the raw bytes before anything is
 * parsed; the clicking user is checked against the approvers by `decideApproval`, which
 * also decides once with a conditional write. The button carries only the approval id;
 * the task token never leaves the backend.
 */

/** Slack's replay window: a request whose timestamp is further off than this, either way, is refused. */
export const MAX_CLOCK_SKEW_SECONDS = 5 * 60;

/** Slack wants the HTTP answer within 3 s; the slow part (updating the message) gets what is left of this. */
export const DEFAULT_ANSWER_WITHIN_MS = 2500;

/** Approval ids as `requestApproval` makes them; anything else is not looked up. */
const APPROVAL_ID = /^apr-[A-Za-z0-9_-]{1,64}$/;

export type SignatureCheck = { ok: true } | { ok: false; reason: string };

/** A header by name, whatever its case (Function URLs and Node lower-case them; tests may not). */
function header(headers: Record<string, string | undefined>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === wanted) return value;
  return undefined;
}

/**
 * Verify Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{timestamp}:{raw body}`
 * under the signing secret, compared in constant time, with the timestamp at most five
 * minutes off `now` in either direction (a captured request cannot be replayed later).
 */
export function verifySlackSignature(input: {
  headers: Record<string, string | undefined>;
  rawBody: Buffer;
  signingSecret: string;
  now: Date;
}): SignatureCheck {
  const timestamp = header(input.headers, 'x-slack-request-timestamp');
  const signature = header(input.headers, 'x-slack-signature');
  if (!timestamp || !signature) return { ok: false, reason: 'missing X-Slack-Request-Timestamp or X-Slack-Signature' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed X-Slack-Request-Timestamp' };
  const skew = Math.floor(input.now.getTime() / 1000) - Number(timestamp);
  if (skew > MAX_CLOCK_SKEW_SECONDS) return { ok: false, reason: `stale request (${skew} s old)` };
  if (skew < -MAX_CLOCK_SKEW_SECONDS) return { ok: false, reason: `request from the future (${-skew} s ahead)` };
  const expected = Buffer.from(
    `v0=${createHmac('sha256', input.signingSecret).update(`v0:${timestamp}:`).update(input.rawBody).digest('hex')}`,
    'utf8',
  );
  const given = Buffer.from(signature, 'utf8');
  // The expected length is public (v0= and 64 hex digits); only the content must not leak through timing.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'signature mismatch' };
  return { ok: true };
}

const InteractionSchema = z.object({
  type: z.string(),
  user: z.object({ id: z.string().min(1) }),
  channel: z.object({ id: z.string().min(1) }).optional(),
  container: z.object({ channel_id: z.string().optional(), message_ts: z.string().optional() }).optional(),
  message: z.object({ ts: z.string().optional() }).optional(),
  actions: z.array(z.object({ action_id: z.string(), value: z.string().optional() })).optional(),
});

export type Interaction = z.output<typeof InteractionSchema>;

/** The `payload` form field of an interactive request, parsed; undefined when it is not one. */
export function parseInteraction(rawBody: Buffer): Interaction | undefined {
  const payload = new URLSearchParams(rawBody.toString('utf8')).get('payload');
  if (payload === null) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const parsed = InteractionSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

export interface SlackCallbackDeps {
  approvals: ApprovalStore;
  callbacks: TaskCallbacks;
  /** Updates the request's message with the outcome. */
  notifier: Pick<Notifier, 'approvalDecided'>;
  clock: Clock;
  replies: ClickReplies;
  /** The Slack app's signing secret (SSM in AWS, the environment or `.bakery.env` locally). */
  signingSecret: () => Promise<string>;
  /** Where failures of the background part (message update, reply) are reported. */
  log?: (message: string, detail: Record<string, unknown>) => void;
}

export interface SlackHttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export type RefusalReason = 'already-decided' | 'expired' | 'not-an-approver' | 'unknown-approval' | 'not-its-message' | 'failed';

/** What Slack sends interactive requests as; anything else is refused before it is parsed. */
export const INTERACTION_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/** What became of a request, for the log and the tests. */
export type SlackOutcome =
  | { kind: 'unauthenticated'; reason: string }
  | { kind: 'malformed'; reason: string }
  | { kind: 'ignored'; reason: string }
  | { kind: 'decided'; record: ApprovalRecord }
  | { kind: 'refused'; reason: RefusalReason; approvalId: string; user: string; message: string }
  | { kind: 'unavailable'; reason: string };

export interface SlackCallbackResult {
  response: SlackHttpResponse;
  outcome: SlackOutcome;
  /**
   * The slow part: updating the message and replying to the clicker. The answer waits for
   * it only until `answerWithinMs`; a caller that outlives the answer (the local server,
   * a test) may await the rest. It never rejects.
   */
  followUp: Promise<void>;
}

const answer = (statusCode: number, body = ''): SlackHttpResponse => ({
  statusCode,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
  body,
});

const mention = (who: string): string => (/^[UW][A-Z0-9]{2,}$/.test(who) ? `<@${who}>` : who);

function refusal(error: unknown, record: ApprovalRecord | undefined): { reason: RefusalReason; text: string } {
  const bake = record ? ` of bake *${record.bakeId}*` : '';
  if (error instanceof ApprovalExpiredError) {
    return { reason: 'expired', text: `:hourglass: This approval${bake} expired; your click changed nothing and nothing was released.` };
  }
  if (error instanceof AlreadyDecidedError) {
    const d = record?.decision;
    const how = d ? ` (${d.outcome} by ${mention(d.by)} at ${d.at})` : '';
    return { reason: 'already-decided', text: `This approval${bake} was already decided${how}; your click changed nothing.` };
  }
  if (error instanceof NotAnApproverError) {
    const approvers = record?.approvers.map(mention).join(', ') ?? '';
    return {
      reason: 'not-an-approver',
      text: `:no_entry_sign: You are not an approver${bake}; your click changed nothing.${approvers ? ` Approvers: ${approvers}.` : ''}`,
    };
  }
  if (error instanceof NotItsMessageError) {
    return {
      reason: 'not-its-message',
      text: `:no_entry_sign: This button is not on the approval request${bake} bakery posted; your click changed nothing.`,
    };
  }
  if (error instanceof NotFoundError) {
    return { reason: 'unknown-approval', text: 'This approval is not known to bakery; your click changed nothing.' };
  }
  return {
    reason: 'failed',
    text: `:warning: Bakery could not record your decision (${error instanceof Error ? error.message : String(error)}). Try again; a decision that was recorded shows on the message.`,
  };
}

/**
 * Handle one request to the interactivity endpoint. Never throws: every outcome is an
 * HTTP answer (401 for a bad signature, 400 for a malformed request, 500 when the
 * signing secret cannot be read, 200 otherwise — a refused click is answered 200 with
 * an ephemeral reply, because Slack shows the clicker an error for anything else).
 */
export async function handleSlackInteraction(
  request: { headers: Record<string, string | undefined>; rawBody: Buffer },
  deps: SlackCallbackDeps,
  options: { answerWithinMs?: number } = {},
): Promise<SlackCallbackResult> {
  const started = performance.now();
  const budget = options.answerWithinMs ?? DEFAULT_ANSWER_WITHIN_MS;
  const log = deps.log ?? (() => {});
  const done = Promise.resolve();

  let secret: string;
  try {
    secret = await deps.signingSecret();
  } catch (error) {
    const reason = `cannot read the Slack signing secret: ${error instanceof Error ? error.message : String(error)}`;
    log(reason, { error });
    return { response: answer(500, 'not configured'), outcome: { kind: 'unavailable', reason }, followUp: done };
  }
  const check = verifySlackSignature({ headers: request.headers, rawBody: request.rawBody, signingSecret: secret, now: deps.clock.now() });
  if (!check.ok) {
    return {
      response: answer(401, 'invalid request signature'),
      outcome: { kind: 'unauthenticated', reason: check.reason },
      followUp: done,
    };
  }

  const mediaType = header(request.headers, 'content-type')?.split(';')[0]?.trim().toLowerCase();
  if (mediaType !== INTERACTION_CONTENT_TYPE) {
    return {
      response: answer(415, `expected ${INTERACTION_CONTENT_TYPE}`),
      outcome: { kind: 'malformed', reason: `content type ${mediaType ?? '(none)'}, not ${INTERACTION_CONTENT_TYPE}` },
      followUp: done,
    };
  }

  const interaction = parseInteraction(request.rawBody);
  if (!interaction) {
    return {
      response: answer(400, 'not an interaction payload'),
      outcome: { kind: 'malformed', reason: 'no valid payload field' },
      followUp: done,
    };
  }
  if (interaction.type !== 'block_actions') {
    return { response: answer(200), outcome: { kind: 'ignored', reason: `interaction type ${interaction.type}` }, followUp: done };
  }
  const action = interaction.actions?.find((a) => a.action_id === APPROVE_ACTION || a.action_id === REJECT_ACTION);
  if (!action) return { response: answer(200), outcome: { kind: 'ignored', reason: 'not a bakery button' }, followUp: done };

  const user = interaction.user.id;
  const channel = interaction.channel?.id ?? interaction.container?.channel_id;
  const messageTs = interaction.container?.message_ts ?? interaction.message?.ts;
  const approvalId = action.value ?? '';
  const pending: Array<Promise<unknown>> = [];
  const background = (what: string, work: Promise<unknown>) => {
    pending.push(work.catch((error: unknown) => log(`${what} failed`, { error, approvalId })));
  };
  // decideApproval awaits its notification; here it only starts it, so the answer is not held up by Slack.
  const notifier: Pick<Notifier, 'approvalDecided'> = {
    approvalDecided: async (record) => background('updating the approval message', deps.notifier.approvalDecided(record)),
  };

  let outcome: SlackOutcome;
  try {
    // Only ids of the shape requestApproval makes are looked up: never a bake id or a key.
    if (!APPROVAL_ID.test(approvalId)) throw new NotFoundError(`no approval ${JSON.stringify(approvalId)}`);
    // The button must be on the message the request was posted as (recorded when posted):
    // a signed click copied onto another message, or from another channel, decides nothing.
    const known = await deps.approvals.get(approvalId);
    if (known && (known.message?.channel !== channel || known.message?.ts !== messageTs)) {
      throw new NotItsMessageError(
        known.message
          ? `the click came from message ${channel ?? '?'}/${messageTs ?? '?'}, not ${known.message.channel}/${known.message.ts} where approval ${approvalId} was posted`
          : `approval ${approvalId} was never posted to Slack; decide it with \`bakery approve\``,
      );
    }
    const record = await decideApproval(
      { ref: approvalId, outcome: action.action_id === APPROVE_ACTION ? 'approved' : 'rejected', by: user },
      { approvals: deps.approvals, callbacks: deps.callbacks, notifier, clock: deps.clock },
    );
    outcome = { kind: 'decided', record };
  } catch (error) {
    const record = APPROVAL_ID.test(approvalId) ? await deps.approvals.get(approvalId).catch(() => undefined) : undefined;
    const { reason, text } = refusal(error, record);
    if (reason === 'failed') log('deciding an approval failed', { error, approvalId, user });
    outcome = { kind: 'refused', reason, approvalId, user, message: error instanceof Error ? error.message : String(error) };
    if (channel) background('replying to the clicker', deps.replies.tell({ channel, user }, text));
  }

  const followUp = Promise.all(pending).then(() => undefined);
  const left = budget - (performance.now() - started);
  if (left > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([followUp, new Promise<void>((resolve) => (timer = setTimeout(resolve, left).unref()))]);
    clearTimeout(timer);
  }
  return { response: answer(200), outcome, followUp };
}
