import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { LocalHome } from '../adapters/local/home.ts';
import { withFileLock } from '../adapters/local/lock.ts';
import { NotFoundError, NotInterruptedError } from '../errors.ts';
import type { ExecutionsInFlight } from '../ports/executions.ts';
import type { BakeRequest, Json } from '../state.ts';
import { readJsonIfExists, writeJsonAtomic } from '../util/fsx.ts';
import { currentOwner, describeOwner, ownerLiveness, type ProcessOwner } from '../util/owner.ts';

/**
 * The journal of local executions: `<home>/executions/<bakeId>.json`, one file per
 * execution, replaced atomically (temp file, fsync, rename) at every step. It is what
 * Step Functions keeps of an execution when a worker dies: the owner process, each Task
 * state entered with its input, the callback token it waits on, and its result once it
 * returned. A process killed at any point leaves the last step it journaled, from which
 * `bakery resume` continues (the tasks are idempotent: their AWS contract).
 */

export const JOURNAL_FORMAT = 'bakery.execution/1';

export type ExecutionEnd =
  | { status: 'succeeded'; at: string }
  | { status: 'upToDate'; at: string }
  | { status: 'failed'; at: string; state: string; error: string; cause: string };

/** One Task state the execution entered. */
export interface JournalTask {
  state: string;
  enteredAt: string;
  /** The state's input (before its Parameters): a resume starts the state again from it. */
  input: Json;
  /** The task token of a callback task (`.waitForTaskToken`). */
  token: string | null;
  /** What the task returned, once it did (before ResultSelector/ResultPath). */
  result?: Json;
  completedAt?: string;
}

export interface ExecutionRecord {
  format: typeof JOURNAL_FORMAT;
  bakeId: string;
  /** The spec as the user named it. */
  spec: string;
  request: BakeRequest;
  startedAt: string;
  updatedAt: string;
  /** The process running the execution now. */
  owner: ProcessOwner;
  /** Every Task state entered, in order; the last one is where the execution is. */
  tasks: JournalTask[];
  resumes: Array<{ at: string; state: string; owner: ProcessOwner; previousOwner: ProcessOwner }>;
  end: ExecutionEnd | null;
}

export type ExecutionStatus = 'running' | 'waiting' | 'interrupted' | 'succeeded' | 'failed' | 'upToDate';

/** One line of `bakery executions`. */
export interface ExecutionSummary {
  bakeId: string;
  status: ExecutionStatus;
  /** The Task state it is in (or ended after); null before the first one. */
  state: string | null;
  startedAt: string;
  spec: string;
  owner: ProcessOwner;
}

const BAKE_ID = /^[A-Za-z0-9_.-]+$/;

const journalDir = (home: LocalHome): string => home.path('executions');

function journalFile(home: LocalHome, bakeId: string): string {
  if (!BAKE_ID.test(bakeId)) throw new NotFoundError(`no local execution "${bakeId}"`);
  return path.join(journalDir(home), `${bakeId}.json`);
}

/** Where the execution is: its last Task state, whether that returned, and the status it has. */
export function statusOf(record: ExecutionRecord): ExecutionStatus {
  if (record.end) return record.end.status;
  if (ownerLiveness(record.owner) === 'dead') return 'interrupted';
  const last = record.tasks.at(-1);
  return last?.state === 'RequestApproval' && last.token !== null && last.result === undefined ? 'waiting' : 'running';
}

function summaryOf(record: ExecutionRecord): ExecutionSummary {
  return {
    bakeId: record.bakeId,
    status: statusOf(record),
    state: record.tasks.at(-1)?.state ?? null,
    startedAt: record.startedAt,
    spec: record.spec,
    owner: record.owner,
  };
}

export async function readExecution(home: LocalHome, bakeId: string): Promise<ExecutionRecord | undefined> {
  return readJsonIfExists<ExecutionRecord>(journalFile(home, bakeId));
}

