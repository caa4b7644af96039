import { describe, expect, it } from 'vitest';
import type { ApprovalInput } from '../../src/cores/approval.ts';
import { approvalDigest, decideApproval, expireApproval, requestApproval } from '../../src/cores/approval.ts';
import {
  AlreadyDecidedError,
  ApprovalExpiredError,
  BakeryError,
  InputError,
  NotAnApproverError,
  NotFoundError,
  TransientBackendError,
} from '../../src/errors.ts';
import { passedValidation, publishedLayer, publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import {
  FakeClock,
  MemoryApprovalStore,
  MemoryFunctionRegistry,
  RecordingCallbacks,
  RecordingNotifier,
  sequentialIds,
} from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

function approvalInput(overrides: Partial<ApprovalInput> = {}): ApprovalInput {
  const versions = publishedVersions(['hello', '2']);
  return {
    bake: resolvedBake(),
    layer: publishedLayer(),
    versions,
    validation: passedValidation(versions),
    taskToken: 'RequestApproval-token-1',
    ...overrides,
  };
}

function world(options: { approvers?: string[]; timeoutSeconds?: number } = {}) {
  const clock = new FakeClock('2026-11-22T08:00:00.000Z');
  const deps = {
    approvals: new MemoryApprovalStore(),
    functions: new MemoryFunctionRegistry(),
    notifier: new RecordingNotifier(),
    callbacks: new RecordingCallbacks(),
    clock,
    ids: sequentialIds('x'),
  };
  const bake = resolvedBake();
  bake.approval = { approvers: options.approvers ?? [], timeoutSeconds: options.timeoutSeconds ?? 3600 };
  return { deps, clock, input: approvalInput({ bake }) };
}

describe('approvalDigest', () => {
  it('is stable: the same content gives the same digest, whatever the token, the bake details or the key order', () => {
    // Prepare
    const a = approvalInput();
    const reordered = JSON.parse(JSON.stringify({ validation: a.validation, versions: a.versions, layer: a.layer })) as typeof a;

    // Act
    const first = approvalDigest({ ...a, bakeId: 'b1' });
    const again = approvalDigest({ layer: reordered.layer, versions: reordered.versions, validation: reordered.validation, bakeId: 'b1' });
    const otherSize = approvalDigest({ ...a, layer: { ...a.layer, size: 999_999, reused: true }, bakeId: 'b1' });

    // Assess
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(again).toBe(first);
    expect(otherSize).toBe(first);
  });

  it('changes when anything an approver signs off changes', () => {
    // Prepare
    const a = approvalInput();
    const base = approvalDigest({ ...a, bakeId: 'b1' });
    const [fn] = a.versions.functions;
    if (!fn) throw new Error('fixture has a function');

    // Act
    const variants = [
      approvalDigest({ ...a, bakeId: 'b2' }),
      approvalDigest({ ...a, layer: { ...a.layer, codeSha256: 'other' }, bakeId: 'b1' }),
      approvalDigest({ ...a, layer: { ...a.layer, arn: `${a.layer.arn}0` }, bakeId: 'b1' }),
      approvalDigest({ ...a, versions: { functions: [{ ...fn, version: '3' }] }, bakeId: 'b1' }),
      approvalDigest({ ...a, versions: { functions: [{ ...fn, codeSha256: 'x' }] }, bakeId: 'b1' }),
      approvalDigest({ ...a, validation: { ...a.validation, passed: false }, bakeId: 'b1' }),
    ];

    // Assess
    for (const digest of variants) expect(digest).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });
});

describe('requestApproval', () => {
  it('stores an undecided record with the token, digest, live versions and expiry, then notifies', async () => {
    // Prepare
    const { deps, input } = world({ approvers: ['alice'], timeoutSeconds: 90 });
    deps.functions.seedAlias('hello', 'live', '1');

    // Act
    const { approvalId } = await requestApproval(input, deps);

    // Assess
    const record = await deps.approvals.get(approvalId);
    expect(approvalId).toBe('apr-x0001');
    expect(record).toEqual({
      id: 'apr-x0001',
      bakeId: input.bake.bakeId,
      taskToken: 'RequestApproval-token-1',
      digest: approvalDigest({ ...input, bakeId: input.bake.bakeId }),
      approvers: ['alice'],
      createdAt: '2026-11-22T08:00:00.000Z',
      expiresAt: '2026-11-22T08:01:30.000Z',
      summary: {
        // What the approver is shown as live, with the revision the approval binds.
        functions: [{ name: 'hello', version: '2', alias: 'live', live: '1', liveWeights: {}, liveRevisionId: 'rev-1' }],
        layer: { arn: input.layer.arn, codeSha256: input.layer.codeSha256, sha256Hex: input.layer.sha256Hex },
        runtime: 'node22 (NodeVersion 22.23.3)',
        validation: { passed: true, cases: 1 },
      },
      message: null,
      decision: null,
    });
    expect(deps.notifier.requested.map((r) => r.id)).toEqual(['apr-x0001']);
    expect(deps.callbacks.settled).toEqual([]);
  });

  it('remembers where the request was posted when the notifier can update it later', async () => {
    // Prepare
    const { deps, input } = world();
    deps.notifier.postedAt = { channel: 'C0RELEASES', ts: '1732262400.000100' };

    // Act
    const { approvalId } = await requestApproval(input, deps);

    // Assess
    expect((await deps.approvals.get(approvalId))?.message).toEqual({ channel: 'C0RELEASES', ts: '1732262400.000100' });
  });

  it('is idempotent per bake: a retried attempt reuses the record with its new token and expiry, and the same message', async () => {
    // Prepare: the first attempt stored and posted, then failed (a Slack hiccup, a Lambda timeout).
    const { deps, input, clock } = world({ timeoutSeconds: 600 });
    deps.notifier.postedAt = { channel: 'C0RELEASES', ts: '1.0001' };
    const first = await requestApproval(input, deps);
    clock.advance(30_000);

    // Act
    const retried = await requestApproval({ ...input, taskToken: 'RequestApproval-token-2' }, deps);

    // Assess
    expect(retried.approvalId).toBe(first.approvalId);
    expect(deps.approvals.records.size).toBe(1);
    const record = await deps.approvals.get(first.approvalId);
    expect(record).toMatchObject({ taskToken: 'RequestApproval-token-2', expiresAt: '2026-11-22T08:10:30.000Z', decision: null });
    // The retry hands the notifier the message it posted, so it updates it instead of posting again.
    expect(deps.notifier.requested.map((r) => r.message)).toEqual([null, { channel: 'C0RELEASES', ts: '1.0001' }]);
    // A decision now resumes the attempt that is waiting, not the one that failed.
    await decideApproval({ ref: first.approvalId, outcome: 'approved', by: 'bob' }, deps);
    expect(deps.callbacks.settled.map((s) => s.token)).toEqual(['RequestApproval-token-2']);
  });

  it('refuses to reuse a bake approval for other content', async () => {
    // Prepare
    const { deps, input } = world();
    await requestApproval(input, deps);

    // Act
    const error = await rejection(requestApproval({ ...input, layer: { ...input.layer, codeSha256: 'other' }, taskToken: 't2' }, deps));

    // Assess
    expect(error).toBeInstanceOf(BakeryError);
    expect(error.message).toContain('for other content');
    expect([...deps.approvals.records.values()].map((r) => r.taskToken)).toEqual(['RequestApproval-token-1']);
  });

  it('refuses a retried request once the bake was decided meanwhile', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);
    await deps.approvals.decide(approvalId, { outcome: 'approved', by: 'bob', at: '2026-11-22T08:00:01.000Z', reason: null });

    // Act
    const error = await rejection(requestApproval({ ...input, taskToken: 't2' }, deps));

    // Assess
    expect(error).toBeInstanceOf(AlreadyDecidedError);
    expect(error.message).toContain('while its request was being retried');
    expect((await deps.approvals.get(approvalId))?.taskToken).toBe('RequestApproval-token-1');
    expect(deps.notifier.requested).toHaveLength(1);
  });

  it('says the alias has no live version yet on a first release', async () => {
    // Prepare
    const { deps, input } = world();

    // Act
    const { approvalId } = await requestApproval(input, deps);

    // Assess
    expect((await deps.approvals.get(approvalId))?.summary.functions[0]?.live).toBeNull();
  });
});

