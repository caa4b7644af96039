import './polyfill.ts';
import { randomBytes } from 'node:crypto';
import { StateMachine } from 'aws-local-stepfunctions';
import { AutoApprovingNotifier } from '../adapters/local/auto-approver.ts';
import type { LocalDeps } from '../compose/local.ts';
import { decideApproval } from '../cores/approval.ts';
import { namedError } from '../errors.ts';
import type { ArtefactRef, BakeRequest, BakeState, Json, ResolvedBake } from '../state.ts';
import { TASKS } from '../tasks.ts';
import { loadDefinition, tasksOf } from './asl.ts';
import { localDefinition } from './definition.ts';
import { ExecutionJournal, type JournalTask } from './journal.ts';

export interface RunBakeOptions {
  deps: LocalDeps;
  /**
   * `auto`: the ports get the auto-approving notifier (an adapter: it approves as `approver`
   * as soon as asked; CI, the demo); `wait`: wait for `bakery approve|reject`.
   */
  approve: 'auto' | 'wait';
  approver: string;
  /** Progress: each state as it starts and ends (the CLI renders them, see src/cli/render.ts). */
  onEvent?: (event: RunnerEvent) => void;
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

/** A bake that found nothing new: it ended in the UpToDate state, having built, published and stored nothing. */
export type UpToDateOutcome = { status: 'upToDate'; bakeId: string; output: BakeState & { bake: ResolvedBake } };

export { setLongTimeout } from './definition.ts';

/** What the runner reports as an execution goes; the runner renders nothing itself. */
export type RunnerEvent =
  | { type: 'entered'; state: string; stateType: string }
  | { type: 'succeeded'; state: string; durationMs: number; output: BakeState }
  | { type: 'failed'; state: string; durationMs: number; error: string; cause: string }
  | { type: 'retried'; state: string; attempt: number }
  | { type: 'paused'; point: string };

/** `approve: 'auto'`: the same ports, with a notifier that approves as soon as asked. */
function composeApprover(deps: LocalDeps, options: RunBakeOptions): LocalDeps {
  if (options.approve !== 'auto') return deps;
  const composed: LocalDeps = { ...deps };
  composed.notifier = new AutoApprovingNotifier(deps.notifier, async (record, message) => {
    // Stored before deciding (RequestApproval stores it too, after asking), so the decision updates that message.
    if (message) await deps.approvals.setMessage(record.id, message);
    await decideApproval({ ref: record.id, outcome: 'approved', by: options.approver }, composed);
  });
  return composed;
}

/**
 * Run `statemachines/bake.asl.json` in-process with aws-local-stepfunctions, each Task
 * mapped (through the function it invokes) to the same core its Lambda handler calls.
 * Callback tasks get a local task token and wait until it is settled, as in AWS.
 * A bake is released, failed, or (any trigger, unless forced) up to date when its bake
 * key and every function's code and configuration equal what is live (src/cores/uptodate.ts).
 */
export async function runBake(request: BakeRequest, options: RunBakeOptions): Promise<RunOutcome | UpToDateOutcome> {
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

/** Definitions asl-validator already accepted in this process, by their JSON text. */
const checkedDefinitions = new Set<string>();

/**
 * Validate a definition as aws-local-stepfunctions' constructor does (asl-validator, ARNs
 * unchecked: local Task resources are not real ARNs), once per process: the library compiles
 * the ASL JSON schema afresh on every construction (about 0.1–0.2 s), which a process that
 * runs many bakes (`bakery serve`, the tests) would pay per bake for the same file.
 */
function checkDefinitionOnce(definition: object): void {
  const text = JSON.stringify(definition);
  if (checkedDefinitions.has(text)) return;
  new StateMachine(definition as never, { validationOptions: { checkArn: false } });
  checkedDefinitions.add(text);
}

async function execute(request: BakeRequest, options: RunBakeOptions, start: Start): Promise<RunOutcome | UpToDateOutcome> {
  const deps = composeApprover(options.deps, options);
  const { journal } = start;
  const emit = options.onEvent ?? (() => {});
  const fileDefinition = await loadDefinition(options.definitionFile);
  const tasks = tasksOf(fileDefinition);
  const local = localDefinition(fileDefinition, start.resume?.state);
  const { definition } = local;
  const stop = new AbortController();
  let replay = start.resume;
  const pause = async (point: string) => {
    if (options.pauseAt !== point) return;
    emit({ type: 'paused', point });
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
        try {
          await TASKS[task]({ ...(payload as Record<string, Json>), taskToken: token }, deps);
        } catch (error) {
          // A decision can land between the check above and the re-request, which then refuses to
          // ask again: the decision settles this same journaled token (just after it is recorded), so wait for it.
          if (!journaledToken || (error as Error).name !== 'AlreadyDecidedError') throw error;
        }
        outcome ??= await deps.callbacks.wait(token, stop.signal);
      }
      if (outcome.status === 'failed') throw namedError(outcome.error, outcome.cause);
      return outcome.output;
    };
    handlers[state] = async (input) => {
      const { stateInput, params } = local.split(input);
      const resumed = replay?.state === state ? replay : undefined;
      replay = undefined;
      // A task that returned before the process died is not run again: its result stands.
      if (resumed?.result !== undefined) return resumed.result;
      // A resumed state keeps the time it was first entered: its timeout goes on from there.
      await journal?.entered(state, stateInput, resumed?.enteredAt);
      await pause(`${state}:entered`);
      const result = await local.withinTimeout(
        state,
        stateInput,
        () => run(params, resumed?.token ?? null),
        resumed ? Date.parse(resumed.enteredAt) : undefined,
      );
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
  checkDefinitionOnce(start.resume ? fileDefinition : definition);
  const machine = new StateMachine(definition as never, { validationOptions: { noValidate: true } });
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
  // A caught failure still exits its state (into the Catch): that exit is not a success to report.
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
        emit({ type: 'entered', state: event.state.name, stateType: event.state.type });
      } else if (event.type === 'StateExited' && event.state.type === 'Task') {
        if (caught.delete(event.state.name)) continue;
        const durationMs = event.timestamp - (enteredAt.get(event.state.name) ?? event.timestamp);
        const output = (event.state.output ?? {}) as BakeState & { failure?: typeof recorded };
        if (output.bake?.bakeId) bakeId = output.bake.bakeId;
        if (event.state.name === 'RecordFailure' && output.failure) recorded = output.failure;
        emit({ type: 'succeeded', state: event.state.name, durationMs, output });
      } else if (event.type === 'StateFailed') {
        const durationMs = event.timestamp - (enteredAt.get(event.state.name) ?? event.timestamp);
        if (event.state.name !== 'RecordFailure') failedState = event.state.name;
        caught.add(event.state.name);
        emit({ type: 'failed', state: event.state.name, durationMs, error: event.Error, cause: String(event.Cause ?? '') });
      } else if (event.type === 'StateRetried') {
        caught.delete(event.state.name);
        emit({ type: 'retried', state: event.state.name, attempt: event.retry.attempt });
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
