import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { type FetchFunction, LogLevel } from '@slack/web-api';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { APPROVE_ACTION, REJECT_ACTION, SlackNotifier, signingSecretFrom } from '../../../src/adapters/aws/slack.ts';
import { BakeryError, TransientBackendError } from '../../../src/errors.ts';
import { type FakeSlack, startFakeSlack } from '../../helpers/fake-slack.ts';
import { approvalRecord, TASK_TOKEN } from './fixtures.ts';

// Powertools Parameters builds its own SSMClient: mock every instance of the class.
const ssm = mockClient(SSMClient);

const PARAM = '/bakery/slack/bot-token';
const CHANNEL = 'C0RELEASES';

interface Sent {
  url: string;
  headers: Record<string, string>;
  form: URLSearchParams;
}

/** A stand-in for Slack's HTTP API: records each request and answers with `reply`. */
function fakeSlack(reply: (sent: Sent) => Record<string, unknown> | Error = () => ({ ok: true, ts: '1.0' })) {
  const requests: Sent[] = [];
  const fetch: FetchFunction = async (url, init) => {
    const sent = { url: String(url), headers: init?.headers ?? {}, form: new URLSearchParams(String(init?.body ?? '')) };
    requests.push(sent);
    const answer = reply(sent);
    if (answer instanceof Error) throw answer;
    return new Response(JSON.stringify(answer), { status: 200, headers: { 'content-type': 'application/json' } });
  };
  return { fetch, requests };
}

const notifierWith = (slack: ReturnType<typeof fakeSlack>) =>
  new SlackNotifier({
    channel: CHANNEL,
    tokenParameter: PARAM,
    clientOptions: { fetch: slack.fetch, retryConfig: { retries: 0 }, logLevel: LogLevel.ERROR },
  });

describe('SlackNotifier', () => {
  beforeEach(() => {
    ssm.on(GetParameterCommand, { Name: PARAM }).resolves({ Parameter: { Name: PARAM, Type: 'SecureString', Value: 'xoxb-test-token' } });
  });

  afterEach(() => {
    ssm.reset();
    clearCaches();
  });

  afterAll(() => {
    ssm.restore();
  });

  it('posts the approval request as Block Kit with the token read from SSM, decrypted', async () => {
    // Prepare
    const slack = fakeSlack();
    const record = approvalRecord();

    // Act
    await notifierWith(slack).approvalRequested(record);

    // Assess
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: PARAM, WithDecryption: true });
    expect(slack.requests).toHaveLength(1);
    const [request] = slack.requests;
    expect(request?.url).toBe('https://slack.com/api/chat.postMessage');
    expect(request?.headers.Authorization).toBe('Bearer xoxb-test-token');
    expect(request?.form.get('channel')).toBe(CHANNEL);
    const blocks = JSON.parse(request?.form.get('blocks') ?? '[]') as Array<Record<string, unknown>>;
    const text = JSON.stringify(blocks);
    expect(text).toContain('*hello* `live`: version 6 → *version 7*');
    expect(text).toContain('*goodbye* `live`: no live version → *version 1*');
    expect(text).toContain(record.summary.layer.arn);
    expect(text).toContain(record.summary.layer.sha256Hex);
    expect(text).toContain(record.summary.runtime);
    expect(text).toContain(':white_check_mark: passed (3 cases)');
    expect(text).toContain(`<!date^${Date.parse(record.expiresAt) / 1000}^`);
    const actions = blocks.find((b) => b.type === 'actions') as { elements: Array<{ action_id: string; value: string }> };
    expect(actions.elements.map((e) => [e.action_id, e.value])).toEqual([
      [APPROVE_ACTION, record.id],
      [REJECT_ACTION, record.id],
    ]);
  });

  it('never puts the task token in the message', async () => {
    const slack = fakeSlack();

    await notifierWith(slack).approvalRequested(approvalRecord());

    const everything = slack.requests.map((r) => r.form.toString()).join('&');
    expect(decodeURIComponent(everything)).not.toContain(TASK_TOKEN);
    expect(everything).not.toContain(encodeURIComponent(TASK_TOKEN));
  });

  it('reads the token once and reuses the client while the cache holds', async () => {
    const slack = fakeSlack();
    const notifier = notifierWith(slack);

    await notifier.approvalRequested(approvalRecord());
    await notifier.approvalDecided(
      approvalRecord({ decision: { outcome: 'approved', by: 'U024BE7LH', at: '2026-11-22T08:00:00Z', reason: null } }),
    );

    expect(ssm).toHaveReceivedCommandTimes(GetParameterCommand, 1);
    expect(slack.requests).toHaveLength(2);
    expect(slack.requests[1]?.form.get('text')).toBe(':white_check_mark: Bake *hello-20261122T073000-3f9a* approved by <@U024BE7LH>');
  });

  it('names the failing state and error when a bake fails', async () => {
    const slack = fakeSlack();

    await notifierWith(slack).bakeFailed({
      bakeId: 'hello-1',
      state: 'Validate',
      error: 'ValidationFailedError',
      cause: 'case "hi": <diff>',
    });

    const text = slack.requests[0]?.form.get('text') ?? '';
    expect(text).toContain('failed in *Validate*: `ValidationFailedError`');
    expect(text).toContain('case "hi": &lt;diff&gt;');
  });

  it('explains a rejected token and points at the SSM parameter', async () => {
    // Prepare
    const slack = fakeSlack(() => ({ ok: false, error: 'invalid_auth' }));

    // Act
    const post = notifierWith(slack).bakeFailed({ bakeId: null, state: 'ResolveBake', error: 'BakeSpecError', cause: '' });

    // Assess
    await expect(post).rejects.toThrow(BakeryError);
    await expect(post).rejects.toThrow(`Slack rejected the bot token (invalid_auth): check the SSM parameter ${PARAM}`);
  });

  it('explains a channel the bot cannot post to', async () => {
    const slack = fakeSlack(() => ({ ok: false, error: 'not_in_channel' }));

    await expect(notifierWith(slack).approvalRequested(approvalRecord())).rejects.toThrow(
      `Slack cannot post to channel ${CHANNEL} (not_in_channel)`,
    );
  });

  it('treats a network failure as transient', async () => {
    const slack = fakeSlack(() => new TypeError('fetch failed'));

    await expect(notifierWith(slack).approvalRequested(approvalRecord())).rejects.toBeInstanceOf(TransientBackendError);
  });

  it('fails clearly when the token parameter does not exist, without calling Slack', async () => {
    // Prepare
    ssm.reset();
    ssm.on(GetParameterCommand).rejects(new ParameterNotFound({ $metadata: { httpStatusCode: 400 }, message: 'not found' }));
    const slack = fakeSlack();

    // Act + Assess
    await expect(notifierWith(slack).approvalRequested(approvalRecord())).rejects.toThrow(
      `cannot read the Slack bot token from SSM parameter ${PARAM}`,
    );
    expect(slack.requests).toHaveLength(0);
  });
});