/** Every local execution under `home`, oldest first. */
export async function listExecutions(home: LocalHome): Promise<ExecutionSummary[]> {
  const names = await readdir(journalDir(home)).catch(() => [] as string[]);
  const out: ExecutionSummary[] = [];
  for (const name of names) {
    if (!name.endsWith('.json') || name.startsWith('.')) continue;
    const record = await readJsonIfExists<ExecutionRecord>(path.join(journalDir(home), name)).catch(() => undefined);
    if (record?.format === JOURNAL_FORMAT) out.push(summaryOf(record));
  }
  return out.sort((a, b) => a.startedAt.localeCompare(b.startedAt) || a.bakeId.localeCompare(b.bakeId));
}

/** One execution's summary; NotFoundError when there is none. */
export async function getExecution(home: LocalHome, bakeId: string): Promise<ExecutionSummary & { record: ExecutionRecord }> {
  const record = await readExecution(home, bakeId);
  if (!record) throw new NotFoundError(`no local execution "${bakeId}"`, { hint: 'List them with `bakery executions`.' });
  return { ...summaryOf(record), record };
}

/**
 * What executions that have not ended (running, waiting for approval, interrupted) hold:
 * the layer and function versions they published or reused, and, for one inside
 * PublishLayer or PublishVersion, the layers and functions it may yet reuse a version of.
 * Pruning keeps all of it, since such an execution may still validate, release or record
 * them. The `entered` step is journaled before a task runs, so a publish that reuses a
 * version is seen here from before it looks the version up until its result is journaled.
 */
export async function versionsInFlight(home: LocalHome): Promise<ExecutionsInFlight> {
  const flight: ExecutionsInFlight = { layers: [], functions: [], publishing: [] };
  for (const summary of await listExecutions(home)) {
    const status = summary.status;
    if (status !== 'running' && status !== 'waiting' && status !== 'interrupted') continue;
    const record = await readExecution(home, summary.bakeId);
    const bake = { bakeId: summary.bakeId, status };
    for (const task of record?.tasks ?? []) {
      // A Lambda task's result is Lambda's answer: what the function returned is its Payload.
      const returned = (task.result as { Payload?: Json } | undefined)?.Payload ?? task.result;
      for (const value of [task.input, returned]) {
        const state = (value ?? {}) as {
          layer?: { arn?: unknown };
          versions?: { functions?: unknown };
          functions?: unknown;
          arn?: unknown;
        };
        if (typeof state.layer?.arn === 'string') flight.layers.push({ ...bake, arn: state.layer.arn });
        // PublishLayer returns the layer itself.
        if (task.state === 'PublishLayer' && value === returned && typeof state.arn === 'string')
          flight.layers.push({ ...bake, arn: state.arn });
        const published = Array.isArray(state.versions?.functions) ? state.versions.functions : [];
        // PublishVersion returns {functions: [...]}, later states carry it as $.versions.
        const made = task.state === 'PublishVersion' && value === returned && Array.isArray(state.functions) ? state.functions : [];
        for (const fn of [...published, ...made] as Array<{ name?: unknown; version?: unknown }>) {
          if (typeof fn.name === 'string' && typeof fn.version === 'string')
            flight.functions.push({ ...bake, name: fn.name, version: fn.version });
        }
      }
    }
    const last = record?.tasks.at(-1);
    if (last && last.result === undefined && (last.state === 'PublishLayer' || last.state === 'PublishVersion')) {
      const input = (last.input ?? {}) as { bake?: { spec?: { layer?: { name?: unknown } }; functions?: Array<{ name?: unknown }> } };
      const layer = input.bake?.spec?.layer?.name;
      flight.publishing.push({
        ...bake,
        state: last.state,
        layers: last.state === 'PublishLayer' && typeof layer === 'string' ? [layer] : [],
        functions:
          last.state === 'PublishVersion' ? (input.bake?.functions ?? []).flatMap((f) => (typeof f.name === 'string' ? [f.name] : [])) : [],
      });
    }
  }
  const unique = <T>(items: T[]) => [...new Map(items.map((i) => [JSON.stringify(i), i])).values()];
  return { layers: unique(flight.layers), functions: unique(flight.functions), publishing: flight.publishing };
}

/** The journal of one execution, written by the process that runs it. */
export class ExecutionJournal {
  private readonly file: string;
  private record: ExecutionRecord;
  // Writes go out one after another, each replacing the whole file atomically.
  private queue: Promise<void> = Promise.resolve();

  private constructor(file: string, record: ExecutionRecord) {
    this.file = file;
    this.record = record;
  }

