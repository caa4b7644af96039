import { describe, expect, it } from 'vitest';
import { handleImageStateChange, type ImageStateChange } from '../../src/cores/image-events.ts';
import { AlreadyDecidedError, TransientBackendError } from '../../src/errors.ts';
import type { TaskCallbacks } from '../../src/ports/callbacks.ts';
import type { BuildCache, ImageBuildOutputs, ImageBuildTicket, ImageBuildTokens } from '../../src/ports/image-build.ts';
import type { ArtefactRef, BuiltImage, Json } from '../../src/state.ts';
import { rejection } from '../helpers/rejection.ts';

const BUILD = 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22/1.0.123/4';
const RUNTIME: ArtefactRef = {
  uri: 's3://artefacts/builds/images/ami-0123456789abcdef0/runtime.zip',
  sha256Hex: 'ab'.repeat(32),
  size: 40_123_456,
};

function ticket(overrides: Partial<ImageBuildTicket> = {}): ImageBuildTicket {
  return {
    buildId: BUILD,
    bakeId: 'hello-20261122T073000-3f9a',
    bakeKey: 'f'.repeat(64),
    recipe: 'node22',
    taskToken: 'token-1',
    createdAt: '2026-11-22T07:30:00.000Z',
    documents: [{ path: 'components/node22-runtime.yml', sha256Hex: 'cd'.repeat(32) }],
    parameters: { NodeVersion: '22.23.3', NodeSha256: 'ef'.repeat(32) },
    replaces: null,
    done: null,
    ...overrides,
  };
}

const change = (status: string, overrides: Partial<ImageStateChange> = {}): ImageStateChange => ({
  buildId: BUILD,
  status,
  reason: null,
  at: '2026-11-22T07:58:12Z',
  claim: 'event-1',
  ...overrides,
});

/** In-memory tokens with DynamoDB's conditional semantics, and fake outputs and callbacks that record calls. */
function fakes(
  options: {
    tickets?: ImageBuildTicket[];
    runtime?: Awaited<ReturnType<ImageBuildOutputs['runtime']>>;
    failureReason?: string | null;
    callbackError?: Error;
    cached?: BuiltImage;
    cacheError?: Error;
  } = {},
) {
  const tickets = new Map((options.tickets ?? [ticket()]).map((t) => [t.buildId, structuredClone(t)]));
  const sent: Array<{ kind: 'succeed'; token: string; output: Json } | { kind: 'fail'; token: string; error: string; cause: string }> = [];
  const tokens: ImageBuildTokens = {
    find: async (id) => structuredClone(tickets.get(id)),
    markDone: async (id, done) => {
      const t = tickets.get(id);
      if (!t || t.done) return false;
      t.done = done;
      return true;
    },
    release: async (id, claim) => {
      const t = tickets.get(id);
      if (t?.done?.claim === claim) t.done = null;
    },
  };
  const outputs: ImageBuildOutputs = {
    runtime: async () => options.runtime ?? { found: true, ref: RUNTIME, details: { ami: 'ami-0123456789abcdef0' } },
    failureReason: async () => options.failureReason ?? null,
  };
  const callbacks: TaskCallbacks = {
    succeed: async (token, output) => {
      if (options.callbackError) throw options.callbackError;
      sent.push({ kind: 'succeed', token, output });
    },
    fail: async (token, error, cause) => {
      if (options.callbackError) throw options.callbackError;
      sent.push({ kind: 'fail', token, error, cause });
    },
  };
  // The conditional write of DynamoBuildCache: once per key, or over the build a ticket replaces.
  const cacheEntries = new Map<string, BuiltImage>(options.cached ? [[options.cached.bakeKey, options.cached]] : []);
  const cache: BuildCache = {
    get: async (key) => structuredClone(cacheEntries.get(key)),
    record: async (image, replaces) => {
      if (options.cacheError) throw options.cacheError;
      const held = cacheEntries.get(image.bakeKey);
      if (held && held.imageArn !== replaces) return false;
      cacheEntries.set(image.bakeKey, structuredClone(image));
      return true;
    },
    use: async () => {},
  };
  return { deps: { tokens, outputs, callbacks, cache }, tickets, sent, cacheEntries };
}

