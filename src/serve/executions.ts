import { mkdir, readdir } from 'node:fs/promises';
import path from 'node:path';
import type { ExecutionStep, RunOutcome, UpToDateOutcome } from '../local/runner.ts';
import type { BakeStarter } from '../ports/triggers.ts';
import type { StepEvent } from '../recipes/toe.ts';
import type { BakeRequest, Json } from '../state.ts';
import { createJsonExclusive, readJsonIfExists, writeJsonAtomic } from '../util/fsx.ts';

/** One state of an execution as the dashboard shows it. */
export interface StateRun {
  name: string;
  type: string;
  enteredAt: string;
  exitedAt: string | null;
  status: 'running' | 'succeeded' | 'failed';
  retries: number;
  error: string | null;
  cause: string | null;
}

/** One step of the image build as it runs (a Task of a component document). */
export interface BuildStepRun {
  document: string;
  phase: string;
  step: string;
  status: 'running' | 'retrying' | 'succeeded' | 'failed' | 'ignored';
  attempt: number;
  durationMs: number | null;
  error: string | null;
}

/** What `bakery serve` keeps of each execution it started: its input, its states so far, how it ended. */
export interface ExecutionRecord {
  name: string;
  request: BakeRequest;
  startedAt: string;
  status: 'running' | 'succeeded' | 'failed' | 'upToDate';
  endedAt: string | null;
  states: StateRun[];
  /** The last Task output (the accumulated bake state: build, validation, release). */
  output: Json | null;
  failure: { state: string; error: string; cause: string } | null;
  /** Times the execution was started again after `bakery serve` stopped while it ran. */
  restarts: number;
  /** The image build's steps, live while it runs (absent in records of older servers). */
  build?: BuildStepRun[];
}

/** How an execution ended, as the runner reports it. */
export type ExecutionOutcome =
  | { status: 'succeeded' | 'upToDate'; output: Json | null }
  | { status: 'failed'; state: string; error: string; cause: string };

/** Runs one bake to its end (the local runner, in `bakery serve` on the local backend). */
export type RunExecution = (request: BakeRequest, onStep: (step: ExecutionStep) => void) => Promise<ExecutionOutcome>;

/** The runner's outcome as an {@link ExecutionOutcome}. */
export const outcomeOf = (outcome: RunOutcome | UpToDateOutcome): ExecutionOutcome =>
  outcome.status === 'failed'
    ? { status: 'failed', state: outcome.state, error: outcome.error, cause: outcome.cause }
    : { status: outcome.status, output: outcome.output as unknown as Json };

const NAME = /^[A-Za-z0-9_-]{1,80}$/;

/**
 * The local stand-in for Step Functions' StartExecution: executions named by the caller,
 * each name started at most once (an exclusive create of `<dir>/<name>.json`, so a
 * duplicate event finds the first one), run in the background, their progress written
 * to the same file as it happens. Executions that were running when the server stopped
 * are started again by {@link resumeInterrupted}; the approval core renews a waiting
 * approval of the same bake, so it keeps waiting.
 */
export class ServeExecutions implements BakeStarter {
  private readonly dir: string;
  private readonly run: RunExecution;
  private readonly running = new Map<string, Promise<void>>();
  private readonly updaters = new Map<string, (change: (r: ExecutionRecord) => void) => void>();
  private readonly listeners = new Set<(record: ExecutionRecord) => void>();
  private readonly log: (line: string) => void;

  private readonly resume: (name: string, request: BakeRequest, onStep: (step: ExecutionStep) => void) => Promise<ExecutionOutcome>;

  constructor(options: {
    dir: string;
    run: RunExecution;
    /** Continue an execution the previous server left running (default: run it again from the start). */
    resume?: (name: string, request: BakeRequest, onStep: (step: ExecutionStep) => void) => Promise<ExecutionOutcome>;
    log?: (line: string) => void;
  }) {
    this.dir = options.dir;
    this.run = options.run;
    this.resume = options.resume ?? ((_name, request, onStep) => this.run(request, onStep));
    this.log = options.log ?? (() => {});
  }

  private file(name: string): string {
    if (!NAME.test(name)) throw new Error(`bad execution name ${name}`);
    return path.join(this.dir, `${name}.json`);
  }

  async start(name: string, request: BakeRequest): Promise<{ started: boolean; executionArn: string | null }> {
    await mkdir(this.dir, { recursive: true });
    const record: ExecutionRecord = {
      name,
      request,
      startedAt: new Date().toISOString(),
      status: 'running',
      endedAt: null,
      states: [],
      output: null,
      failure: null,
      restarts: 0,
    };
    const executionArn = `local:execution:${name}`;
    if (!(await createJsonExclusive(this.file(name), record))) return { started: false, executionArn };
    this.launch(record);
    return { started: true, executionArn };
  }

