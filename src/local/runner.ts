import './polyfill.ts';
import { randomBytes } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import type { LocalDeps } from '../adapters/local/index.ts';
import { decideApproval } from '../cores/approval.ts';
import type { ArtefactRef, BakeRequest, BakeState, Json, ResolvedBake } from '../state.ts';
import { TASKS } from '../tasks.ts';
import { loadDefinition, tasksOf } from './asl.ts';
import { ExecutionJournal, type JournalTask } from './journal.ts';

export interface RunBakeOptions {
  deps: LocalDeps;
  /** `auto`: approve as soon as asked (CI, the demo); `wait`: wait for `bakery approve|reject`. */
  approve: 'auto' | 'wait';
  approver: string;
  /** Progress lines, as states start and end. */
  write?: (line: string) => void;
  definitionFile?: string;
  /** Milliseconds between retries (tests set 0). */
  retryIntervalMs?: number;
  /** Milliseconds every Wait state waits instead of its seconds (tests set 0 to run a gradual release at once). */
  waitMs?: number;
  /** The spec as the user named it, for `bakery executions` (default: the source path). */
  spec?: string;
  /**
   * Test-only: stop (hang until killed) at `<State>:entered` (journaled, before the task
   * runs), `<State>:waiting` (a callback task's token journaled, the task not started),
   * `<State>:returned` (the task ran, its result not journaled yet) or `<State>:completed`
   * (its result journaled). The CLI takes it from BAKERY_TEST_PAUSE_AT.
   */
  pauseAt?: string;
  /** Each state transition as it happens, for a live view (`bakery serve`'s dashboard). */
  onStep?: (step: ExecutionStep) => void;
}

/** A state entered, left, failed or retried; `output` is a Task's state output as it left. */
export interface ExecutionStep {
  type: 'entered' | 'exited' | 'failed' | 'retried';
  state: string;
  stateType: string;
  at: number;
  error?: string;
  cause?: string;
  output?: Json;
}

/** The execution output of a released bake: the accumulated state plus what RecordSuccess stored. */
export type ReleasedState = BakeState & { record: { bakeId: string; manifest: ArtefactRef } };

export type RunOutcome =
  | { status: 'succeeded'; bakeId: string; output: ReleasedState }
  | { status: 'failed'; bakeId: string | null; state: string; error: string; cause: string };

/** A scheduled bake that found nothing new: it ended in the UpToDate state, having built and published nothing. */
export type UpToDateOutcome = { status: 'upToDate'; bakeId: string; output: BakeState & { bake: ResolvedBake } };

/** An error whose `name` is what the ASL's Retry/Catch will match. */
export function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** Node timers overflow past 2^31-1 ms; the local stand-in for "no library timeout". */
const LOCAL_MAX_TIMEOUT_SECONDS = 2_147_483;
/** The longest delay one Node timer takes (a longer one fires at once, with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const STATE_INPUT_KEY = 'bakeryStateInput';

/**
 * Call `fire` after `ms`, however long (Step Functions allows a year): one timer per
 * chunk of at most {@link MAX_TIMER_MS}, so no delay overflows Node's timer. Returns a cancel.
 */
export function setLongTimeout(fire: () => void, ms: number, now: () => number = Date.now): () => void {
  const due = now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = due - now();
    if (left <= 0) {
      fire();
      return;
    }
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  arm();
  return () => clearTimeout(timer);
}

/** Resolve a Step Functions reference path (`$.a.b[0]`) against a value. */
export function resolveReferencePath(value: Json, ref: string): Json | undefined {
  if (!ref.startsWith('$')) return undefined;
  let current: Json | undefined = value;
  for (const [, key, index] of ref.slice(1).matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)) {
    if (current === null || typeof current !== 'object') return undefined;
    current = index !== undefined ? (current as Json[])[Number(index)] : (current as Record<string, Json>)[key as string];
  }
  return current;
}

