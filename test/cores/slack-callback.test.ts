import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { expireApproval, requestApproval } from '../../src/cores/approval.ts';
import { handleSlackInteraction, type SlackCallbackDeps, verifySlackSignature } from '../../src/cores/slack-callback.ts';
import { TransientBackendError } from '../../src/errors.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';
import { APPROVE_ACTION, REJECT_ACTION } from '../../src/ports/notifier.ts';
import { passedValidation, publishedLayer, publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import {
  FakeClock,
  MemoryApprovalStore,
  MemoryFunctionRegistry,
  RecordingCallbacks,
  RecordingNotifier,
  sequentialIds,
} from '../helpers/memory.ts';

const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const NOW = '2026-11-22T08:00:00.000Z';
const nowSeconds = Date.parse(NOW) / 1000;
const ALICE = 'U0ALICE01';
const BOB = 'U0BOB0001';
const MALLORY = 'U0MALLORY';

function sign(body: string | Buffer, options: { secret?: string; timestamp?: number } = {}): Record<string, string> {
  const timestamp = String(options.timestamp ?? nowSeconds);
  const hmac = createHmac('sha256', options.secret ?? SECRET)
    .update(`v0:${timestamp}:`)
    .update(body)
    .digest('hex');
  return { 'X-Slack-Request-Timestamp': timestamp, 'X-Slack-Signature': `v0=${hmac}`, 'Content-Type': 'application/x-www-form-urlencoded' };
}

/** Where the approval request was posted (channel id and message ts). */
const POSTED = { channel: 'C0RELEASES', ts: '1732262400.000100' };

function clickBody(
  options: { user?: string; action?: string; value?: string; type?: string; channel?: string; ts?: string | null } = {},
): string {
  const channel = options.channel ?? POSTED.channel;
  const payload = {
    type: options.type ?? 'block_actions',
    user: { id: options.user ?? ALICE, username: 'someone', team_id: 'T0TEAM' },
    channel: { id: channel, name: 'releases' },
    container: { type: 'message', channel_id: channel, ...(options.ts === null ? {} : { message_ts: options.ts ?? POSTED.ts }) },
    response_url: 'https://hooks.slack.com/actions/T0TEAM/1/abc',
    actions: [
      { action_id: options.action ?? APPROVE_ACTION, block_id: 'bakery_approval', value: options.value ?? 'apr-x0001', type: 'button' },
    ],
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

const signed = (body: string, options: { secret?: string; timestamp?: number } = {}) => ({
  headers: sign(body, options),
  rawBody: Buffer.from(body),
});

/** A pending approval of one bake, with alice and bob as approvers, and the ports of the endpoint. */
async function world(options: { timeoutSeconds?: number; approvers?: string[]; posted?: boolean } = {}) {
  const clock = new FakeClock(NOW);
  const approvals = new MemoryApprovalStore();
  const callbacks = new RecordingCallbacks();
  const decided: ApprovalRecord[] = [];
  const told: Array<{ channel: string; user: string; text: string }> = [];
  const logged: string[] = [];
  const bake = resolvedBake();
  bake.approval = { approvers: options.approvers ?? [ALICE, BOB], timeoutSeconds: options.timeoutSeconds ?? 3600 };
  const versions = publishedVersions(['hello', '2']);
  // Posted where clickBody's message is: the endpoint takes clicks on that message only.
  const poster = new RecordingNotifier();
  poster.postedAt = options.posted === false ? null : POSTED;
  const { approvalId } = await requestApproval(
    { bake, layer: publishedLayer(), versions, validation: passedValidation(versions), taskToken: 'RequestApproval-token-1' },
    { approvals, functions: new MemoryFunctionRegistry(), notifier: poster, clock, ids: sequentialIds('x') },
  );
  const deps: SlackCallbackDeps = {
    approvals,
    callbacks,
    clock,
    notifier: {
      approvalDecided: async (record) => {
        decided.push(record);
      },
    },
    replies: {
      tell: async (to, text) => {
        told.push({ ...to, text });
      },
    },
    signingSecret: async () => SECRET,
    log: (message) => logged.push(message),
  };
  return { deps, approvalId, bake, clock, approvals, callbacks, decided, told, logged };
}

describe('verifySlackSignature', () => {
  const body = Buffer.from(clickBody());
  const check = (headers: Record<string, string | undefined>, rawBody = body, now = new Date(NOW)) =>
    verifySlackSignature({ headers, rawBody, signingSecret: SECRET, now });

  it('accepts the signature Slack computes over the raw body, whatever the header case', () => {
    const headers = sign(body);

    expect(check(headers)).toEqual({ ok: true });
    expect(check(Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])))).toEqual({ ok: true });
  });

  it('matches the example in Slack’s documentation', () => {
    // https://api.slack.com/authentication/verifying-requests-from-slack
    const rawBody = Buffer.from(
      'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
    );
    const headers = {
      'x-slack-request-timestamp': '1531420618',
      'x-slack-signature': 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
    };

    expect(verifySlackSignature({ headers, rawBody, signingSecret: SECRET, now: new Date(1531420618 * 1000) })).toEqual({ ok: true });
  });

  it('refuses a signature made with another secret', () => {
    expect(check(sign(body, { secret: 'not-the-secret' }))).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('refuses a body changed after signing', () => {
    const tampered = Buffer.from(clickBody({ user: MALLORY }));

    expect(check(sign(body), tampered)).toEqual({ ok: false, reason: 'signature mismatch' });
  });

  it('refuses a timestamp more than five minutes old, and one more than five minutes ahead', () => {
    expect(check(sign(body, { timestamp: nowSeconds - 301 }))).toEqual({ ok: false, reason: 'stale request (301 s old)' });
    expect(check(sign(body, { timestamp: nowSeconds + 301 }))).toEqual({ ok: false, reason: 'request from the future (301 s ahead)' });
    expect(check(sign(body, { timestamp: nowSeconds - 300 }))).toEqual({ ok: true });
    expect(check(sign(body, { timestamp: nowSeconds + 300 }))).toEqual({ ok: true });
  });

  it('refuses a request without either header, or with a timestamp that is not a number', () => {
    const { 'X-Slack-Signature': signature, 'X-Slack-Request-Timestamp': timestamp } = sign(body);

    expect(check({ 'X-Slack-Signature': signature })).toMatchObject({ ok: false, reason: expect.stringContaining('missing') });
    expect(check({ 'X-Slack-Request-Timestamp': timestamp })).toMatchObject({ ok: false, reason: expect.stringContaining('missing') });
    expect(check({})).toMatchObject({ ok: false });
    expect(check({ 'X-Slack-Signature': signature, 'X-Slack-Request-Timestamp': `${timestamp}.5` })).toEqual({
      ok: false,
      reason: 'malformed X-Slack-Request-Timestamp',
    });
  });

  it('refuses a signature of another length or scheme without comparing it', () => {
    const good = sign(body)['X-Slack-Signature'] ?? '';
    const timestamp = String(nowSeconds);

    expect(check({ 'X-Slack-Request-Timestamp': timestamp, 'X-Slack-Signature': good.slice(0, -1) })).toMatchObject({ ok: false });
    expect(check({ 'X-Slack-Request-Timestamp': timestamp, 'X-Slack-Signature': good.replace('v0=', 'v1=') })).toMatchObject({ ok: false });
  });
});

describe('handleSlackInteraction', () => {
  it('approves on a signed click by an approver: the task resumes, the message is updated, Slack gets a 200', async () => {
    // Prepare
    const w = await world();

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ user: ALICE, value: w.approvalId })), w.deps);
    await result.followUp;

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.outcome).toMatchObject({
      kind: 'decided',
      record: { id: w.approvalId, decision: { outcome: 'approved', by: ALICE, at: NOW } },
    });
    expect(w.callbacks.settled).toEqual([
      {
        token: 'RequestApproval-token-1',
        status: 'succeeded',
        output: {
          approvalId: w.approvalId,
          decision: 'approved',
          by: ALICE,
          at: NOW,
          live: [{ name: 'hello', alias: 'live', version: null, weights: {}, revisionId: null }],
        },
      },
    ]);
    expect(w.decided.map((r) => [r.id, r.decision?.outcome, r.decision?.by])).toEqual([[w.approvalId, 'approved', ALICE]]);
    expect(w.told).toEqual([]);
  });

  it('rejects on the Reject button: the task fails with ApprovalRejectedError', async () => {
    const w = await world();

    const result = await handleSlackInteraction(signed(clickBody({ user: BOB, action: REJECT_ACTION, value: w.approvalId })), w.deps);

    expect(result.outcome).toMatchObject({ kind: 'decided', record: { decision: { outcome: 'rejected', by: BOB } } });
    expect(w.callbacks.settled).toEqual([
      { token: 'RequestApproval-token-1', status: 'failed', error: 'ApprovalRejectedError', cause: `rejected by ${BOB}` },
    ]);
  });

  it.each([
    ['another secret', { secret: 'wrong' }],
    ['a stale timestamp', { timestamp: nowSeconds - 3600 }],
    ['a future timestamp', { timestamp: nowSeconds + 3600 }],
  ])('answers 401 to a request signed with %s, and decides nothing', async (_what, options) => {
    const w = await world();

    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId }), options), w.deps);

    expect(result.response.statusCode).toBe(401);
    expect(result.outcome.kind).toBe('unauthenticated');
    expect((await w.approvals.get(w.approvalId))?.decision).toBeNull();
    expect(w.callbacks.settled).toEqual([]);
    expect(w.told).toEqual([]);
  });

  it('answers 401 to a request without signature headers, and to a tampered body', async () => {
    const w = await world();
    const body = clickBody({ value: w.approvalId });

    const unsigned = await handleSlackInteraction({ headers: {}, rawBody: Buffer.from(body) }, w.deps);
    const tampered = await handleSlackInteraction(
      { headers: sign(body), rawBody: Buffer.from(clickBody({ user: MALLORY, value: w.approvalId })) },
      w.deps,
    );

    expect([unsigned.response.statusCode, tampered.response.statusCode]).toEqual([401, 401]);
    expect(w.callbacks.settled).toEqual([]);
  });

  it('refuses a user who is not an approver: nothing is decided, and only they are told why', async () => {
    // Prepare
    const w = await world();

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ user: MALLORY, value: w.approvalId })), w.deps);
    await result.followUp;

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'not-an-approver', user: MALLORY });
    expect((await w.approvals.get(w.approvalId))?.decision).toBeNull();
    expect(w.callbacks.settled).toEqual([]);
    expect(w.told).toEqual([{ channel: 'C0RELEASES', user: MALLORY, text: expect.stringContaining('You are not an approver of bake') }]);
    expect(w.told[0]?.text).toContain(`<@${ALICE}>, <@${BOB}>`);
    // An approver can still decide afterwards.
    await handleSlackInteraction(signed(clickBody({ user: ALICE, value: w.approvalId })), w.deps);
    expect(w.callbacks.settled).toHaveLength(1);
  });

  it('refuses an unknown approval id, and never looks up a value of another shape', async () => {
    // Prepare
    const w = await world();

    // Act
    const unknown = await handleSlackInteraction(signed(clickBody({ value: 'apr-doesnotexist' })), w.deps);
    const bakeId = await handleSlackInteraction(signed(clickBody({ value: w.bake.bakeId })), w.deps);
    await Promise.all([unknown.followUp, bakeId.followUp]);

    // Assess
    expect(unknown.outcome).toMatchObject({ kind: 'refused', reason: 'unknown-approval' });
    // The bake id would find the approval through decideApproval's fallback: a button value never does.
    expect(bakeId.outcome).toMatchObject({ kind: 'refused', reason: 'unknown-approval' });
    expect(w.callbacks.settled).toEqual([]);
    expect(w.told.map((t) => t.text)).toEqual([expect.stringContaining('not known'), expect.stringContaining('not known')]);
  });

  it('answers "expired" to a click after the expiry, and changes nothing', async () => {
    // Prepare
    const w = await world({ timeoutSeconds: 60 });
    w.clock.advance(61_000);
    const body = clickBody({ value: w.approvalId });

    // Act
    const result = await handleSlackInteraction(
      { headers: sign(body, { timestamp: nowSeconds + 61 }), rawBody: Buffer.from(body) },
      w.deps,
    );
    await result.followUp;

    // Assess
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'expired' });
    expect((await w.approvals.get(w.approvalId))?.decision).toBeNull();
    expect(w.callbacks.settled).toEqual([]);
    expect(w.told[0]?.text).toContain('expired');
  });

  it('answers "expired" to a click on an approval RecordFailure closed, and changes nothing', async () => {
    // Prepare
    const w = await world();
    await expireApproval({ bakeId: w.bake.bakeId, reason: 'nobody decided within 3600 seconds' }, w.deps);

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);
    await result.followUp;

    // Assess
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'expired' });
    expect((await w.approvals.get(w.approvalId))?.decision?.outcome).toBe('expired');
    expect(w.callbacks.settled).toEqual([]);
    expect(w.decided).toEqual([]);
  });

  it('answers "already decided" to a second click and to a replay of the first, changing nothing', async () => {
    // Prepare
    const w = await world();
    const first = signed(clickBody({ user: ALICE, value: w.approvalId }));
    await handleSlackInteraction(first, w.deps);

    // Act
    const second = await handleSlackInteraction(signed(clickBody({ user: BOB, action: REJECT_ACTION, value: w.approvalId })), w.deps);
    const replay = await handleSlackInteraction(first, w.deps);
    await Promise.all([second.followUp, replay.followUp]);

    // Assess
    expect(second.outcome).toMatchObject({ kind: 'refused', reason: 'already-decided', user: BOB });
    expect(replay.outcome).toMatchObject({ kind: 'refused', reason: 'already-decided', user: ALICE });
    expect(w.told.map((t) => t.text)).toEqual([
      `This approval of bake *${w.bake.bakeId}* was already decided (approved by <@${ALICE}> at ${NOW}); your click changed nothing.`,
      `This approval of bake *${w.bake.bakeId}* was already decided (approved by <@${ALICE}> at ${NOW}); your click changed nothing.`,
    ]);
    expect(w.callbacks.settled).toHaveLength(1);
    expect((await w.approvals.get(w.approvalId))?.decision).toMatchObject({ outcome: 'approved', by: ALICE });
  });

  it('lets exactly one of two concurrent clicks decide', async () => {
    // Prepare
    const w = await world();

    // Act
    const results = await Promise.all([
      handleSlackInteraction(signed(clickBody({ user: ALICE, value: w.approvalId })), w.deps),
      handleSlackInteraction(signed(clickBody({ user: BOB, action: REJECT_ACTION, value: w.approvalId })), w.deps),
    ]);

    // Assess
    expect(results.map((r) => r.response.statusCode)).toEqual([200, 200]);
    expect(results.map((r) => r.outcome.kind).sort()).toEqual(['decided', 'refused']);
    expect(results.find((r) => r.outcome.kind === 'refused')?.outcome).toMatchObject({ reason: 'already-decided' });
    expect(w.callbacks.settled).toHaveLength(1);
  });

  it('ignores other interactions and other buttons with a 200', async () => {
    const w = await world();

    const shortcut = await handleSlackInteraction(signed(clickBody({ type: 'shortcut' })), w.deps);
    const otherButton = await handleSlackInteraction(signed(clickBody({ action: 'someone_elses_button', value: w.approvalId })), w.deps);

    expect(shortcut).toMatchObject({ response: { statusCode: 200 }, outcome: { kind: 'ignored' } });
    expect(otherButton).toMatchObject({ response: { statusCode: 200 }, outcome: { kind: 'ignored' } });
    expect(w.callbacks.settled).toEqual([]);
  });

  it('answers 400 to a signed request that is not an interaction payload', async () => {
    const w = await world();

    const noPayload = await handleSlackInteraction(signed('text=hello'), w.deps);
    const notJson = await handleSlackInteraction(signed('payload=%7Bnot-json'), w.deps);
    const noUser = await handleSlackInteraction(signed(`payload=${encodeURIComponent('{"type":"block_actions"}')}`), w.deps);

    expect([noPayload, notJson, noUser].map((r) => r.response.statusCode)).toEqual([400, 400, 400]);
  });

  it('answers 415 to a validly signed request of another content type, and decides nothing', async () => {
    // Prepare
    const w = await world();
    const body = clickBody({ value: w.approvalId });
    const as = (contentType: string | undefined) => {
      const { 'Content-Type': _slacks, ...headers } = sign(body);
      return { headers: contentType === undefined ? headers : { ...headers, 'content-type': contentType }, rawBody: Buffer.from(body) };
    };

    // Act
    const results = await Promise.all(
      ['application/json', 'text/plain', 'multipart/form-data; boundary=x', undefined].map((type) =>
        handleSlackInteraction(as(type), w.deps),
      ),
    );
    const withCharset = await handleSlackInteraction(as('Application/X-WWW-Form-Urlencoded; charset=utf-8'), w.deps);

    // Assess
    expect(results.map((r) => r.response.statusCode)).toEqual([415, 415, 415, 415]);
    expect(results.map((r) => r.outcome.kind)).toEqual(['malformed', 'malformed', 'malformed', 'malformed']);
    expect(results[0]?.outcome).toMatchObject({ reason: 'content type application/json, not application/x-www-form-urlencoded' });
    // Slack's own content type, whatever its case and parameters, is taken.
    expect(withCharset.outcome).toMatchObject({ kind: 'decided' });
    expect(w.callbacks.settled).toHaveLength(1);
  });

  it.each([
    ['another message in the same channel', { ts: '1732262999.000900' }],
    ['the same ts in another channel', { channel: 'C0OTHER' }],
    ['no message at all', { ts: null }],
  ])('refuses a signed approver click on %s: nothing is decided, the clicker is told', async (_what, where) => {
    // Prepare
    const w = await world();

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId, ...where })), w.deps);
    await result.followUp;

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'not-its-message', user: ALICE });
    expect((await w.approvals.get(w.approvalId))?.decision).toBeNull();
    expect(w.callbacks.settled).toEqual([]);
    expect(w.told).toEqual([expect.objectContaining({ user: ALICE, text: expect.stringContaining('not on the approval request') })]);
    // The posted message itself still decides.
    expect((await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps)).outcome).toMatchObject({ kind: 'decided' });
  });

  it('refuses a click for an approval that was never posted to Slack (decided in the terminal only)', async () => {
    // Prepare
    const w = await world({ posted: false });

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);

    // Assess
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'not-its-message', message: expect.stringContaining('never posted') });
    expect(w.callbacks.settled).toEqual([]);
  });

  it('answers 500 when the signing secret cannot be read, and decides nothing', async () => {
    const w = await world();
    w.deps.signingSecret = async () => {
      throw new Error('AccessDeniedException');
    };

    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);

    expect(result.response.statusCode).toBe(500);
    expect(result.outcome).toMatchObject({ kind: 'unavailable', reason: expect.stringContaining('AccessDeniedException') });
    expect(w.logged).toEqual([expect.stringContaining('cannot read the Slack signing secret')]);
    expect(w.callbacks.settled).toEqual([]);
  });

  it('tells the clicker when the decision could not be recorded, and logs it', async () => {
    // Prepare
    const w = await world();
    w.approvals.decide = async () => {
      throw new TransientBackendError('DynamoDB is throttling');
    };

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);
    await result.followUp;

    // Assess
    expect(result.response.statusCode).toBe(200);
    expect(result.outcome).toMatchObject({ kind: 'refused', reason: 'failed' });
    expect(w.told[0]?.text).toContain('could not record your decision (DynamoDB is throttling)');
    expect(w.logged).toContain('deciding an approval failed');
  });

  it('answers within its budget while Slack does not answer at all, and finishes the update later', async () => {
    // Prepare: the message update hangs until released.
    const w = await world();
    let release: () => void = () => {};
    w.deps.notifier = { approvalDecided: () => new Promise<void>((resolve) => (release = resolve)) };
    const started = performance.now();

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps, { answerWithinMs: 200 });
    const answeredAfter = performance.now() - started;

    // Assess: the decision is made and the task resumed before the answer; only the update waits.
    expect(result.response.statusCode).toBe(200);
    expect(answeredAfter).toBeGreaterThanOrEqual(190);
    expect(answeredAfter).toBeLessThan(1000);
    expect(w.callbacks.settled).toHaveLength(1);
    let finished = false;
    void result.followUp.then(() => (finished = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(finished).toBe(false);
    release();
    await result.followUp;
    expect(finished).toBe(true);
  });

  it('answers within Slack’s 3 seconds by default when the update hangs', { timeout: 10_000 }, async () => {
    const w = await world();
    w.deps.notifier = { approvalDecided: () => new Promise<void>(() => {}) };
    const started = performance.now();

    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);

    expect(result.response.statusCode).toBe(200);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('does not wait for an update that is quick, and reports a failed update without failing the answer', async () => {
    // Prepare
    const w = await world();
    w.deps.notifier = {
      approvalDecided: async () => {
        throw new Error('Slack refused chat.update (channel_not_found)');
      },
    };
    const started = performance.now();

    // Act
    const result = await handleSlackInteraction(signed(clickBody({ value: w.approvalId })), w.deps);
    await result.followUp;

    // Assess
    expect(performance.now() - started).toBeLessThan(500);
    expect(result.outcome.kind).toBe('decided');
    expect(w.logged).toEqual(['updating the approval message failed']);
  });
});
