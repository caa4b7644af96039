/**
 * The local execution journal: a bake survives its process. Bakes run in a child
 * process (test/helpers/bake-child.ts: the real ASL on the local runner, fake image
 * build) that is SIGKILLed at a named point; `resumeExecution` then continues it in
 * this process, and the state directory must hold what one uninterrupted bake leaves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decideApproval } from '../../src/cores/approval.ts';
import { NotInterruptedError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { listExecutions, readExecution, versionsInFlight } from '../../src/local/journal.ts';
import { type RunOutcome, resumeExecution, runBake, type UpToDateOutcome } from '../../src/local/runner.ts';
import { runCli } from '../helpers/cli.ts';
import { approvalRequested, CACHED_START, makeWorkspace, NODE22, seedLiveRelease, type Workspace } from '../helpers/local-bake.ts';
import { rejection } from '../helpers/rejection.ts';

const CHILD = path.join(PROJECT_ROOT, 'test', 'helpers', 'bake-child.ts');
const LAYER = 'hello-node22';
const TASK_STATES = [
  'ResolveBake',
  'BuildImage',
  'PublishLayer',
  'PublishVersion',
  'Validate',
  'RequestApproval',
  'Release',
  'RecordSuccess',
];

let workspaces: Workspace[] = [];
let children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

/** The example with one validation case (makeWorkspace's default): what is tested here is the journal, not validation. */
async function workspace(options: Parameters<typeof makeWorkspace>[0] = {}): Promise<Workspace> {
  const ws = await makeWorkspace(options);
  workspaces.push(ws);
  return ws;
}

/** Poll `probe` until it gives a value; bounded, so a bake that went wrong fails the test instead of hanging it. */
async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A bake in a child process, stopped at `pauseAt` (or left waiting for approval), then SIGKILLed. */
async function bakeKilledAt(ws: Workspace, bakeId: string, pauseAt: string | 'approval'): Promise<string> {
  const child = spawn(
    NODE22,
    [...CACHED_START, CHILD, ws.dir, bakeId, pauseAt === 'approval' ? '-' : pauseAt, pauseAt === 'approval' ? 'wait' : 'auto'],
    {
      cwd: PROJECT_ROOT,
    },
  );
  children.push(child);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`the bake ended before ${pauseAt}:\n${output}`);
    if (pauseAt === 'approval') {
      // Waiting on its token, with its approval record stored (before that, there is nothing to decide yet).
      const [execution] = await listExecutions(ws.home);
      if (execution?.status !== 'waiting') return undefined;
      return (await ws.deps.approvals.findByBake(bakeId)) ? true : undefined;
    }
    return output.includes(`(test) paused at ${pauseAt}`) ? true : undefined;
  }, `the bake to reach ${pauseAt}`);
  child.kill('SIGKILL');
  await exited;
  return output;
}

const resume = (ws: Workspace, bakeId: string, approve: 'auto' | 'wait' = 'auto'): Promise<RunOutcome> =>
  resumeExecution(bakeId, { deps: ws.deps, approve, approver: 'tester', retryIntervalMs: 0 }) as Promise<RunOutcome>;

function expectSucceeded(outcome: RunOutcome | UpToDateOutcome): asserts outcome is Extract<RunOutcome, { status: 'succeeded' }> {
  if (outcome.status !== 'succeeded')
    expect.fail(
      outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
    );
}

/** What one uninterrupted bake of new code over a live version 1 leaves. */
async function expectReleasedOnce(ws: Workspace, bakeId: string) {
  const layers = await ws.deps.layers.list(LAYER);
  expect(layers).toHaveLength(1);
  expect((await ws.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1', '2']);
  const entries = (await ws.deps.ledger.list()).filter((e) => e.bakeId === bakeId);
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ type: 'released', functions: [{ name: 'hello', alias: 'live', from: '1', to: '2' }] });
  expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '2' });
  expect((await listExecutions(ws.home)).find((e) => e.bakeId === bakeId)).toMatchObject({ status: 'succeeded' });
}