  /** Start again every execution that was running when the server stopped. */
  async resumeInterrupted(): Promise<string[]> {
    const resumed: string[] = [];
    for (const record of await this.list()) {
      if (record.status !== 'running' || this.running.has(record.name)) continue;
      const again: ExecutionRecord = { ...record, states: [], build: [], restarts: record.restarts + 1 };
      await this.save(again);
      this.launch(again, true);
      resumed.push(record.name);
    }
    return resumed;
  }

  async get(name: string): Promise<ExecutionRecord | undefined> {
    if (!NAME.test(name)) return undefined;
    return readJsonIfExists<ExecutionRecord>(this.file(name));
  }

  /** Every execution, newest first. */
  async list(): Promise<ExecutionRecord[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const records: ExecutionRecord[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = await readJsonIfExists<ExecutionRecord>(path.join(this.dir, name));
      if (record) records.push(record);
    }
    return records.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
  }

  /** A step of the image build of execution `name` started, retried or ended. */
  buildStep(name: string, event: Pick<StepEvent, 'document' | 'phase' | 'step' | 'status' | 'attempt' | 'durationMs' | 'error'>): void {
    this.updaters.get(name)?.((r) => {
      r.build ??= [];
      const current = [...r.build].reverse().find((b) => b.document === event.document && b.phase === event.phase && b.step === event.step);
      const fields = {
        status: event.status === 'started' ? 'running' : event.status,
        attempt: event.attempt,
        durationMs: event.durationMs ?? null,
        error: event.error ?? null,
      } as const;
      // A retried step starts again in its own row's place; a step seen again after it ended (a second build document) gets a row of its own.
      if (current && (event.status !== 'started' || current.status === 'retrying')) Object.assign(current, fields);
      else r.build.push({ document: event.document, phase: event.phase, step: event.step, ...fields });
    });
  }

  /** Called with the record after every change (the dashboard's live updates). */
  subscribe(listener: (record: ExecutionRecord) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when every execution started here has ended (tests; a clean stop waits for nothing). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }

  private async save(record: ExecutionRecord): Promise<void> {
    await writeJsonAtomic(this.file(record.name), record);
    for (const listener of this.listeners) listener(record);
  }

  private launch(record: ExecutionRecord, resumed = false): void {
    let chain = Promise.resolve();
    // Steps arrive synchronously and fast: writes are queued so each lands whole and in order.
    const update = (change: (r: ExecutionRecord) => void) => {
      change(record);
      chain = chain.then(() => this.save(record)).catch((error: unknown) => this.log(`serve: saving ${record.name}: ${String(error)}`));
    };
    this.updaters.set(record.name, update);
    const onStep = (step: ExecutionStep) =>
      update((r) => {
        const at = new Date(step.at).toISOString();
        const current = [...r.states].reverse().find((s) => s.name === step.state && s.exitedAt === null);
        if (step.type === 'entered') {
          r.states.push({
            name: step.state,
            type: step.stateType,
            enteredAt: at,
            exitedAt: null,
            status: 'running',
            retries: 0,
            error: null,
            cause: null,
          });
        } else if (current && step.type === 'retried') {
          current.retries++;
          current.status = 'running';
        } else if (current && step.type === 'failed') {
          Object.assign(current, { status: 'failed', exitedAt: at, error: step.error ?? null, cause: step.cause ?? null });
        } else if (current && step.type === 'exited') {
          Object.assign(current, { status: 'succeeded', exitedAt: at });
          if (step.output !== undefined) r.output = step.output;
        }
      });
    const work = (resumed ? this.resume(record.name, record.request, onStep) : this.run(record.request, onStep))
      .then((outcome) =>
        update((r) => {
          r.status = outcome.status === 'succeeded' ? 'succeeded' : outcome.status === 'upToDate' ? 'upToDate' : 'failed';
          r.endedAt = new Date().toISOString();
          if (outcome.status === 'failed') r.failure = { state: outcome.state, error: outcome.error, cause: outcome.cause };
          else if (outcome.output !== null) r.output = outcome.output;
        }),
      )
      .catch((error: unknown) => {
        // Stopped (the server is shutting down) or broken: the record stays as it was, "running", to be resumed.
        this.log(`serve: execution ${record.name} stopped: ${(error as Error).message}`);
      })
      .then(() => chain)
      .finally(() => {
        this.running.delete(record.name);
        this.updaters.delete(record.name);
      });
    this.running.set(record.name, work);
  }
}
