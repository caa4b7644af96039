/**
 * The Slack interactivity endpoint through its real middy chain and AWS adapters: the
 * Function URL event as Lambda delivers it, DynamoDB, Step Functions and SSM mocked at
 * the SDK, and Slack's Web API a fake server on 127.0.0.1 (slack.com is never called).
 */
import { createHmac } from 'node:crypto';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Context, LambdaFunctionURLEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler, slackCallbackHandler } from '../../functions/slack-callback/handler.ts';
import { buildSlackCallbackDeps } from '../../src/compose/aws.ts';
import { DEFAULT_ANSWER_WITHIN_MS } from '../../src/cores/slack-callback.ts';
import { logger, metrics } from '../../src/lambda.ts';
import type { ApprovalDecision } from '../../src/ports/approval.ts';
import { APPROVE_ACTION, REJECT_ACTION } from '../../src/ports/notifier.ts';
import { approvalRecord, TASK_TOKEN } from '../adapters/aws/fixtures.ts';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.ts';

const dynamo = mockClient(DynamoDBDocumentClient);
const sfn = mockClient(SFNClient);
const ssm = mockClient(SSMClient);

const SECRET_PARAM = '/bakery/dev/slack-signing-secret';
const TOKEN_PARAM = '/bakery/dev/slack-bot-token';
const SECRET = 'e6b19c573432dcc6b075501d51b51bb8';
const MESSAGE = { channel: 'C0RELEASES', ts: '1732262400.000100' };
const RECORD = approvalRecord({ message: MESSAGE, expiresAt: '2099-01-01T00:00:00.000Z' });
const { decision: _d, ...STORED } = RECORD;
const ITEM = { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL', ...STORED };
const APPROVER = RECORD.approvers[0] ?? '';

const context = {
  callbackWaitsForEmptyEventLoop: true,
  functionName: 'bakery-dev-slackCallback',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:bakery-dev-slackCallback',
  memoryLimitInMB: '256',
  awsRequestId: '5f1c7c6e-0000-4000-8000-000000000001',
  logGroupName: '/aws/lambda/bakery-dev-slackCallback',
  logStreamName: '2026/11/22/[$LATEST]abcdef',
  getRemainingTimeInMillis: () => 10_000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
} satisfies Context;

function click(user: string, action = APPROVE_ACTION): string {
  const payload = {
    type: 'block_actions',
    user: { id: user },
    channel: { id: MESSAGE.channel },
    container: { type: 'message', channel_id: MESSAGE.channel, message_ts: MESSAGE.ts },
    actions: [{ action_id: action, value: RECORD.id, type: 'button' }],
  };
  return `payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** A Function URL event as Lambda delivers it: lower-case headers, the form body base64-encoded. */
function urlEvent(body: string, options: { secret?: string; timestamp?: number; base64?: boolean } = {}): LambdaFunctionURLEvent {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const signature = `v0=${createHmac('sha256', options.secret ?? SECRET)
    .update(`v0:${timestamp}:${body}`)
    .digest('hex')}`;
  const base64 = options.base64 ?? true;
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: '/',
    rawQueryString: '',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': signature,
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    },
    requestContext: {
      accountId: 'anonymous',
      apiId: 'abcdefghij',
      domainName: 'abcdefghij.lambda-url.eu-west-1.on.aws',
      domainPrefix: 'abcdefghij',
      http: { method: 'POST', path: '/', protocol: 'HTTP/1.1', sourceIp: '3.4.5.6', userAgent: 'Slackbot 1.0' },
      requestId: 'r-1',
      routeKey: '$default',
      stage: '$default',
      time: '22/Nov/2026:08:00:00 +0000',
      timeEpoch: Date.now(),
    },
    body: base64 ? Buffer.from(body).toString('base64') : body,
    isBase64Encoded: base64,
  };
}

describe('slackCallback handler', () => {
  let slack: FakeSlack;

  beforeEach(async () => {
    vi.spyOn(logger, 'info').mockImplementation(() => {});
    vi.spyOn(logger, 'warn').mockImplementation(() => {});
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    slack = await startFakeSlack();
    // The adapter talks to slack.com; send it to the fake server instead.
    const realFetch = globalThis.fetch;
    vi.spyOn(globalThis, 'fetch').mockImplementation((url, init) =>
      realFetch(String(url).replace('https://slack.com/api/', slack.apiUrl), init),
    );
    vi.stubEnv('AWS_REGION', 'eu-west-1');
    vi.stubEnv('TABLE_NAME', 'bakery-table');
    vi.stubEnv('SLACK_CHANNEL', MESSAGE.channel);
    vi.stubEnv('SLACK_BOT_TOKEN_PARAM', TOKEN_PARAM);
    vi.stubEnv('SLACK_SIGNING_SECRET_PARAM', SECRET_PARAM);
    ssm
      .on(GetParameterCommand, { Name: SECRET_PARAM })
      .resolves({ Parameter: { Name: SECRET_PARAM, Type: 'SecureString', Value: SECRET } })
      .on(GetParameterCommand, { Name: TOKEN_PARAM })
      .resolves({ Parameter: { Name: TOKEN_PARAM, Type: 'SecureString', Value: 'xoxb-test-token' } });
    dynamo.on(GetCommand, { Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' } }).resolves({ Item: ITEM });
    sfn.on(SendTaskSuccessCommand).resolves({}).on(SendTaskFailureCommand).resolves({});
  });

  afterEach(async () => {
    dynamo.reset();
    sfn.reset();
    ssm.reset();
    clearCaches();
    await slack.close();
  });

  afterAll(() => {
    dynamo.restore();
    sfn.restore();
    ssm.restore();
  });

  it('decides an approver’s click once, resumes the task with the stored token, and updates the message', async () => {
    // Prepare
    dynamo.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: { ':d': ApprovalDecision } }) => ({
      Attributes: { ...ITEM, decision: input.ExpressionAttributeValues[':d'] },
    }));
    const addMetric = vi.spyOn(metrics, 'addMetric');

    // Act
    const response = await handler(urlEvent(click(APPROVER)), context);

    // Assess
    expect(response).toMatchObject({ statusCode: 200 });
    // The approval was requested at the record's createdAt; it waited until now for the click.
    const waited = (Date.now() - Date.parse(ITEM.createdAt)) / 1000;
    expect(addMetric).toHaveBeenCalledWith('ApprovalWait', 'Seconds', expect.closeTo(waited, -1));
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: SECRET_PARAM, WithDecryption: true });
    expect(dynamo).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: 'bakery-table',
      Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' },
      ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#decision)',
    });
    const success = sfn.commandCalls(SendTaskSuccessCommand)[0]?.args[0].input;
    expect(success?.taskToken).toBe(TASK_TOKEN);
    expect(JSON.parse(success?.output ?? '{}')).toMatchObject({ approvalId: RECORD.id, decision: 'approved', by: APPROVER });
    const [update] = slack.calls('chat.update');
    expect(update?.form.get('channel')).toBe(MESSAGE.channel);
    expect(update?.form.get('ts')).toBe(MESSAGE.ts);
    expect(update?.form.get('blocks')).toContain(`:white_check_mark: *Approved* by <@${APPROVER}>`);
    expect(update?.headers.authorization).toBe('Bearer xoxb-test-token');
  });

  it('returns only once the message update is done (within the time Lambda has left), so a frozen container loses nothing', async () => {
    // Prepare: updating the message takes longer than the answer waits for (2.5 s).
    dynamo.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: { ':d': ApprovalDecision } }) => ({
      Attributes: { ...ITEM, decision: input.ExpressionAttributeValues[':d'] },
    }));
    let updated = false;
    const real = buildSlackCallbackDeps();
    const slow = slackCallbackHandler(() => ({
      ...real,
      notifier: {
        approvalDecided: async (record) => {
          await new Promise((resolve) => setTimeout(resolve, DEFAULT_ANSWER_WITHIN_MS + 200));
          await real.notifier.approvalDecided(record);
          updated = true;
        },
      },
    }));

    // Act
    const response = await slow(urlEvent(click(APPROVER)), context);

    // Assess: by the time the handler returned, Slack had the update.
    expect(response).toMatchObject({ statusCode: 200 });
    expect(updated).toBe(true);
    expect(slack.calls('chat.update')).toHaveLength(1);
  });

  it('takes a body that is not base64-encoded as well', async () => {
    dynamo.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: { ':d': ApprovalDecision } }) => ({
      Attributes: { ...ITEM, decision: input.ExpressionAttributeValues[':d'] },
    }));

    const response = await handler(urlEvent(click(APPROVER, REJECT_ACTION), { base64: false }), context);

    expect(response).toMatchObject({ statusCode: 200 });
    expect(sfn).toHaveReceivedCommandWith(SendTaskFailureCommand, { taskToken: TASK_TOKEN, error: 'ApprovalRejectedError' });
  });

  it('answers 401 to a bad signature before reading or writing anything', async () => {
    const response = await handler(urlEvent(click(APPROVER), { secret: 'guessed' }), context);

    expect(response).toMatchObject({ statusCode: 401 });
    expect(dynamo.calls()).toHaveLength(0);
    expect(sfn.calls()).toHaveLength(0);
    expect(slack.requests).toEqual([]);
    expect(logger.warn).toHaveBeenCalledWith('slack request refused', { kind: 'unauthenticated', reason: 'signature mismatch' });
  });

  it('answers a second click "already decided" in private, changing nothing', async () => {
    // Prepare: the conditional write fails; the record shows who decided.
    const earlier: ApprovalDecision = { outcome: 'approved', by: 'U0EARLIER', at: '2026-11-22T08:00:00.000Z', reason: null };
    dynamo
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ $metadata: { httpStatusCode: 400 }, message: 'The conditional request failed' }));
    dynamo.on(GetCommand, { Key: { pk: `APPROVAL#${RECORD.id}`, sk: 'APPROVAL' } }).resolves({ Item: { ...ITEM, decision: earlier } });

    // Act
    const response = await handler(urlEvent(click(APPROVER)), context);

    // Assess
    expect(response).toMatchObject({ statusCode: 200 });
    expect(sfn.calls()).toHaveLength(0);
    const [ephemeral] = slack.calls('chat.postEphemeral');
    expect(ephemeral?.form.get('user')).toBe(APPROVER);
    expect(ephemeral?.form.get('text')).toContain('was already decided (approved by <@U0EARLIER>');
    expect(slack.calls('chat.update')).toEqual([]);
  });

  it('answers 500 when the signing secret parameter is not configured, and logs why', async () => {
    vi.stubEnv('SLACK_SIGNING_SECRET_PARAM', '');

    const response = await handler(urlEvent(click(APPROVER)), context);

    expect(response).toMatchObject({ statusCode: 500 });
    expect(dynamo.calls()).toHaveLength(0);
    expect(logger.error).toHaveBeenCalledWith(
      expect.stringContaining('SLACK_SIGNING_SECRET_PARAM is not set'),
      expect.objectContaining({ error: expect.anything() }),
    );
  });

  it('never logs the task token', async () => {
    dynamo.on(UpdateCommand).callsFake((input: { ExpressionAttributeValues: { ':d': ApprovalDecision } }) => ({
      Attributes: { ...ITEM, decision: input.ExpressionAttributeValues[':d'] },
    }));

    await handler(urlEvent(click(APPROVER)), context);

    const logged = JSON.stringify([vi.mocked(logger.info).mock.calls, vi.mocked(logger.error).mock.calls]);
    expect(logged).toContain(RECORD.id);
    expect(logged).not.toContain(TASK_TOKEN);
  });
});