describe('decideApproval', () => {
  it('approves once: the token gets the approval result and the decision is stored', async () => {
    // Prepare
    const { deps, input, clock } = world();
    const { approvalId } = await requestApproval(input, deps);
    clock.advance(5000);

    // Act
    const decided = await decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps);

    // Assess
    expect(decided.decision).toEqual({ outcome: 'approved', by: 'bob', at: '2026-11-22T08:00:05.000Z', reason: null });
    expect(deps.callbacks.settled).toEqual([
      {
        token: 'RequestApproval-token-1',
        status: 'succeeded',
        output: {
          approvalId,
          decision: 'approved',
          by: 'bob',
          at: '2026-11-22T08:00:05.000Z',
          // The alias did not exist when the approval was asked for: the release may only create it.
          live: [{ name: 'hello', alias: 'live', version: null, weights: {}, revisionId: null }],
        },
      },
    ]);
    expect(deps.notifier.decided.map((r) => r.decision?.outcome)).toEqual(['approved']);
  });

  it('finds the approval by its bake id as well', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);

    // Act
    const decided = await decideApproval({ ref: input.bake.bakeId, outcome: 'approved', by: 'bob' }, deps);

    // Assess
    expect(decided.id).toBe(approvalId);
  });

  it('refuses a second decision and changes nothing', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);
    await decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps);

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'rejected', by: 'eve', reason: 'no' }, deps));

    // Assess
    expect(error).toBeInstanceOf(AlreadyDecidedError);
    expect(error.message).toContain('already approved by bob');
    expect((await deps.approvals.get(approvalId))?.decision?.outcome).toBe('approved');
    expect(deps.callbacks.settled).toHaveLength(1);
  });

  it('lets exactly one of two concurrent decisions through', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);

    // Act
    const results = await Promise.allSettled([
      decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps),
      decideApproval({ ref: approvalId, outcome: 'rejected', by: 'eve' }, deps),
    ]);

    // Assess
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(AlreadyDecidedError);
    expect(deps.callbacks.settled).toHaveLength(1);
  });

  it('refuses an approver who is not on the list, and records no decision', async () => {
    // Prepare
    const { deps, input } = world({ approvers: ['alice'] });
    const { approvalId } = await requestApproval(input, deps);

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'approved', by: 'mallory' }, deps));

    // Assess
    expect(error).toBeInstanceOf(NotAnApproverError);
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toContain('mallory may not decide');
    expect((error as InputError).hint).toContain('alice');
    expect((await deps.approvals.get(approvalId))?.decision).toBeNull();
    expect(deps.callbacks.settled).toEqual([]);
    // The allowed approver can still decide.
    await decideApproval({ ref: approvalId, outcome: 'approved', by: 'alice' }, deps);
    expect(deps.callbacks.settled).toHaveLength(1);
  });

  it('accepts a decision at the expiry instant', async () => {
    // Prepare
    const { deps, input, clock } = world({ timeoutSeconds: 60 });
    const { approvalId } = await requestApproval(input, deps);
    clock.advance(60_000);

    // Act
    const decided = await decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps);

    // Assess
    expect(decided.decision?.at).toBe('2026-11-22T08:01:00.000Z');
  });

  it('refuses a decision after the approval expired, and records none', async () => {
    // Prepare
    const { deps, input, clock } = world({ timeoutSeconds: 60 });
    const { approvalId } = await requestApproval(input, deps);
    clock.advance(60_001);

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps));

    // Assess
    expect(error).toBeInstanceOf(ApprovalExpiredError);
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toContain('expired at 2026-11-22T08:01:00.000Z');
    expect((await deps.approvals.get(approvalId))?.decision).toBeNull();
    expect(deps.callbacks.settled).toEqual([]);
  });

  it('fails the waiting task with ApprovalRejectedError and the reason on a rejection', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);

    // Act
    const decided = await decideApproval({ ref: approvalId, outcome: 'rejected', by: 'carol', reason: 'wrong node version' }, deps);

    // Assess
    expect(decided.decision).toMatchObject({ outcome: 'rejected', by: 'carol', reason: 'wrong node version' });
    expect(deps.callbacks.settled).toEqual([
      {
        token: 'RequestApproval-token-1',
        status: 'failed',
        error: 'ApprovalRejectedError',
        cause: 'rejected by carol: wrong node version',
      },
    ]);
  });

  it('refuses a decision on an approval closed as expired, even before its expiry time', async () => {
    // Prepare
    const { deps, input } = world({ timeoutSeconds: 3600 });
    const { approvalId } = await requestApproval(input, deps);
    await expireApproval({ bakeId: input.bake.bakeId, reason: 'timed out' }, deps);

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps));

    // Assess
    expect(error).toBeInstanceOf(ApprovalExpiredError);
    expect((await deps.approvals.get(approvalId))?.decision?.outcome).toBe('expired');
    expect(deps.callbacks.settled).toEqual([]);
    expect(deps.notifier.decided).toEqual([]);
  });

  it('says a decision came too late when the task no longer waits, and does not claim it counted', async () => {
    // Prepare: Step Functions refuses the token of a task that timed out.
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);
    deps.callbacks.succeed = async () => {
      throw new AlreadyDecidedError('SendTaskSuccess: the task is no longer waiting');
    };

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps));

    // Assess
    expect(error).toBeInstanceOf(ApprovalExpiredError);
    expect(error.message).toContain('was no longer waiting');
    expect(deps.notifier.decided).toEqual([]);
  });

  it('passes any other failure to resume the task through unchanged', async () => {
    // Prepare
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);
    deps.callbacks.succeed = async () => {
      throw new TransientBackendError('throttled');
    };

    // Act
    const error = await rejection(decideApproval({ ref: approvalId, outcome: 'approved', by: 'bob' }, deps));

    // Assess
    expect(error).toBeInstanceOf(TransientBackendError);
  });

  it('says which approval it could not find', async () => {
    // Prepare
    const { deps } = world();

    // Act
    const error = await rejection(decideApproval({ ref: 'apr-nope', outcome: 'approved', by: 'bob' }, deps));

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toContain('apr-nope');
  });
});

