import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  MANIFEST_SCHEMA_VERSION,
  manifestKey,
  notificationKey,
  type PinManifest,
  recordFailure,
  recordSuccess,
} from '../../src/cores/record.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';
import type { BakeState, ReleaseResult } from '../../src/state.ts';
import { builtImage, passedValidation, publishedLayer, publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import {
  FakeClock,
  MemoryApprovalStore,
  MemoryArtefactStore,
  MemoryFunctionRegistry,
  MemoryLedger,
  RecordingNotifier,
} from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

function world() {
  return {
    artefacts: new MemoryArtefactStore(),
    ledger: new MemoryLedger(),
    notifier: new RecordingNotifier(),
    clock: new FakeClock('2026-11-22T09:00:00.000Z'),
    approvals: new MemoryApprovalStore(),
    functions: new MemoryFunctionRegistry(),
  };
}

function releasedState(): BakeState & Required<Pick<BakeState, 'bake' | 'layer' | 'release'>> {
  const versions = publishedVersions(['hello', '2']);
  const release: ReleaseResult = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null };
  return {
    bake: resolvedBake(),
    image: builtImage('file:///tmp/tree'),
    layer: publishedLayer({ reused: true }),
    versions,
    validation: passedValidation(versions),
    approval: { approvalId: 'apr-1', decision: 'approved', by: 'bob', at: '2026-11-22T08:59:00.000Z', live: [] },
    release,
  };
}

describe('recordSuccess', () => {
  it('stores a schema-versioned pin manifest of everything the bake produced', async () => {
    // Prepare
    const deps = world();
    const state = releasedState();

    // Act
    const { bakeId, manifest } = await recordSuccess(state, deps);

    // Assess
    expect(bakeId).toBe(state.bake.bakeId);
    expect(manifest.uri).toBe(`mem://${manifestKey(bakeId)}`);
    expect(MANIFEST_SCHEMA_VERSION).toBe(1);
    const { reused: _reused, ...layerWithoutReused } = state.layer;
    expect(await deps.artefacts.getJson<PinManifest>(manifestKey(bakeId))).toEqual({
      schemaVersion: 1,
      bakeId,
      status: 'released',
      recordedAt: '2026-11-22T09:00:00.000Z',
      trigger: { type: 'cli', user: 'tester' },
      recipe: state.bake.recipe,
      bakeKey: state.image?.bakeKey,
      build: state.image?.buildRecord,
      imageArn: null,
      layer: layerWithoutReused,
      functions: [
        {
          name: 'hello',
          version: '2',
          codeSha256: 'code-hello-b64',
          alias: 'live',
          handler: 'index.handler',
          runtime: 'provided.al2023',
          layers: [state.layer.arn],
          environmentNames: [],
          memorySize: 256,
          timeout: 10,
          code: state.bake.functions[0]?.code,
        },
      ],
      validation: state.validation,
      approval: state.approval,
      release: state.release,
      aliases: [{ name: 'hello', alias: 'live', before: '1', after: '2' }],
      failure: null,
    });
  });

  it('appends one released entry to the ledger, pointing at the manifest', async () => {
    // Prepare
    const deps = world();
    const state = releasedState();

    // Act
    const { manifest } = await recordSuccess(state, deps);

    // Assess
    expect(deps.ledger.entries).toEqual([
      {
        type: 'released',
        bakeId: state.bake.bakeId,
        at: '2026-11-22T09:00:00.000Z',
        trigger: state.bake.trigger,
        layer: { arn: state.layer.arn, version: state.layer.version, codeSha256: state.layer.codeSha256 },
        functions: state.release.functions,
        manifest,
      },
    ]);
  });

  it('refuses a state without a release', async () => {
    // Prepare
    const deps = world();
    const { release: _release, ...state } = releasedState();

    // Act
    const error = await rejection(recordSuccess(state, deps));

    // Assess
    expect(error.message).toContain('$.release');
    expect(deps.ledger.entries).toEqual([]);
  });
});

