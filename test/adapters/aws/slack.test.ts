import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { type FetchFunction, LogLevel } from '@slack/web-api';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { APPROVE_ACTION, REJECT_ACTION, SlackNotifier } from '../../../src/adapters/aws/slack.ts';
import { BakeryError, TransientBackendError } from '../../../src/errors.ts';
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