describe('expireApproval', () => {
  it('closes an undecided approval as expired, by bakery, once', async () => {
    // Prepare
    const { deps, input, clock } = world({ timeoutSeconds: 60 });
    const { approvalId } = await requestApproval(input, deps);
    clock.advance(61_000);

    // Act
    const expired = await expireApproval({ bakeId: input.bake.bakeId, reason: 'nobody decided within 60 seconds' }, deps);
    const again = await expireApproval({ bakeId: input.bake.bakeId, reason: 'a retried RecordFailure' }, deps);

    // Assess
    const decision = { outcome: 'expired', by: 'bakery', at: '2026-11-22T08:01:01.000Z', reason: 'nobody decided within 60 seconds' };
    expect(expired?.decision).toEqual(decision);
    expect(again?.decision).toEqual(decision);
    expect((await deps.approvals.get(approvalId))?.decision).toEqual(decision);
  });

  it('keeps a decision that won the race against the timeout', async () => {
    // Prepare: the click's conditional write lands between the read and the expiry's write.
    const { deps, input } = world();
    const { approvalId } = await requestApproval(input, deps);
    const findByBake = deps.approvals.findByBake.bind(deps.approvals);
    deps.approvals.findByBake = async (bakeId) => {
      const found = await findByBake(bakeId);
      await deps.approvals.decide(approvalId, { outcome: 'rejected', by: 'carol', at: '2026-11-22T08:00:02.000Z', reason: null });
      return found;
    };

    // Act
    const record = await expireApproval({ bakeId: input.bake.bakeId, reason: 'timed out' }, deps);

    // Assess
    expect(record?.decision).toMatchObject({ outcome: 'rejected', by: 'carol' });
  });

  it('does nothing for a bake that never asked', async () => {
    const { deps } = world();

    await expect(expireApproval({ bakeId: 'never-asked', reason: 'x' }, deps)).resolves.toBeUndefined();
  });
});