describe('the execution journal', { timeout: 60_000 }, () => {
  it('journals every Task state with its input and result, and lists the execution as succeeded', async () => {
    // Prepare
    const ws = await workspace();

    // Act
    const outcome = await runBake(ws.request('bake-journal'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });

    // Assess
    expectSucceeded(outcome);
    const record = await readExecution(ws.home, 'bake-journal');
    expect(record?.tasks.map((t) => t.state)).toEqual(TASK_STATES);
    expect(record?.tasks.every((t) => t.input !== null && t.result !== undefined)).toBe(true);
    expect(record?.tasks.find((t) => t.state === 'RequestApproval')?.token).toMatch(/^RequestApproval-/);
    expect(record?.owner).toMatchObject({ pid: process.pid });
    expect(await listExecutions(ws.home)).toEqual([
      expect.objectContaining({ bakeId: 'bake-journal', status: 'succeeded', state: 'RecordSuccess', spec: ws.specFile }),
    ]);
    expect(await versionsInFlight(ws.home)).toEqual({ layers: [], functions: [], publishing: [] });
  });

  it('shows a bake waiting for approval, and names the versions it holds for prune', async () => {
    // Prepare
    const ws = await workspace();
    await seedLiveRelease(ws);
    const asked = approvalRequested(ws.deps);

    // Act
    const running = runBake(ws.request('bake-waiting'), { deps: ws.deps, approve: 'wait', approver: 'tester', retryIntervalMs: 0 });
    const record = await asked;
    const listed = await listExecutions(ws.home);
    const held = await versionsInFlight(ws.home);
    await decideApproval({ ref: record.id, outcome: 'approved', by: 'dave' }, ws.otherTerminal());
    const outcome = await running;

    // Assess
    expect(listed).toEqual([expect.objectContaining({ bakeId: 'bake-waiting', status: 'waiting', state: 'RequestApproval' })]);
    expect(held.layers).toEqual([{ arn: record.summary.layer.arn, bakeId: 'bake-waiting', status: 'waiting' }]);
    expect(held.functions).toEqual([{ name: 'hello', version: '2', bakeId: 'bake-waiting', status: 'waiting' }]);
    expect(held.publishing).toEqual([]);
    expectSucceeded(outcome);
    expect(await versionsInFlight(ws.home)).toEqual({ layers: [], functions: [], publishing: [] });
  });

  it("waits for an approval of a year (Step Functions' maximum) instead of timing out at once", async () => {
    // Prepare: anything over 2,147,483 s overflowed Node's timer, which then fired at once.
    const ws = await workspace({ spec: (spec) => Object.assign(spec.approval, { timeoutSeconds: 365 * 24 * 3600 }) });
    const asked = approvalRequested(ws.deps);

    // Act
    const running = runBake(ws.request('bake-year'), { deps: ws.deps, approve: 'wait', approver: 'tester', retryIntervalMs: 0 });
    const record = await asked;
    // Long enough for an overflowed timer (1 ms) to have failed the task.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await decideApproval({ ref: record.id, outcome: 'approved', by: 'dave' }, ws.otherTerminal());
    const outcome = await running;

    // Assess
    expectSucceeded(outcome);
    expect(Date.parse(record.expiresAt) - Date.parse(record.createdAt)).toBe(365 * 24 * 3600 * 1000);
  });
});