describe('SlackNotifier against a fake Slack server', () => {
  let slack: FakeSlack;
  const MESSAGE = { channel: 'C0RELEASES', ts: '1732262400.000100' };
  const decided = (outcome: 'approved' | 'rejected' | 'expired', by = 'U024BE7LH') =>
    approvalRecord({
      message: MESSAGE,
      decision: { outcome, by, at: '2026-11-22T08:00:05.000Z', reason: outcome === 'rejected' ? 'not on a Friday' : null },
    });

  const notifier = (options: { maxRateLimitWaitSeconds?: number } = {}) =>
    new SlackNotifier({
      channel: CHANNEL,
      tokenParameter: PARAM,
      readToken: async () => 'xoxb-test-token',
      clientOptions: { slackApiUrl: slack.apiUrl, retryConfig: { retries: 0 }, logLevel: LogLevel.ERROR },
      ...options,
    });

  beforeEach(async () => {
    slack = await startFakeSlack();
  });

  afterEach(async () => {
    await slack.close();
  });

  it('says where it posted the request, so the message can be updated later', async () => {
    // Act
    const posted = await notifier().approvalRequested(approvalRecord());

    // Assess
    expect(slack.calls('chat.postMessage')).toHaveLength(1);
    expect(posted).toEqual({ channel: CHANNEL, ts: expect.stringMatching(/^\d+\.\d+$/) });
  });

  it('updates the message of a retried request instead of posting another', async () => {
    // Act
    const posted = await notifier().approvalRequested(approvalRecord({ message: MESSAGE }));

    // Assess
    expect(posted).toEqual(MESSAGE);
    expect(slack.calls('chat.postMessage')).toEqual([]);
    const [update] = slack.calls('chat.update');
    expect(update?.form.get('channel')).toBe(MESSAGE.channel);
    expect(update?.form.get('ts')).toBe(MESSAGE.ts);
    expect(update?.form.get('blocks')).toContain(APPROVE_ACTION);
  });

  it('updates the request to show the decision, who made it and when, without the buttons', async () => {
    // Act
    await notifier().approvalDecided(decided('approved'));

    // Assess
    expect(slack.calls('chat.postMessage')).toEqual([]);
    const [update] = slack.calls('chat.update');
    expect(update?.form.get('ts')).toBe(MESSAGE.ts);
    const blocks = update?.form.get('blocks') ?? '';
    expect(blocks).not.toContain(APPROVE_ACTION);
    expect(blocks).not.toContain(REJECT_ACTION);
    const at = Date.parse('2026-11-22T08:00:05.000Z') / 1000;
    expect(blocks).toContain(
      `:white_check_mark: *Approved* by <@U024BE7LH> <!date^${at}^{date_short_pretty} {time}|2026-11-22T08:00:05.000Z>`,
    );
    // The summary the approver signed off stays on the message.
    expect(blocks).toContain(approvalRecord().summary.layer.sha256Hex);
    expect(decodeURIComponent(update?.form.toString() ?? '')).not.toContain(TASK_TOKEN);
  });

  it('shows a rejection with its reason, and an expiry', async () => {
    await notifier().approvalDecided(decided('rejected'));
    await notifier().approvalDecided(decided('expired', 'bakery'));

    const [rejected, expired] = slack.calls('chat.update').map((r) => r.form.get('blocks') ?? '');
    expect(rejected).toContain(':no_entry: *Rejected* by <@U024BE7LH>');
    expect(rejected).toContain(': not on a Friday');
    expect(expired).toContain(':hourglass: *Expired*');
    expect(expired).toContain('nothing was released');
    expect(expired).not.toContain(APPROVE_ACTION);
  });

  it('posts the outcome as a new message when the request is gone', async () => {
    // Prepare
    slack.script('chat.update', { json: { ok: false, error: 'message_not_found' } });

    // Act
    await notifier().approvalDecided(decided('approved'));

    // Assess
    expect(slack.calls('chat.update')).toHaveLength(1);
    expect(slack.calls('chat.postMessage').map((r) => r.form.get('text'))).toEqual([
      ':white_check_mark: Bake *hello-20261122T073000-3f9a* approved by <@U024BE7LH>',
    ]);
  });

  it('tells one user privately, in the channel they clicked in', async () => {
    await notifier().tell({ channel: 'C0RELEASES', user: 'U0MALLORY' }, 'You are not an approver.');

    const [ephemeral] = slack.calls('chat.postEphemeral');
    expect(Object.fromEntries(ephemeral?.form ?? [])).toMatchObject({
      channel: 'C0RELEASES',
      user: 'U0MALLORY',
      text: 'You are not an approver.',
    });
  });

  it('waits out a rate limit for the Retry-After Slack names, then retries once', async () => {
    // Prepare
    slack.script('chat.update', { status: 429, headers: { 'retry-after': '1' } });

    // Act
    await notifier().approvalDecided(decided('approved'));

    // Assess
    const calls = slack.calls('chat.update');
    expect(calls).toHaveLength(2);
    const waited = (calls[1]?.at ?? 0) - (calls[0]?.at ?? 0);
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(waited).toBeLessThan(3000);
  });

  it('does not sit out a long rate limit: TransientBackendError naming the wait, for the ASL to retry', async () => {
    // Prepare
    slack.script('chat.postMessage', { status: 429, headers: { 'retry-after': '30' } });
    const started = performance.now();

    // Act
    const post = notifier({ maxRateLimitWaitSeconds: 10 }).bakeFailed({ bakeId: 'b', state: 'Validate', error: 'E', cause: '' });

    // Assess
    await expect(post).rejects.toThrow(TransientBackendError);
    await expect(post).rejects.toThrow('rate limited: retry after 30 s');
    expect(slack.calls('chat.postMessage')).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('gives up after the rate-limit retries it allows', async () => {
    slack.script('chat.postEphemeral', ...Array.from({ length: 5 }, () => ({ status: 429, headers: { 'retry-after': '0' } })));

    await expect(notifier().tell({ channel: 'C1', user: 'U1' }, 'hi')).rejects.toThrow(TransientBackendError);
    expect(slack.calls('chat.postEphemeral')).toHaveLength(3);
  });

  it('explains invalid_auth from the real HTTP API as a bad bot token', async () => {
    slack.script('chat.update', { json: { ok: false, error: 'invalid_auth' } });

    const update = notifier().approvalDecided(decided('approved'));

    await expect(update).rejects.toBeInstanceOf(BakeryError);
    await expect(update).rejects.toThrow(`Slack rejected the bot token (invalid_auth): check the SSM parameter ${PARAM}`);
  });
});

describe('signingSecretFrom', () => {
  it('reads the signing secret by parameter name, decrypted', async () => {
    const names: string[] = [];
    const read = signingSecretFrom('/bakery/dev/slack-signing-secret', async (name) => {
      names.push(name);
      return 's3cr3t';
    });

    await expect(read()).resolves.toBe('s3cr3t');
    expect(names).toEqual(['/bakery/dev/slack-signing-secret']);
  });

  it('fails clearly when the parameter is empty or unreadable', async () => {
    await expect(signingSecretFrom('/p', async () => undefined)()).rejects.toThrow('SSM parameter /p holds no Slack signing secret');
    await expect(
      signingSecretFrom('/p', async () => {
        throw new Error('AccessDenied');
      })(),
    ).rejects.toThrow('cannot read the Slack signing secret from SSM parameter /p: AccessDenied');
  });
});
