import { namedError } from '../errors.ts';
import type { Json } from '../state.ts';

/**
 * The copy of `bake.asl.json` the local runner hands aws-local-stepfunctions, and the
 * one workaround of the library's behaviour that it needs, in one place.
 *
 * Step Functions resolves `TimeoutSecondsPath` against the state input;
 * aws-local-stepfunctions 3 resolves it against the input after `Parameters`
 * (`TaskStateAction.getTimeoutMs` is called with the effective input), where the path
 * no longer exists. So the runner keeps the file as it is and hands the library a copy
 * in which every Task state carries its state input along (`bakeryStateInput`) and a
 * `TimeoutSecondsPath` becomes the longest `TimeoutSeconds` a Node timer takes; the
 * runner then enforces the state's own timeout itself (chunked, so a year works),
 * failing with `States.Timeout` exactly as Step Functions would. The state input is
 * also what the journal records, so that a resume can start the state again from it.
 */

/** Node timers overflow past 2^31-1 ms: the longest TimeoutSeconds the library can arm. */
const LOCAL_MAX_TIMEOUT_SECONDS = 2_147_483;
/** The longest delay one Node timer takes (a longer one fires at once, with a TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;
const STATE_INPUT_KEY = 'bakeryStateInput';

/**
 * Call `fire` after `ms`, however long (Step Functions allows a year): one timer per
 * chunk of at most 2^31-1 ms, so no delay overflows Node's timer. Returns a cancel.
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

export interface LocalDefinition {
  /** What to hand the library. */
  definition: Record<string, unknown>;
  /** A Task's input as the library passes it: its state input, and its resolved Parameters. */
  split(input: Json): { stateInput: Json; params: Json };
  /** Run `task` within the state's `TimeoutSecondsPath` timeout, if it has one. */
  /**
   * Run `task` within the state's TimeoutSecondsPath, counted from `startedAtMs` when the
   * state was entered before (a resume goes on with the time the wait had left).
   */
  withinTimeout(state: string, stateInput: Json, task: () => Promise<Json>, startedAtMs?: number): Promise<Json>;
}

/** The library's copy of `definition`; with `startAt`, a copy that starts there (a resume: the library only starts at StartAt). */
export function localDefinition(definition: Record<string, unknown>, startAt?: string): LocalDefinition {
  const copy = JSON.parse(JSON.stringify(definition)) as { StartAt: string; States: Record<string, Record<string, unknown>> };
  const timeoutPaths = new Map<string, string>();
  for (const [name, state] of Object.entries(copy.States)) {
    if (state.Type !== 'Task') continue;
    state.Parameters = { ...(state.Parameters as Record<string, unknown>), [`${STATE_INPUT_KEY}.$`]: '$' };
    if (typeof state.TimeoutSecondsPath !== 'string') continue;
    timeoutPaths.set(name, state.TimeoutSecondsPath);
    delete state.TimeoutSecondsPath;
    state.TimeoutSeconds = LOCAL_MAX_TIMEOUT_SECONDS;
  }
  if (startAt !== undefined) copy.StartAt = startAt;
  return {
    definition: copy,
    split(input) {
      const { [STATE_INPUT_KEY]: stateInput = null, ...params } = input as Record<string, Json>;
      return { stateInput, params };
    },
    async withinTimeout(state, stateInput, task, startedAtMs) {
      const timeoutPath = timeoutPaths.get(state);
      if (timeoutPath === undefined) return task();
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
          task(),
          new Promise<never>((_, reject) => {
            const left = timeout * 1000 - (startedAtMs === undefined ? 0 : Math.max(0, Date.now() - startedAtMs));
            cancel = setLongTimeout(() => reject(namedError('States.Timeout', `${state} timed out after ${timeout} s`)), Math.max(0, left));
          }),
        ]);
      } finally {
        cancel?.();
      }
    },
  };
}