/**
 * Step Functions resolves `TimeoutSecondsPath` against the state input;
 * aws-local-stepfunctions 3 resolves it against the input after `Parameters`, where
 * the path no longer exists. So the runner keeps the file as it is, hands the library
 * a copy in which such states carry their state input along, and enforces the
 * timeout itself, failing with `States.Timeout` exactly as Step Functions would.
 */
function withStateInputTimeouts(
  definition: Record<string, unknown>,
  startAt?: string,
): {
  definition: Record<string, unknown>;
  timeoutPaths: Map<string, string>;
} {
  const copy = JSON.parse(JSON.stringify(definition)) as { StartAt: string; States: Record<string, Record<string, unknown>> };
  const timeoutPaths = new Map<string, string>();
  for (const [name, state] of Object.entries(copy.States)) {
    if (state.Type !== 'Task') continue;
    // Every Task hands its state input to the runner too: the journal records it, so a
    // resume can start the state again from it, and TimeoutSecondsPath is resolved on it.
    state.Parameters = { ...(state.Parameters as Record<string, unknown>), [`${STATE_INPUT_KEY}.$`]: '$' };
    if (typeof state.TimeoutSecondsPath !== 'string') continue;
    timeoutPaths.set(name, state.TimeoutSecondsPath);
    delete state.TimeoutSecondsPath;
    state.TimeoutSeconds = LOCAL_MAX_TIMEOUT_SECONDS;
  }
  // aws-local-stepfunctions only starts at StartAt: a resume runs a copy that starts at the interrupted state.
  if (startAt !== undefined) copy.StartAt = startAt;
  return { definition: copy, timeoutPaths };
}

function detail(state: string, output: BakeState): string {
  switch (state) {
    case 'ResolveBake': {
      const bake = output.bake;
      if (!bake) return '';
      const patched = (bake.patched ?? []).map((p) => `${p.field} ${p.from ?? '(none)'} → ${p.to}`);
      return [
        `bake ${bake.bakeId}, recipe ${bake.recipe.name}, ${bake.functions.length} function(s)`,
        ...(patched.length ? [`newest patch: ${patched.join(', ')}`] : []),
        ...(bake.upToDate ? [`up to date: same bake key and code as the live release of ${(bake.upToDateWith ?? []).join(', ')}`] : []),
      ].join('; ');
    }
    case 'BuildImage':
      return output.image
        ? `bake key ${output.image.bakeKey.slice(0, 12)}…${output.image.cacheHit ? ', cache hit: reused the earlier build' : ''}`
        : '';
    case 'PublishLayer':
      return output.layer
        ? `${output.layer.name}:${output.layer.version} ${output.layer.reused ? 'reused (same bytes)' : 'published'}, ${(output.layer.size / 1e6).toFixed(1)} MB`
        : '';
    case 'PublishVersion':
      return output.versions?.functions.map((f) => `${f.name}:${f.version}`).join(', ') ?? '';
    case 'Validate': {
      if (!output.validation) return '';
      const fns = output.validation.functions;
      const passed = fns.reduce((n, f) => n + f.cases.filter((c) => c.passed).length, 0);
      const offline = fns.every((f) => f.selfContained.checked)
        ? 'again with no network: passed'
        : `no-network check not run (${fns.find((f) => !f.selfContained.checked)?.selfContained.reason ?? '?'})`;
      return `${passed} case(s) passed; ${offline}`;
    }
    case 'RequestApproval':
      return output.approval ? `approved by ${output.approval.by}` : '';
    case 'Release':
    case 'ShiftTraffic': {
      const gradual = output.release?.gradual;
      if (gradual && !gradual.done) {
        const weight = gradual.steps[gradual.step]?.weight ?? 0;
        const shifted = gradual.functions.map((f) => `${f.name}:${f.alias} ${weight}% on ${f.to} (rest on ${f.from})`).join(', ');
        return `${shifted}; alarms checked again in ${gradual.waitSeconds} s`;
      }
      if (state === 'ShiftTraffic') return gradual ? `all traffic on ${gradual.functions.map((f) => `${f.name}:${f.to}`).join(', ')}` : '';
      return (
        output.release?.functions
          .map((m) => `${m.name}:${m.alias} ${m.from ?? '(none)'} → ${m.to}${m.changed ? '' : ' (unchanged)'}`)
          .join(', ') ?? ''
      );
    }
    default:
      return '';
  }
}

