/**
 * The local interactivity endpoint: real HTTP on 127.0.0.1, the same core as the Lambda,
 * the local stores. The end-to-end case runs the real state machine on the local runner,
 * posts the request to a fake Slack, and releases on a signed click.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { localReplies, localSlackNotifier, TerminalAndSlackNotifier } from '../../src/adapters/local/slack.ts';
import type { SlackCallbackDeps, SlackOutcome } from '../../src/cores/slack-callback.ts';
import { type CallbackServer, INTERACTIONS_PATH, startCallbackServer } from '../../src/local/callback-server.ts';
import { runBake } from '../../src/local/runner.ts';
import { APPROVE_ACTION } from '../../src/ports/notifier.ts';
import { startFakeSlack } from '../helpers/fake-slack.ts';
import { approvalRequested, makeWorkspace, type Workspace } from '../helpers/local-bake.ts';

const SECRET = 'local-signing-secret';
const ALICE = 'U0ALICE01';
const MALLORY = 'U0MALLORY';

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function signedClick(
  approvalId: string,
  user: string,
  message: { channel: string; ts: string },
): { body: string; headers: Record<string, string> } {
  const payload = {
    type: 'block_actions',
    user: { id: user },
    channel: { id: message.channel },
    container: { type: 'message', channel_id: message.channel, message_ts: message.ts },
    actions: [{ action_id: APPROVE_ACTION, value: approvalId }],
  };
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = `v0=${createHmac('sha256', SECRET).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return {
    body,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': timestamp,
      'x-slack-signature': signature,
    },
  };
}

const post = (url: string, click: { body: string; headers: Record<string, string> }) =>
  fetch(url, { method: 'POST', headers: click.headers, body: click.body });

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function setUp(options: { approvers?: string[] } = {}) {
  const slack = await startFakeSlack();
  cleanups.push(() => slack.close());
  const ws: Workspace = await makeWorkspace({
    spec: (spec) => {
      spec.approval.approvers = options.approvers ?? [ALICE];
    },
  });
  cleanups.push(() => ws.cleanup());
  const notifier = localSlackNotifier({ botToken: 'xoxb-local', channel: 'C0RELEASES', signingSecret: SECRET, apiUrl: slack.apiUrl });
  if (!notifier) throw new Error('expected a Slack notifier');
  const lines: string[] = [];
  ws.deps.notifier = new TerminalAndSlackNotifier((line) => lines.push(line), notifier, { waitingHint: false });

  // The server runs as `bakery callback-server` would: its own deps on the same state directory.
  const other = ws.otherTerminal();
  const outcomes: SlackOutcome[] = [];
  const deps: SlackCallbackDeps = {
    approvals: other.approvals,
    callbacks: other.callbacks,
    notifier,
    clock: other.clock,
    replies: localReplies(notifier, (line) => lines.push(line)),
    signingSecret: async () => SECRET,
  };
  const server: CallbackServer = await startCallbackServer({ deps, onOutcome: (o) => outcomes.push(o) });
  cleanups.push(() => server.close());
  return { slack, ws, server, outcomes, lines };
}

describe('local callback server', () => {
  it('releases a waiting local bake on a signed click by an approver, after refusing someone else', async () => {
    // Prepare
    const { slack, ws, server, outcomes } = await setUp();
    const asked = approvalRequested(ws.deps);
    const running = runBake(ws.request('bake-slack'), { deps: ws.deps, approve: 'wait', approver: 'unused', retryIntervalMs: 0 });
    const record = await asked;
    const posted = await until('the message location', async () => (await ws.deps.approvals.get(record.id))?.message ?? undefined);

    // Act
    const refused = await post(server.url, signedClick(record.id, MALLORY, posted));
    const approved = await post(server.url, signedClick(record.id, ALICE, posted));
    const outcome = await running;
    const again = await post(server.url, signedClick(record.id, ALICE, posted));
    await server.close();

    // Assess
    expect([refused.status, approved.status, again.status]).toEqual([200, 200, 200]);
    expect(outcomes.map((o) => (o.kind === 'refused' ? o.reason : o.kind))).toEqual(['not-an-approver', 'decided', 'already-decided']);
    expect(outcome).toMatchObject({ status: 'succeeded', output: { approval: { approvalId: record.id, by: ALICE } } });
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1' });
    // The request's own message shows the decision; the two refused clickers were told privately.
    const updates = slack.calls('chat.update');
    expect(updates.map((u) => [u.form.get('channel'), u.form.get('ts')])).toEqual([[posted.channel, posted.ts]]);
    expect(updates[0]?.form.get('blocks')).toContain(`*Approved* by <@${ALICE}>`);
    expect(slack.calls('chat.postEphemeral').map((e) => [e.form.get('user'), e.form.get('text')])).toEqual([
      [MALLORY, expect.stringContaining('You are not an approver')],
      [ALICE, expect.stringContaining('already decided')],
    ]);
  });

  it('answers 401 to an unsigned request, 404 elsewhere, 413 to a huge body, and listens on 127.0.0.1 only', async () => {
    // Prepare
    const { server, outcomes } = await setUp();
    const url = new URL(server.url);

    // Act
    const unsigned = await fetch(server.url, { method: 'POST', body: 'payload=%7B%7D' });
    const get = await fetch(server.url);
    const elsewhere = await fetch(new URL('/other', url), { method: 'POST', body: '' });
    const huge = await fetch(server.url, { method: 'POST', body: 'x'.repeat(1024 * 1024) }).catch((error: Error) => error);

    // Assess
    expect(url.hostname).toBe('127.0.0.1');
    expect(url.pathname).toBe(INTERACTIONS_PATH);
    expect(unsigned.status).toBe(401);
    expect([get.status, elsewhere.status]).toEqual([404, 404]);
    // The server refuses the body (413) and drops the connection; either way nothing is decided.
    if (!(huge instanceof Error)) expect(huge.status).toBe(413);
    expect(outcomes.map((o) => o.kind)).toEqual(['unauthenticated']);
  });
});
