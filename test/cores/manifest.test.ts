/**
 * The pin manifest is complete on success and on failure: trigger, build, layer, the
 * exact layers of each version, approval (who and when, rejections included) and each
 * alias before and after the bake.
 */
import { describe, expect, it } from 'vitest';
import { manifestKey, type PinManifest, recordFailure, recordSuccess } from '../../src/cores/record.ts';
import { TransientBackendError } from '../../src/errors.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';
import type { BakeState, ReleaseResult } from '../../src/state.ts';
import { builtImage, functionSpec, passedValidation, publishedLayer, publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import {
  FakeClock,
  MemoryApprovalStore,
  MemoryArtefactStore,
  MemoryFunctionRegistry,
  MemoryLedger,
  RecordingNotifier,
} from '../helpers/memory.ts';

const EXTRA = 'arn:aws:lambda:eu-west-1:123456789012:layer:tools:4';

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

/** A bake of `hello` (with an extra layer) that got as far as validation. */
function validatedState(): BakeState & Required<Pick<BakeState, 'bake' | 'layer' | 'versions'>> {
  const versions = publishedVersions(['hello', '2']);
  return {
    bake: resolvedBake({ functions: [functionSpec('hello', [{ name: 'c' }], { layers: [EXTRA] })] }),
    image: { ...builtImage('file:///tmp/tree'), imageArn: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/node22/1.0.0/1' },
    layer: publishedLayer(),
    versions,
    validation: passedValidation(versions),
  };
}

const read = (deps: ReturnType<typeof world>, bakeId: string) => deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));

function approval(bakeId: string): ApprovalRecord {
  return {
    id: 'apr-1',
    bakeId,
    taskToken: 'token',
    digest: 'd'.repeat(64),
    approvers: [],
    createdAt: '2026-11-22T08:00:00.000Z',
    expiresAt: '2026-11-23T08:00:00.000Z',
    summary: {
      functions: [],
      layer: { arn: 'a', codeSha256: 'b', sha256Hex: 'c' },
      runtime: 'provided.al2023',
      validation: { passed: true, cases: 1 },
    },
    message: null,
    decision: null,
  };
}

describe('the pin manifest', () => {
  it('of a release holds every field, with the exact layers of each version and the alias before and after', async () => {
    // Prepare
    const deps = world();
    const state = validatedState();
    const release = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null } as ReleaseResult;

    // Act
    await recordSuccess(
      {
        ...state,
        approval: { approvalId: 'apr-1', decision: 'approved', by: 'U024BE7LH', at: '2026-11-22T08:59:00.000Z', live: [] },
        release,
      },
      deps,
    );

    // Assess
    const manifest = await read(deps, state.bake.bakeId);
    expect(manifest).toMatchObject({
      schemaVersion: 1,
      bakeId: state.bake.bakeId,
      status: 'released',
      trigger: { type: 'cli', user: 'tester' },
      bakeKey: state.image?.bakeKey,
      build: { recipe: 'node22', bakeKey: state.image?.bakeKey },
      imageArn: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/node22/1.0.0/1',
      layer: { arn: state.layer.arn, version: 3, codeSha256: state.layer.codeSha256, size: 2000 },
      functions: [{ name: 'hello', version: '2', codeSha256: 'code-hello-b64', layers: [state.layer.arn, EXTRA] }],
      validation: { passed: true },
      approval: { by: 'U024BE7LH', at: '2026-11-22T08:59:00.000Z' },
      aliases: [{ name: 'hello', alias: 'live', before: '1', after: '2' }],
      failure: null,
    });
  });

  it('of a rejected bake records who rejected it, when and why, and the alias where it stayed', async () => {
    // Prepare
    const deps = world();
    const state = validatedState();
    deps.functions.seedAlias('hello', 'live', '1');
    await deps.approvals.create(approval(state.bake.bakeId));
    await deps.approvals.decide('apr-1', { outcome: 'rejected', by: 'U1', at: '2026-11-22T08:30:00.000Z', reason: 'not today' });

    // Act
    await recordFailure({ ...state, errors: { RequestApproval: { Error: 'ApprovalRejectedError', Cause: 'rejected by U1' } } }, deps);

    // Assess
    const manifest = await read(deps, state.bake.bakeId);
    expect(manifest?.approval).toEqual({
      approvalId: 'apr-1',
      decision: 'rejected',
      by: 'U1',
      at: '2026-11-22T08:30:00.000Z',
      reason: 'not today',
    });
    expect(manifest?.aliases).toEqual([{ name: 'hello', alias: 'live', before: '1', after: '1' }]);
    expect(manifest?.functions[0]?.layers).toEqual([state.layer.arn, EXTRA]);
    expect(manifest?.layer?.arn).toBe(state.layer.arn);
    expect(manifest?.validation?.passed).toBe(true);
  });

  it('of a bake that failed before ResolveBake keeps the trigger the execution was started with', async () => {
    // Prepare
    const deps = world();
    const trigger = { type: 's3' as const, bucket: 'bakery-sources', key: 'hello.zip', versionId: 'v7' };

    // Act
    await recordFailure({ bakeId: 'hello-early', trigger, errors: { ResolveBake: { Error: 'BakeSpecError', Cause: 'bad spec' } } }, deps);

    // Assess
    expect(await read(deps, 'hello-early')).toMatchObject({ bakeId: 'hello-early', trigger, layer: null, functions: [], aliases: [] });
  });

  it('after an undone release records the alias before the release and where the undo left it', async () => {
    // Prepare
    const deps = world();
    deps.functions.seedAlias('hello', 'live', '1');
    const release = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null } as ReleaseResult;

    // Act
    await recordFailure(
      {
        ...validatedState(),
        release,
        undo: { functions: [{ name: 'hello', alias: 'live', restored: '1', skipped: null }] },
        errors: { RecordSuccess: { Error: 'StateDirError', Cause: 'read-only' } },
      },
      deps,
    );

    // Assess
    expect((await read(deps, validatedState().bake.bakeId))?.aliases).toEqual([{ name: 'hello', alias: 'live', before: '1', after: '1' }]);
  });

  it('is still recorded when the aliases cannot be read, saying so', async () => {
    // Prepare
    const deps = world();
    deps.functions.getAlias = async () => {
      throw new TransientBackendError('GetAlias hello:live failed transiently (ThrottlingException)');
    };

    // Act
    const result = await recordFailure({ ...validatedState(), errors: { Validate: { Error: 'ValidationFailedError', Cause: 'x' } } }, deps);

    // Assess
    expect(result.Error).toBe('ValidationFailedError');
    expect((await read(deps, validatedState().bake.bakeId))?.aliases).toEqual([
      {
        name: 'hello',
        alias: 'live',
        before: null,
        after: null,
        unread: 'GetAlias hello:live failed transiently (ThrottlingException)',
      },
    ]);
  });
});