/**
 * Run `statemachines/bake.asl.json` in-process with aws-local-stepfunctions, each Task
 * mapped (through the function it invokes) to the same core its Lambda handler calls.
 * Callback tasks get a local task token and wait until it is settled, as in AWS.
 * A bake released or failed; only a scheduled one can end up to date (see {@link runScheduledBake}).
 */
export async function runBake(request: BakeRequest, options: RunBakeOptions): Promise<RunOutcome> {
  const outcome = await execute(request, options, await startJournal(request, options));
  if (outcome.status === 'upToDate') {
    throw new Error(`bake ${outcome.bakeId} ended up to date, which only a scheduled bake can: run it with runScheduledBake`);
  }
  return outcome;
}

/**
 * Run a bake triggered as `schedule` (the patch rebuild): like {@link runBake}, but it
 * may also end as `upToDate` when its bake key and code equal what is live.
 */
export async function runScheduledBake(request: BakeRequest, options: RunBakeOptions): Promise<RunOutcome | UpToDateOutcome> {
  return execute(request, options, await startJournal(request, options));
}

/** Where an execution starts: at StartAt with the request, or (a resume) at a journaled Task state. */
interface Start {
  journal: ExecutionJournal | undefined;
  /** The interrupted Task state, its input, its token, and its result if it had returned. */
  resume?: JournalTask;
}

async function startJournal(request: BakeRequest, options: RunBakeOptions): Promise<Start> {
  if (request.bakeId === undefined) return { journal: undefined };
  const spec = options.spec ?? (request.source.type === 'file' ? request.source.path : JSON.stringify(request.source));
  return { journal: await ExecutionJournal.start(options.deps.home, { ...request, bakeId: request.bakeId }, spec) };
}

/**
 * Continue an interrupted local execution (`bakery resume`): its process is gone, so
 * this one takes it over and runs the same definition from the Task state it was in,
 * with that state's journaled input and the same bake id. A task whose result was
 * journaled is not run again (its result is replayed); one that had not returned runs
 * again with the same input (the tasks are idempotent) and, for a callback task, the
 * same token, so a decision made while no process waited is found.
 */
export async function resumeExecution(bakeId: string, options: Omit<RunBakeOptions, 'spec'>): Promise<RunOutcome | UpToDateOutcome> {
  const journal = await ExecutionJournal.takeOver(options.deps.home, bakeId);
  const last = journal.current.tasks.at(-1);
  return execute(journal.current.request, options, { journal, ...(last ? { resume: last } : {}) });
}