  /** Start the journal of a new execution. */
  static async start(home: LocalHome, request: BakeRequest & { bakeId: string }, spec: string): Promise<ExecutionJournal> {
    const journal = ExecutionJournal.of(home, request, spec, new Date().toISOString());
    await journal.flush();
    return journal;
  }

  /**
   * Journal, in one write, an execution whose only Task state has returned and that has
   * ended: `bakery bake` of an up-to-date spec (src/local/up-to-date.ts), which ResolveBake's
   * decision ends before anything is journaled. The record is the one the step-by-step
   * journal ends with (the state entered, its result, then `end`); there is no step in
   * between that a resume could continue from, so nothing is written before it.
   */
  static async recordEnded(
    home: LocalHome,
    request: BakeRequest & { bakeId: string },
    spec: string,
    task: { state: string; enteredAt: string; input: Json; result: Json },
    end: ExecutionEnd,
  ): Promise<void> {
    const journal = ExecutionJournal.of(home, request, spec, task.enteredAt);
    journal.record = {
      ...journal.record,
      updatedAt: end.at,
      tasks: [{ state: task.state, enteredAt: task.enteredAt, input: task.input, token: null, result: task.result, completedAt: end.at }],
      end,
    };
    await journal.flush();
  }

  private static of(home: LocalHome, request: BakeRequest & { bakeId: string }, spec: string, startedAt: string): ExecutionJournal {
    return new ExecutionJournal(journalFile(home, request.bakeId), {
      format: JOURNAL_FORMAT,
      bakeId: request.bakeId,
      spec,
      request,
      startedAt,
      updatedAt: startedAt,
      owner: currentOwner(),
      tasks: [],
      resumes: [],
      end: null,
    });
  }

  /**
   * Take over an interrupted execution (its owner is gone), as this process. Two
   * resumers race under the journal's lock: one wins, the other finds it running.
   */
  static async takeOver(home: LocalHome, bakeId: string): Promise<ExecutionJournal> {
    const file = journalFile(home, bakeId);
    return withFileLock(file, async () => {
      const { record, status } = await getExecution(home, bakeId);
      if (status !== 'interrupted') {
        throw new NotInterruptedError(
          record.end
            ? `bake ${bakeId} has ended (${record.end.status}); there is nothing to resume`
            : `bake ${bakeId} is ${status} in ${describeOwner(record.owner)}; only an interrupted execution can be resumed`,
        );
      }
      const last = record.tasks.at(-1);
      const owner = currentOwner();
      const journal = new ExecutionJournal(file, {
        ...record,
        owner,
        resumes: [...record.resumes, { at: new Date().toISOString(), state: last?.state ?? 'start', owner, previousOwner: record.owner }],
      });
      await journal.flush();
      return journal;
    });
  }

  get current(): ExecutionRecord {
    return this.record;
  }

  private update(change: (record: ExecutionRecord) => ExecutionRecord): Promise<void> {
    this.record = { ...change(this.record), updatedAt: new Date().toISOString() };
    return this.flush();
  }

  private flush(): Promise<void> {
    const snapshot = this.record;
    this.queue = this.queue.then(() => writeJsonAtomic(this.file, snapshot));
    return this.queue;
  }

  /** A Task state was entered with `input` (written before the task runs). */
  entered(state: string, input: Json, enteredAt: string = new Date().toISOString()): Promise<void> {
    return this.update((r) => ({ ...r, tasks: [...r.tasks, { state, enteredAt, input, token: null }] }));
  }

  /** The current callback task waits on `token`. */
  waiting(state: string, token: string): Promise<void> {
    return this.update((r) => ({
      ...r,
      tasks: r.tasks.map((t, i) => (i === r.tasks.length - 1 && t.state === state ? { ...t, token } : t)),
    }));
  }

  /** The current task returned `result`. */
  completed(state: string, result: Json): Promise<void> {
    const at = new Date().toISOString();
    return this.update((r) => ({
      ...r,
      tasks: r.tasks.map((t, i) => (i === r.tasks.length - 1 && t.state === state ? { ...t, result, completedAt: at } : t)),
    }));
  }

  ended(end: ExecutionEnd): Promise<void> {
    return this.update((r) => ({ ...r, end }));
  }
}