describe('recordFailure', () => {
  it('records the failed state with its original error and cause, and notifies', async () => {
    // Prepare
    const deps = world();
    const { approval: _a, release: _r, validation: _v, ...upToValidation } = releasedState();
    const state: BakeState = {
      ...upToValidation,
      errors: { Validate: { Error: 'ValidationFailedError', Cause: 'validation failed (report: r)\nhello:2 case "x": boom' } },
    };

    // Act
    const result = await recordFailure(state, deps);

    // Assess
    const failure = { state: 'Validate', error: 'ValidationFailedError', cause: 'validation failed (report: r)\nhello:2 case "x": boom' };
    expect(result).toEqual({ state: failure.state, Error: failure.error, Cause: failure.cause });
    const manifest = await deps.artefacts.getJson<PinManifest>(manifestKey(upToValidation.bake.bakeId));
    expect(manifest).toMatchObject({ schemaVersion: 1, status: 'failed', failure, validation: null, approval: null, release: null });
    expect(manifest?.functions).toMatchObject(upToValidation.versions?.functions ?? []);
    expect(deps.ledger.entries).toEqual([
      {
        type: 'failed',
        bakeId: upToValidation.bake.bakeId,
        at: '2026-11-22T09:00:00.000Z',
        ...failure,
        manifest: { uri: `mem://${manifestKey(upToValidation.bake.bakeId)}`, sha256Hex: expect.any(String), size: expect.any(Number) },
        // The spec's functions, so `bakery history <function>` finds the failure.
        functions: ['hello'],
      },
    ]);
    expect(deps.notifier.failures).toEqual([{ bakeId: upToValidation.bake.bakeId, ...failure }]);
  });

  it('turns States.Timeout on RequestApproval into ApprovalTimedOutError', async () => {
    // Prepare
    const deps = world();
    const bake = resolvedBake();
    bake.approval.timeoutSeconds = 30;

    // Act
    const result = await recordFailure({ bake, errors: { RequestApproval: { Error: 'States.Timeout', Cause: '' } } }, deps);

    // Assess
    expect(result).toEqual({
      state: 'RequestApproval',
      Error: 'ApprovalTimedOutError',
      Cause: 'nobody decided within 30 seconds; nothing was released',
    });
    expect(deps.ledger.entries[0]).toMatchObject({ type: 'failed', state: 'RequestApproval', error: 'ApprovalTimedOutError' });
  });

  it('closes the approval as expired on that timeout, updates its message, then reports the failure', async () => {
    // Prepare
    const deps = world();
    const bake = resolvedBake();
    bake.approval.timeoutSeconds = 30;
    await deps.approvals.create(pendingApproval(bake.bakeId));

    // Act
    await recordFailure({ bake, errors: { RequestApproval: { Error: 'States.Timeout', Cause: '' } } }, deps);

    // Assess
    const stored = await deps.approvals.get('apr-1');
    expect(stored?.decision).toEqual({
      outcome: 'expired',
      by: 'bakery',
      at: '2026-11-22T09:00:00.000Z',
      reason: 'nobody decided within 30 seconds; nothing was released',
    });
    expect(deps.notifier.decided.map((r) => [r.id, r.decision?.outcome])).toEqual([['apr-1', 'expired']]);
    expect(deps.notifier.failures).toEqual([
      { bakeId: bake.bakeId, state: 'RequestApproval', error: 'ApprovalTimedOutError', cause: expect.stringContaining('nobody decided') },
    ]);
  });

  it('leaves an approval decided just before the timeout as it was, and shows no expiry', async () => {
    // Prepare
    const deps = world();
    const bake = resolvedBake();
    await deps.approvals.create(pendingApproval(bake.bakeId));
    await deps.approvals.decide('apr-1', { outcome: 'approved', by: 'U1', at: '2026-11-22T08:59:59.000Z', reason: null });

    // Act
    await recordFailure({ bake, errors: { RequestApproval: { Error: 'States.Timeout', Cause: '' } } }, deps);

    // Assess
    expect((await deps.approvals.get('apr-1'))?.decision?.outcome).toBe('approved');
    expect(deps.notifier.decided).toEqual([]);
    expect(deps.notifier.failures).toHaveLength(1);
  });

  it('expires nothing when the approval failed otherwise (a rejection keeps its decision)', async () => {
    // Prepare
    const deps = world();
    const bake = resolvedBake();
    await deps.approvals.create(pendingApproval(bake.bakeId));

    // Act
    await recordFailure({ bake, errors: { RequestApproval: { Error: 'ApprovalRejectedError', Cause: 'rejected by U1' } } }, deps);

    // Assess
    expect((await deps.approvals.get('apr-1'))?.decision).toBeNull();
    expect(deps.notifier.decided).toEqual([]);
    expect(deps.notifier.failures).toEqual([
      { bakeId: bake.bakeId, state: 'RequestApproval', error: 'ApprovalRejectedError', cause: 'rejected by U1' },
    ]);
  });

  it('keeps States.Timeout on any other state as it is', async () => {
    // Prepare
    const deps = world();

    // Act
    const result = await recordFailure(
      { bake: resolvedBake(), errors: { BuildImage: { Error: 'States.Timeout', Cause: 'BuildImage timed out' } } },
      deps,
    );

    // Assess
    expect(result).toEqual({ state: 'BuildImage', Error: 'States.Timeout', Cause: 'BuildImage timed out' });
  });

  it('reads the message out of the JSON cause the AWS Lambda integration produces', async () => {
    // Prepare
    const deps = world();
    const cause = JSON.stringify({ errorType: 'LayerIntegrityError', errorMessage: 'stores CodeSha256 x', trace: ['at a', 'at b'] });

    // Act
    const result = await recordFailure(
      { bake: resolvedBake(), errors: { PublishLayer: { Error: 'LayerIntegrityError', Cause: cause } } },
      deps,
    );

    // Assess
    expect(result.Cause).toBe('stores CodeSha256 x');
  });

  it('records a failure before the bake was resolved without a manifest', async () => {
    // Prepare
    const deps = world();

    // Act
    const result = await recordFailure({ errors: { ResolveBake: { Error: 'BakeSpecError', Cause: 'bake spec not found: x.json' } } }, deps);

    // Assess
    expect(result).toEqual({ state: 'ResolveBake', Error: 'BakeSpecError', Cause: 'bake spec not found: x.json' });
    expect(deps.artefacts.json.size).toBe(0);
    expect(deps.ledger.entries).toEqual([
      {
        type: 'failed',
        bakeId: null,
        at: '2026-11-22T09:00:00.000Z',
        state: 'ResolveBake',
        error: 'BakeSpecError',
        cause: 'bake spec not found: x.json',
        manifest: null,
      },
    ]);
    expect(deps.notifier.failures[0]?.bakeId).toBeNull();
  });

  it('records a failure before the bake was resolved under the bake id the execution was started with', async () => {
    // Prepare
    const deps = world();

    // Act
    await recordFailure({ bakeId: 'hello-1', errors: { ResolveBake: { Error: 'BakeSpecError', Cause: 'bad' } } }, deps);

    // Assess
    expect(deps.ledger.entries[0]).toMatchObject({ type: 'failed', bakeId: 'hello-1', state: 'ResolveBake' });
    expect(deps.notifier.failures[0]?.bakeId).toBe('hello-1');
    expect([...deps.artefacts.json.keys()]).toEqual(['manifests/hello-1.json', 'manifests/hello-1.notification.json']);
  });
});