async function execute(request: BakeRequest, options: RunBakeOptions, start: Start): Promise<RunOutcome | UpToDateOutcome> {
  const { deps } = options;
  const { journal } = start;
  const write = options.write ?? (() => {});
  const fileDefinition = await loadDefinition(options.definitionFile);
  const tasks = tasksOf(fileDefinition);
  const { definition, timeoutPaths } = withStateInputTimeouts(fileDefinition, start.resume?.state);
  const stop = new AbortController();
  let replay = start.resume;
  const pause = async (point: string) => {
    if (options.pauseAt !== point) return;
    write(`(test) paused at ${point}`);
    await new Promise(() => {}); // until killed
  };

  const handlers: Record<string, (input: Json) => Promise<Json>> = {};
  for (const { state, task, callback } of tasks) {
    const run = async (input: Json, journaledToken: string | null): Promise<Json> => {
      const payload = (input as { Payload: Json }).Payload;
      if (!callback) return { Payload: JSON.parse(JSON.stringify(await TASKS[task](payload, deps))) as Json };
      // A resumed callback task waits on its journaled token: a decision made meanwhile settled it.
      const token = journaledToken ?? `${state}-${randomBytes(12).toString('hex')}`;
      await journal?.waiting(state, token);
      await pause(`${state}:waiting`);
      let outcome = journaledToken ? await deps.callbacks.settled(token) : undefined;
      if (!outcome) {
        const started = (await TASKS[task]({ ...(payload as Record<string, Json>), taskToken: token }, deps)) as { approvalId?: string };
        if (task === 'requestApproval' && options.approve === 'auto' && started.approvalId) {
          await decideApproval({ ref: started.approvalId, outcome: 'approved', by: options.approver }, deps);
        }
        outcome = await deps.callbacks.wait(token, stop.signal);
      }
      if (outcome.status === 'failed') throw namedError(outcome.error, outcome.cause);
      return outcome.output;
    };
    const timeoutPath = timeoutPaths.get(state);
    const withTimeout = async (stateInput: Json, params: Json, token: string | null): Promise<Json> => {
      if (timeoutPath === undefined) return run(params, token);
      const timeout = resolveReferencePath(stateInput ?? null, timeoutPath);
      if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1) {
        throw namedError(
          'States.Runtime',
          `TimeoutSecondsPath ${timeoutPath} of ${state} is not a positive integer: ${JSON.stringify(timeout)}`,
        );
      }
      let cancel: (() => void) | undefined;
      try {
        return await Promise.race([
          run(params, token),
          new Promise<never>((_, reject) => {
            cancel = setLongTimeout(() => reject(namedError('States.Timeout', `${state} timed out after ${timeout} s`)), timeout * 1000);
          }),
        ]);
      } finally {
        cancel?.();
      }
    };
    handlers[state] = async (input) => {
      const { [STATE_INPUT_KEY]: stateInput = null, ...params } = input as Record<string, Json>;
      const resumed = replay?.state === state ? replay : undefined;
      replay = undefined;
      // A task that returned before the process died is not run again: its result stands.
      if (resumed?.result !== undefined) return resumed.result;
      await journal?.entered(state, stateInput);
      await pause(`${state}:entered`);
      const result = await withTimeout(stateInput, params, resumed?.token ?? null);
      await pause(`${state}:returned`);
      await journal?.completed(state, result);
      await pause(`${state}:completed`);
      return result;
    };
  }

  const retryIntervalOverrides: Record<string, number> = {};
  if (options.retryIntervalMs !== undefined) for (const { state } of tasks) retryIntervalOverrides[state] = options.retryIntervalMs;
  const waitTimeOverrides: Record<string, number> = {};
  if (options.waitMs !== undefined) {
    for (const [state, def] of Object.entries(fileDefinition.States)) if (def.Type === 'Wait') waitTimeOverrides[state] = options.waitMs;
  }

  // A resume's copy starts at the interrupted state, which leaves the states before it
  // unreachable: asl-validator refuses that, so the definition is checked as written and
  // the copy run unvalidated.
  if (start.resume) new StateMachine(fileDefinition as never, { validationOptions: { checkArn: false } });
  const machine = new StateMachine(definition as never, { validationOptions: { checkArn: false, noValidate: start.resume !== undefined } });
  const startTime = new Date().toISOString();
  const execution = machine.run((start.resume ? start.resume.input : request) as unknown as Json, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides, waitTimeOverrides },
    context: {
      Execution: { Id: `local:${request.bakeId ?? 'bake'}`, Name: request.bakeId ?? 'bake', StartTime: startTime },
      Task: { Token: 'set-per-task-by-the-local-runner' },
    },
  });

  let bakeId: string | null = request.bakeId ?? null;
  let failedState: string | null = null;
  let recorded: { state: string; Error: string; Cause: string } | null = null;
  let final: { Error: string; Cause: string } | null = null;
  const enteredAt = new Map<string, number>();
  // A caught failure still exits its state (into the Catch): that exit is not a success to print.
  const caught = new Set<string>();
  const progress = (async () => {
    for await (const event of execution.eventLogs) {
      if (options.onStep && 'state' in event && 'name' in event.state) {
        const steps: Record<string, ExecutionStep['type']> = {
          StateEntered: 'entered',
          StateExited: 'exited',
          StateFailed: 'failed',
          StateRetried: 'retried',
        };
        const type = steps[event.type];
        if (type) {
          options.onStep({
            type,
            state: event.state.name,
            stateType: event.state.type,
            at: event.timestamp,
            ...('Error' in event ? { error: String(event.Error), cause: String(event.Cause ?? '') } : {}),
            ...(type === 'exited' && event.state.type === 'Task' && event.state.output !== undefined
              ? { output: event.state.output as Json }
              : {}),
          });
        }
      }
      if (event.type === 'StateEntered') {
        enteredAt.set(event.state.name, event.timestamp);
        if (event.state.type === 'Task') write(`▸ ${event.state.name}`);
      } else if (event.type === 'StateExited' && event.state.type === 'Task') {
        if (caught.delete(event.state.name)) continue;
        const took = seconds(event.timestamp - (enteredAt.get(event.state.name) ?? event.timestamp));
        const output = (event.state.output ?? {}) as BakeState & { failure?: typeof recorded };
        if (output.bake?.bakeId) bakeId = output.bake.bakeId;
        if (event.state.name === 'RecordFailure' && output.failure) recorded = output.failure;
        // A state output that breaks the contract fails at the next task's parse, not here.
        const info = (() => {
          try {
            return detail(event.state.name, output);
          } catch {
            return '';
          }
        })();
        write(`✓ ${event.state.name} (${took})${info ? `  ${info}` : ''}`);
      } else if (event.type === 'StateFailed') {
        const took = seconds(event.timestamp - (enteredAt.get(event.state.name) ?? event.timestamp));
        if (event.state.name !== 'RecordFailure') failedState = event.state.name;
        caught.add(event.state.name);
        const firstLine = String(event.Cause ?? '').split('\n')[0];
        write(`✗ ${event.state.name} (${took})  ${event.Error}: ${firstLine}`);
      } else if (event.type === 'StateRetried') {
        caught.delete(event.state.name);
        write(`↻ ${event.state.name}: retry ${event.retry.attempt}`);
      } else if (event.type === 'ExecutionFailed') {
        final = { Error: event.Error, Cause: String(event.Cause ?? '') };
      }
    }
  })();

  try {
    const output = (await execution.result) as unknown as ReleasedState;
    await progress;
    // The UpToDate state ends the execution right after ResolveBake: no record, nothing published.
    if (output.bake?.upToDate === true && output.record === undefined) {
      await journal?.ended({ status: 'upToDate', at: new Date().toISOString() });
      return { status: 'upToDate', bakeId: output.bake.bakeId, output: output as BakeState & { bake: ResolvedBake } };
    }
    await journal?.ended({ status: 'succeeded', at: new Date().toISOString() });
    return { status: 'succeeded', bakeId: output.record.bakeId, output };
  } catch (error) {
    await progress.catch(() => undefined);
    const failure = recorded as { state: string; Error: string; Cause: string } | null;
    const last = final as { Error: string; Cause: string } | null;
    const outcome = {
      status: 'failed' as const,
      bakeId,
      state: failure?.state ?? failedState ?? 'unknown',
      error: failure?.Error ?? last?.Error ?? (error as Error).name,
      cause: failure?.Cause ?? last?.Cause ?? (error as Error).message,
    };
    await journal?.ended({
      status: 'failed',
      at: new Date().toISOString(),
      state: outcome.state,
      error: outcome.error,
      cause: outcome.cause,
    });
    return outcome;
  } finally {
    stop.abort();
  }
}