describe('handleImageStateChange', () => {
  it('resumes the task with the runtime zip and a build record when the image is AVAILABLE', async () => {
    // Prepare
    const { deps, tickets, sent } = fakes();

    // Act
    const outcome = await handleImageStateChange(change('AVAILABLE'), deps);

    // Assess
    expect(outcome).toMatchObject({ outcome: 'resumed', sent: 'success', bakeId: 'hello-20261122T073000-3f9a' });
    expect(sent).toEqual([
      {
        kind: 'succeed',
        token: 'token-1',
        output: {
          bakeKey: 'f'.repeat(64),
          cacheHit: false,
          imageArn: BUILD,
          runtime: RUNTIME,
          buildRecord: {
            recipe: 'node22',
            bakeKey: 'f'.repeat(64),
            documents: [{ path: 'components/node22-runtime.yml', sha256Hex: 'cd'.repeat(32) }],
            parameters: { NodeVersion: '22.23.3', NodeSha256: 'ef'.repeat(32) },
            sources: {},
            tools: { imageBuilder: BUILD, ami: 'ami-0123456789abcdef0' },
            startedAt: '2026-11-22T07:30:00.000Z',
            finishedAt: '2026-11-22T07:58:12Z',
          },
        },
      },
    ]);
    expect(tickets.get(BUILD)?.done).toEqual({ status: 'AVAILABLE', at: '2026-11-22T07:58:12Z', claim: 'event-1' });
  });

  it('fails the task with ImageBuildFailedError and the reason when the build FAILED', async () => {
    // Prepare
    const { deps, sent } = fakes();

    // Act
    const outcome = await handleImageStateChange(
      change('FAILED', { reason: 'Image Builder workflow step ExecuteComponents failed: VerifyNodeChecksum exited 1' }),
      deps,
    );

    // Assess
    expect(outcome).toMatchObject({ outcome: 'resumed', sent: 'failure' });
    expect(sent).toEqual([
      {
        kind: 'fail',
        token: 'token-1',
        error: 'ImageBuildFailedError',
        cause: `image build ${BUILD} of bake hello-20261122T073000-3f9a is FAILED: Image Builder workflow step ExecuteComponents failed: VerifyNodeChecksum exited 1`,
      },
    ]);
  });

  it('asks the builder for the reason when the event carries none, and fails a CANCELLED build too', async () => {
    // Prepare
    const { deps, sent } = fakes({ failureReason: 'Cancelled by user arn:aws:iam::123456789012:user/ops' });

    // Act
    await handleImageStateChange(change('CANCELLED'), deps);

    // Assess
    expect(sent).toEqual([
      {
        kind: 'fail',
        token: 'token-1',
        error: 'ImageBuildFailedError',
        cause: `image build ${BUILD} of bake hello-20261122T073000-3f9a is CANCELLED: Cancelled by user arn:aws:iam::123456789012:user/ops`,
      },
    ]);
  });

  it('fails the task when an AVAILABLE image has no runtime tree (nothing to publish)', async () => {
    // Prepare
    const { deps, sent } = fakes({ runtime: { found: false, reason: 'its runtime tree is not at s3://artefacts/x/runtime.zip' } });

    // Act
    const outcome = await handleImageStateChange(change('AVAILABLE'), deps);

    // Assess
    expect(outcome).toMatchObject({ outcome: 'resumed', sent: 'failure' });
    expect(sent).toEqual([
      {
        kind: 'fail',
        token: 'token-1',
        error: 'ImageBuildFailedError',
        cause: `image build ${BUILD} of bake hello-20261122T073000-3f9a is AVAILABLE, but its runtime tree is not at s3://artefacts/x/runtime.zip`,
      },
    ]);
  });

  it('ignores a build no bake waits on, without an error', async () => {
    // Prepare
    const { deps, sent } = fakes({ tickets: [] });

    // Act
    const outcome = await handleImageStateChange(change('AVAILABLE'), deps);

    // Assess
    expect(outcome).toEqual({ outcome: 'unknown', buildId: BUILD, status: 'AVAILABLE' });
    expect(sent).toEqual([]);
  });

  it.each(['PENDING', 'CREATING', 'BUILDING', 'TESTING', 'DISTRIBUTING', 'INTEGRATING'])(
    'ignores the intermediate state %s',
    async (status) => {
      // Prepare
      const { deps, tickets, sent } = fakes();

      // Act
      const outcome = await handleImageStateChange(change(status), deps);

      // Assess
      expect(outcome).toEqual({ outcome: 'ignored', buildId: BUILD, status });
      expect(sent).toEqual([]);
      expect(tickets.get(BUILD)?.done).toBeNull();
    },
  );

  it('resumes once when the same event arrives twice (the second finds the ticket done)', async () => {
    // Prepare
    const { deps, sent } = fakes();

    // Act
    const first = await handleImageStateChange(change('AVAILABLE'), deps);
    const second = await handleImageStateChange(change('AVAILABLE', { claim: 'event-1-again' }), deps);

    // Assess
    expect(first.outcome).toBe('resumed');
    expect(second).toMatchObject({ outcome: 'duplicate', done: { status: 'AVAILABLE', claim: 'event-1' } });
    expect(sent).toHaveLength(1);
  });

  it('sends nothing when a concurrent delivery marks the ticket done first', async () => {
    // Prepare: the ticket is read undone, but the conditional mark loses the race.
    const { deps, sent } = fakes();
    deps.tokens.markDone = async () => false;

    // Act
    const outcome = await handleImageStateChange(change('FAILED', { reason: 'boom' }), deps);

    // Assess
    expect(outcome.outcome).toBe('duplicate');
    expect(sent).toEqual([]);
  });

  it('treats a task Step Functions no longer waits on as handled, and keeps the ticket done', async () => {
    // Prepare
    const { deps, tickets } = fakes({ callbackError: new AlreadyDecidedError('SendTaskSuccess: the task is no longer waiting') });

    // Act
    const outcome = await handleImageStateChange(change('AVAILABLE'), deps);

    // Assess
    expect(outcome).toMatchObject({ outcome: 'gone', sent: 'success' });
    expect(tickets.get(BUILD)?.done?.claim).toBe('event-1');
  });

  it('gives the mark back when resuming fails in a way worth retrying, so the retried event resumes', async () => {
    // Prepare
    const failing = fakes({ callbackError: new TransientBackendError('SendTaskSuccess failed transiently (ThrottlingException)') });

    // Act
    const error = await rejection(handleImageStateChange(change('AVAILABLE'), failing.deps));

    // Assess
    expect(error).toBeInstanceOf(TransientBackendError);
    expect(failing.tickets.get(BUILD)?.done).toBeNull();
  });

  it('leaves the ticket untouched when the runtime cannot be looked up yet (the event is retried)', async () => {
    // Prepare
    const { deps, tickets, sent } = fakes();
    deps.outputs.runtime = async () => {
      throw new TransientBackendError('HeadObject failed transiently (SlowDown)');
    };

    // Act
    const error = await rejection(handleImageStateChange(change('AVAILABLE'), deps));

    // Assess
    expect(error).toBeInstanceOf(TransientBackendError);
    expect(tickets.get(BUILD)?.done).toBeNull();
    expect(sent).toEqual([]);
  });
});