describe('a bake killed with SIGKILL, then resumed', { timeout: 120_000 }, () => {
  // Each point: where the child is stopped, the state `bakery executions` then shows.
  const points: Array<[string, string, string]> = [
    ['during the build', 'BuildImage:waiting', 'BuildImage'],
    ['after PublishLayer', 'PublishLayer:completed', 'PublishLayer'],
    ['after PublishVersion', 'PublishVersion:completed', 'PublishVersion'],
    ['during Validate', 'Validate:entered', 'Validate'],
    ['between Release and RecordSuccess', 'Release:completed', 'Release'],
    ['during RecordSuccess', 'RecordSuccess:entered', 'RecordSuccess'],
  ];

  it.each(points)('%s: resume releases once, as one bake would', async (_, pauseAt, state) => {
    // Prepare
    const ws = await workspace();
    await seedLiveRelease(ws);
    const bakeId = `bake-kill-${state.toLowerCase()}`;

    // Act
    await bakeKilledAt(ws, bakeId, pauseAt);
    const interrupted = await listExecutions(ws.home);
    const outcome = await resume(ws, bakeId);

    // Assess
    expect(interrupted).toEqual([expect.objectContaining({ bakeId, status: 'interrupted', state })]);
    expectSucceeded(outcome);
    expect(outcome.bakeId).toBe(bakeId);
    await expectReleasedOnce(ws, bakeId);
    const record = await readExecution(ws.home, bakeId);
    expect(record?.resumes).toEqual([expect.objectContaining({ state, owner: expect.objectContaining({ pid: process.pid }) })]);
  });

  it('while waiting for approval: `approve` records the decision, says the bake is interrupted, and resume releases with it', async () => {
    // Prepare
    const ws = await workspace();
    await seedLiveRelease(ws);
    const env = { BAKERY_HOME: ws.home.root, BAKERY_USER: 'alice' };

    // Act
    await bakeKilledAt(ws, 'bake-kill-approval', 'approval');
    const approve = await runCli(['approve', 'bake-kill-approval'], env);
    const before = await ws.deps.functions.getAlias('hello', 'live');
    const outcome = await resume(ws, 'bake-kill-approval', 'wait');

    // Assess
    expect(approve.code).toBe(1);
    expect(approve.stdout).not.toContain('approved by alice\n');
    expect(approve.stderr).toContain(
      'BakeInterruptedError: bake bake-kill-approval: approved by alice is recorded, but the bake is interrupted',
    );
    expect(approve.stderr).toContain('bakery resume bake-kill-approval');
    expect(before).toMatchObject({ version: '1' });
    expectSucceeded(outcome);
    expect(outcome.output.approval).toMatchObject({ decision: 'approved', by: 'alice' });
    await expectReleasedOnce(ws, 'bake-kill-approval');
  });

  it('resumed while waiting for approval, the wait keeps its deadline: the timeout counts from when the state was first entered', async () => {
    // Prepare
    const ws = await workspace({ spec: (spec) => Object.assign(spec.approval, { timeoutSeconds: 3600 }) });
    await seedLiveRelease(ws);
    await bakeKilledAt(ws, 'bake-kill-deadline', 'approval');
    const asked = await ws.deps.approvals.findByBake('bake-kill-deadline');
    // The bake has waited 3599 s of its hour when it is resumed.
    const file = ws.home.path('executions', 'bake-kill-deadline.json');
    const record = JSON.parse(await readFile(file, 'utf8')) as { tasks: Array<{ state: string; enteredAt: string }> };
    const waiting = record.tasks.at(-1) as { state: string; enteredAt: string };
    waiting.enteredAt = new Date(Date.now() - 3599_000).toISOString();
    await writeFile(file, JSON.stringify(record));

    // Act
    const outcome = await Promise.race([
      resume(ws, 'bake-kill-deadline', 'wait'),
      new Promise<'still waiting'>((resolve) => setTimeout(() => resolve('still waiting'), 20_000)),
    ]);

    // Assess
    expect(outcome).toMatchObject({ status: 'failed', state: 'RequestApproval', error: 'ApprovalTimedOutError' });
    expect((await ws.deps.approvals.findByBake('bake-kill-deadline'))?.expiresAt).toBe(asked?.expiresAt);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1' });
    const resumed = await readExecution(ws.home, 'bake-kill-deadline');
    expect(resumed?.tasks.filter((t) => t.state === 'RequestApproval').map((t) => t.enteredAt)).toEqual([
      waiting.enteredAt,
      waiting.enteredAt,
    ]);
  });

  it('a rejection recorded while the bake was interrupted fails it on resume, once, with nothing released', async () => {
    // Prepare
    const ws = await workspace();
    await seedLiveRelease(ws);

    // Act
    await bakeKilledAt(ws, 'bake-kill-reject', 'approval');
    const reject = await runCli(['reject', 'bake-kill-reject', '--reason', 'not today'], { BAKERY_HOME: ws.home.root, BAKERY_USER: 'bob' });
    const outcome = await resume(ws, 'bake-kill-reject', 'wait');

    // Assess
    expect(reject.code).toBe(1);
    expect(reject.stderr).toContain('rejected by bob (not today) is recorded, but the bake is interrupted');
    expect(outcome).toMatchObject({ status: 'failed', state: 'RequestApproval', error: 'ApprovalRejectedError' });
    expect((await ws.deps.ledger.list()).filter((e) => e.bakeId === 'bake-kill-reject')).toEqual([
      expect.objectContaining({ type: 'failed', error: 'ApprovalRejectedError' }),
    ]);
    expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1' });
  });

  it('refuses to resume an execution that still runs or has ended', async () => {
    // Prepare
    const ws = await workspace();
    const asked = approvalRequested(ws.deps);
    const running = runBake(ws.request('bake-alive'), { deps: ws.deps, approve: 'wait', approver: 'tester', retryIntervalMs: 0 });
    const record = await asked;

    // Act
    const whileWaiting = await rejection(resume(ws, 'bake-alive'));
    await decideApproval({ ref: record.id, outcome: 'approved', by: 'dave' }, ws.otherTerminal());
    expectSucceeded(await running);
    const afterEnd = await rejection(resume(ws, 'bake-alive'));

    // Assess
    expect(whileWaiting).toBeInstanceOf(NotInterruptedError);
    expect(whileWaiting.message).toContain('is waiting in pid');
    expect(afterEnd).toBeInstanceOf(NotInterruptedError);
    expect(afterEnd.message).toContain('has ended (succeeded)');
  });
});