function pendingApproval(bakeId: string): ApprovalRecord {
  return {
    id: 'apr-1',
    bakeId,
    taskToken: 'RequestApproval-token',
    digest: 'd'.repeat(64),
    approvers: [],
    createdAt: '2026-11-22T08:59:30.000Z',
    expiresAt: '2026-11-22T09:00:00.000Z',
    summary: { functions: [], layer: { arn: 'a', codeSha256: 'b', sha256Hex: 'c' }, runtime: 'r', validation: { passed: true, cases: 1 } },
    message: { channel: 'C1', ts: '1.0' },
    decision: null,
  };
}

describe('recordFailure and its notifications', () => {
  const state: BakeState = { bakeId: 'hello-1', errors: { Validate: { Error: 'ValidationFailedError', Cause: 'case ok failed' } } };

  it('records first, then gives up on a notifier that never answers within the budget, and notes it', async () => {
    // Prepare
    const deps = world();
    let tries = 0;
    deps.notifier.bakeFailed = () => {
      tries++;
      return new Promise<void>(() => {});
    };

    // Act
    const out = await recordFailure(state, { ...deps, notifyBudget: { attempts: 2, attemptTimeoutMs: 5, backoffMs: 0 } });

    // Assess
    expect(out).toMatchObject({ state: 'Validate', Error: 'ValidationFailedError' });
    expect(deps.ledger.entries).toHaveLength(1);
    expect(tries).toBe(2);
    expect(deps.artefacts.json.get(notificationKey('hello-1'))).toMatchObject({
      notifications: [{ what: 'bakeFailed', status: 'failed', attempts: 2, error: 'no answer within 5 ms' }],
    });
  });

  it('retried: appends nothing and writes no manifest again; notifies again only what was not sent', async () => {
    // Prepare
    const deps = world();
    let down = true;
    const bakeFailed = deps.notifier.bakeFailed.bind(deps.notifier);
    deps.notifier.bakeFailed = async (failure) => {
      if (down) throw new Error('slack is down');
      await bakeFailed(failure);
    };
    const budget = { attempts: 1, attemptTimeoutMs: 50, backoffMs: 0 };
    await recordFailure(state, { ...deps, notifyBudget: budget });
    const manifest = deps.artefacts.json.get(manifestKey('hello-1'));
    deps.clock.advance(5_000);

    // Act: two retries, Slack back for the first one.
    down = false;
    await recordFailure(state, { ...deps, notifyBudget: budget });
    await recordFailure(state, { ...deps, notifyBudget: budget });

    // Assess
    expect(deps.ledger.entries).toHaveLength(1);
    expect(deps.artefacts.json.get(manifestKey('hello-1'))).toEqual(manifest);
    expect(deps.notifier.failures).toHaveLength(1);
    expect(deps.artefacts.json.get(notificationKey('hello-1'))).toMatchObject({
      notifications: [{ what: 'bakeFailed', status: 'sent', attempts: 1, error: null }],
    });
  });
});

describe('a bake recorded on the memory store', () => {
  // The first test leaves what it fetched where the store put it; the second (run after
  // it, as vitest runs a file's tests in order) finds none of it in the OS tmpdir.
  const fetched: string[] = [];

  it('serves the stored manifest and report as files', async () => {
    const deps = world();
    const { manifest } = await recordSuccess(releasedState(), deps);
    const report = await deps.artefacts.putJson('reports/bake-1/validation.json', { passed: true });
    for (const ref of [manifest, report]) {
      const file = await deps.artefacts.fetchFile(ref);
      expect(file.startsWith(os.tmpdir())).toBe(true);
      expect(JSON.parse(await readFile(file, 'utf8'))).toBeTruthy();
      fetched.push(file);
    }
  });

  it('leaves nothing behind in the OS tmpdir once its test is over', async () => {
    expect(fetched).toHaveLength(2);
    for (const file of fetched) {
      await expect(stat(path.dirname(file))).rejects.toMatchObject({ code: 'ENOENT' });
    }
  });
});