describe('handleImageStateChange and the build cache', () => {
  const earlier: BuiltImage = {
    bakeKey: 'f'.repeat(64),
    cacheHit: false,
    imageArn: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22-by-key/1.2.3/1',
    runtime: { ...RUNTIME, uri: 's3://artefacts/builds/images/ami-0aaaaaaaaaaaaaaaa/runtime.zip' },
    buildRecord: {
      recipe: 'node22',
      bakeKey: 'f'.repeat(64),
      documents: [],
      parameters: {},
      sources: {},
      tools: {},
      startedAt: '2026-11-01T00:00:00.000Z',
      finishedAt: '2026-11-01T00:30:00.000Z',
    },
  };

  it('records an AVAILABLE build with its verified runtime under its bake key before resuming the task', async () => {
    const { deps, cacheEntries, sent } = fakes();

    await handleImageStateChange(change('AVAILABLE'), deps);

    const recorded = cacheEntries.get('f'.repeat(64));
    expect(recorded).toMatchObject({ bakeKey: 'f'.repeat(64), imageArn: BUILD, runtime: RUNTIME, cacheHit: false });
    expect(sent[0]?.kind === 'succeed' && sent[0].output).toEqual(JSON.parse(JSON.stringify(recorded)));
  });

  it('records nothing for a FAILED build, or an AVAILABLE one whose runtime zip is missing', async () => {
    const failed = fakes();
    await handleImageStateChange(change('FAILED'), failed.deps);
    const missing = fakes({ runtime: { found: false, reason: 'no zip' } });
    await handleImageStateChange(change('AVAILABLE'), missing.deps);

    expect(failed.cacheEntries.size).toBe(0);
    expect(missing.cacheEntries.size).toBe(0);
    expect(missing.sent[0]?.kind).toBe('fail');
  });

  it('keeps the record of another build of the same key (two bakes at once), and still resumes this one', async () => {
    const { deps, cacheEntries, sent } = fakes({ cached: earlier });

    const outcome = await handleImageStateChange(change('AVAILABLE'), deps);

    expect(outcome).toMatchObject({ outcome: 'resumed', sent: 'success' });
    expect(cacheEntries.get('f'.repeat(64))?.imageArn).toBe(earlier.imageArn);
    expect(sent).toHaveLength(1);
  });

  it('replaces the record its ticket says it rebuilds', async () => {
    const { deps, cacheEntries } = fakes({ cached: earlier, tickets: [ticket({ replaces: earlier.imageArn })] });

    await handleImageStateChange(change('AVAILABLE'), deps);

    expect(cacheEntries.get('f'.repeat(64))?.imageArn).toBe(BUILD);
  });

  it('leaves the event retryable when the record cannot be written: nothing marked, nothing sent', async () => {
    const { deps, tickets, sent } = fakes({ cacheError: new TransientBackendError('PutItem throttled') });

    const error = await rejection(handleImageStateChange(change('AVAILABLE'), deps));

    expect(error).toBeInstanceOf(TransientBackendError);
    expect(tickets.get(BUILD)?.done).toBeNull();
    expect(sent).toEqual([]);
  });
});
