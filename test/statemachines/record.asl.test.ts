/**
 * Exactly one ledger entry per bake (#11.6), through the real `statemachines/bake.asl.json`
 * on the local runner: the record tasks are idempotent when the state machine retries
 * them, and recording never depends on notifying (a Slack that cannot be reached is
 * tried within a bounded budget after the entry is written, and the outcome is noted).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SlackNotifier } from '../../src/adapters/aws/slack.ts';
import { TerminalAndSlackNotifier } from '../../src/adapters/local/slack.ts';
import { renderTo } from '../../src/cli/render.ts';
import { NOTIFY_BUDGET, type NotificationNote, notificationKey, notifyBudgetMs } from '../../src/cores/record.ts';
import { TransientBackendError } from '../../src/errors.ts';
import { BAKE_ASL } from '../../src/local/asl.ts';
import { type RunOutcome, runBake, type UpToDateOutcome } from '../../src/local/runner.ts';
import { FakeImageBuilder, makeWorkspace, seedLiveRelease, type Workspace } from '../helpers/local-bake.ts';

let workspaces: Workspace[] = [];
afterEach(async () => {
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace();
  workspaces.push(ws);
  return ws;
}

function bake(ws: Workspace, bakeId: string, lines: string[] = []): Promise<RunOutcome | UpToDateOutcome> {
  return runBake(ws.request(bakeId), {
    deps: ws.deps,
    approve: 'auto',
    approver: 'tester',
    retryIntervalMs: 0,
    onEvent: renderTo((l) => lines.push(l)),
  });
}

const entered = (lines: string[]) => lines.filter((l) => l.startsWith('▸ ')).map((l) => l.slice(2));

/** A loopback port nothing listens on: Slack "unreachable" (connection refused), with no network involved. */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The build fails, so the bake goes to RecordFailure. */
function failTheBuild(ws: Workspace): void {
  ws.deps.imageBuilder = new FakeImageBuilder(ws.deps.callbacks, ws.runtimeTree, {
    error: 'ImageBuildFailedError',
    cause: 'component step FetchNode failed',
  });
}

describe('recording a bake end on the local runner', () => {
  it('with Slack configured but unreachable: one failed entry, the original error, the notification noted as failed', async () => {
    // Prepare: the real Slack client against a port that refuses connections (no client retries, no waits between tries).
    const ws = await workspace();
    failTheBuild(ws);
    const slack = new SlackNotifier({
      channel: 'C0RELEASES',
      tokenParameter: 'SLACK_BOT_TOKEN',
      readToken: async () => 'xoxb-test',
      clientOptions: { slackApiUrl: `http://127.0.0.1:${await closedPort()}/api/`, retryConfig: { retries: 0 } },
    });
    ws.deps.notifier = new TerminalAndSlackNotifier(() => {}, slack, { waitingHint: false });
    ws.deps.notifyBudget = { ...NOTIFY_BUDGET, backoffMs: 0 };
    const lines: string[] = [];

    // Act
    const outcome = await bake(ws, 'bake-slack-down', lines);

    // Assess: BakeFailed with the build's error, not FailureNotRecorded; RecordFailure ran once, not retried.
    expect(outcome).toMatchObject({ status: 'failed', state: 'BuildImage', error: 'ImageBuildFailedError' });
    expect(entered(lines)).toEqual(['ResolveBake', 'BuildImage', 'RecordFailure']);
    const ledger = await ws.deps.ledger.list();
    expect(ledger).toHaveLength(1);
    expect(ledger[0]).toMatchObject({ type: 'failed', bakeId: 'bake-slack-down', state: 'BuildImage' });
    const note = await ws.deps.artefacts.getJson<NotificationNote>(notificationKey('bake-slack-down'));
    expect(note?.notifications).toEqual([
      { what: 'bakeFailed', status: 'failed', attempts: NOTIFY_BUDGET.attempts, error: expect.stringMatching(/unreachable/) },
    ]);
  });

  it('RecordFailure retried after its entry was written (the answer was lost): still one entry, notified once', async () => {
    // Prepare
    const ws = await workspace();
    failTheBuild(ws);
    const append = ws.deps.ledger.append.bind(ws.deps.ledger);
    let lost = 0;
    ws.deps.ledger.append = async (entry) => {
      await append(entry);
      if (lost++ === 0) throw new TransientBackendError('the write went through, its answer did not');
    };
    const failures: string[] = [];
    const bakeFailed = ws.deps.notifier.bakeFailed.bind(ws.deps.notifier);
    ws.deps.notifier.bakeFailed = async (failure) => {
      failures.push(failure.error);
      await bakeFailed(failure);
    };
    const lines: string[] = [];

    // Act
    const outcome = await bake(ws, 'bake-retried-failure', lines);

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'BuildImage', error: 'ImageBuildFailedError' });
    expect(lines).toContain('↻ RecordFailure: retry 1');
    expect(await ws.deps.ledger.list()).toHaveLength(1);
    expect(failures).toEqual(['ImageBuildFailedError']);
  });

  it('RecordSuccess retried after its entry was written: one released entry, and the manifest it hashed is unchanged', async () => {
    // Prepare
    const ws = await workspace();
    await seedLiveRelease(ws);
    const append = ws.deps.ledger.append.bind(ws.deps.ledger);
    let lost = 0;
    ws.deps.ledger.append = async (entry) => {
      await append(entry);
      if (entry.type === 'released' && lost++ === 0) throw new TransientBackendError('the write went through, its answer did not');
    };

    // Act
    const outcome = await bake(ws, 'bake-retried-success');

    // Assess
    expect(outcome.status).toBe('succeeded');
    const ledger = await ws.deps.ledger.list();
    expect(ledger.map((e) => e.type)).toEqual(['released']);
    if (outcome.status !== 'succeeded' || ledger[0]?.type !== 'released') return;
    expect(outcome.output.record.manifest).toEqual(ledger[0].manifest);
    const bytes = await readFile(new URL(ledger[0].manifest.uri));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(ledger[0].manifest.sha256Hex);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '2' });
  });
});

describe('the notification budget', () => {
  it('ends well within 30 s and within the record tasks’ own timeout, so the state machine never retries a notifier', async () => {
    // Prepare
    const definition = JSON.parse(await readFile(BAKE_ASL, 'utf8')) as { States: Record<string, { TimeoutSeconds?: number }> };

    // Assess
    expect(notifyBudgetMs(NOTIFY_BUDGET)).toBeLessThan(30_000);
    for (const state of ['RecordFailure', 'RecordSuccess']) {
      expect(notifyBudgetMs(NOTIFY_BUDGET)).toBeLessThan((definition.States[state]?.TimeoutSeconds ?? 0) * 1000);
    }
  });
});
