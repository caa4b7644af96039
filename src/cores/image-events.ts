import { AlreadyDecidedError, ImageBuildFailedError } from '../errors.ts';
import type { TaskCallbacks } from '../ports/callbacks.ts';
import type { BuildCache, ImageBuildOutputs, ImageBuildTicket, ImageBuildTokens } from '../ports/image-build.ts';
import type { BuiltImage, Json } from '../state.ts';

/** A state change of an image build, as the builder reports it (EventBridge in AWS). */
export interface ImageStateChange {
  /** The build's id: the image build version ARN (`resources[0]` of the event). */
  buildId: string;
  /** Image Builder's status: BUILDING, TESTING, …, AVAILABLE, FAILED, CANCELLED. */
  status: string;
  reason: string | null;
  /** When the change happened (the event's `time`). */
  at: string;
  /** Identifies this delivery's claim on the ticket (the event id). */
  claim: string;
}

export interface ImageEventDeps {
  tokens: ImageBuildTokens;
  outputs: ImageBuildOutputs;
  callbacks: TaskCallbacks;
  /** Where a verified build is recorded under its bake key, so the key is not built again. */
  cache: BuildCache;
}

/** What became of an event; the handler logs it. */
export type ImageEventOutcome =
  | { outcome: 'ignored'; buildId: string; status: string }
  | { outcome: 'unknown'; buildId: string; status: string }
  | { outcome: 'duplicate'; buildId: string; status: string; bakeId: string; done: ImageBuildTicket['done'] }
  | { outcome: 'resumed' | 'gone'; buildId: string; status: string; bakeId: string; sent: 'success' | 'failure'; message: string };

/** The statuses a build ends in; the others (BUILDING, TESTING, DISTRIBUTING, …) are on the way. */
const FINAL = new Set(['AVAILABLE', 'FAILED', 'CANCELLED']);

const FAILED_NAME = new ImageBuildFailedError('').name;

type Message = { sent: 'success'; output: BuiltImage } | { sent: 'failure'; error: string; cause: string };

async function decide(change: ImageStateChange, ticket: ImageBuildTicket, deps: ImageEventDeps): Promise<Message> {
  if (change.status !== 'AVAILABLE') {
    const reason = change.reason ?? (await deps.outputs.failureReason(change.buildId).catch(() => null));
    return {
      sent: 'failure',
      error: FAILED_NAME,
      cause: `image build ${change.buildId} of bake ${ticket.bakeId} is ${change.status}: ${reason ?? 'Image Builder gave no reason (see the build in the Image Builder console)'}`,
    };
  }
  const runtime = await deps.outputs.runtime(change.buildId);
  if (!runtime.found) {
    // An image without the tree is no use to the bake: the test phase did not upload it.
    return {
      sent: 'failure',
      error: FAILED_NAME,
      cause: `image build ${change.buildId} of bake ${ticket.bakeId} is AVAILABLE, but ${runtime.reason}`,
    };
  }
  return {
    sent: 'success',
    output: {
      bakeKey: ticket.bakeKey,
      cacheHit: false,
      imageArn: change.buildId,
      runtime: runtime.ref,
      buildRecord: {
        recipe: ticket.recipe,
        bakeKey: ticket.bakeKey,
        documents: ticket.documents,
        parameters: ticket.parameters,
        // What the build fetched is checked against the pins in `parameters` on the instance.
        sources: {},
        tools: { imageBuilder: change.buildId, ...runtime.details },
        startedAt: ticket.createdAt,
        finishedAt: change.at,
      },
    },
  };
}

/**
 * The end of an image build resumes the BuildImage task waiting on it: SendTaskSuccess
 * with the runtime artefact when the image is AVAILABLE, SendTaskFailure
 * (ImageBuildFailedError, with the reason) when it FAILED or was CANCELLED.
 *
 * A verified build is recorded in the build cache under its bake key first.
 *
 * Delivery is at least once, so the ticket is marked done with a conditional write
 * before the task is resumed: a duplicate finds it done and does nothing. A task that
 * is no longer waiting (resumed, timed out, execution ended) counts as handled. A
 * failure worth retrying gives the mark back first, so the retried event can resume.
 */
export async function handleImageStateChange(change: ImageStateChange, deps: ImageEventDeps): Promise<ImageEventOutcome> {
  const { buildId, status } = change;
  if (!FINAL.has(status)) return { outcome: 'ignored', buildId, status };
  const ticket = await deps.tokens.find(buildId);
  if (!ticket) return { outcome: 'unknown', buildId, status };
  if (ticket.done) return { outcome: 'duplicate', buildId, status, bakeId: ticket.bakeId, done: ticket.done };

  // Decided before the mark: a failure to look (S3 throttled) leaves the event retryable.
  const message = await decide(change, ticket, deps);
  // Recorded before the task is resumed, for the same reason. Another build of the key
  // recorded first (two bakes at once) keeps its record: both are builds of the same inputs.
  if (message.sent === 'success') await deps.cache.record(message.output, ticket.replaces);
  const claimed = await deps.tokens.markDone(buildId, { status, at: change.at, claim: change.claim });
  if (!claimed) {
    const again = await deps.tokens.find(buildId);
    return { outcome: 'duplicate', buildId, status, bakeId: ticket.bakeId, done: again?.done ?? null };
  }
  const summary =
    message.sent === 'success' ? `runtime ${message.output.runtime.uri} (sha256 ${message.output.runtime.sha256Hex})` : message.cause;
  try {
    if (message.sent === 'success') await deps.callbacks.succeed(ticket.taskToken, message.output as unknown as Json);
    else await deps.callbacks.fail(ticket.taskToken, message.error, message.cause);
  } catch (error) {
    if (error instanceof AlreadyDecidedError) {
      return { outcome: 'gone', buildId, status, bakeId: ticket.bakeId, sent: message.sent, message: summary };
    }
    // Best effort: if this fails too, the task's timeout still ends the bake.
    await deps.tokens.release(buildId, change.claim).catch(() => undefined);
    throw error;
  }
  return { outcome: 'resumed', buildId, status, bakeId: ticket.bakeId, sent: message.sent, message: summary };
}
