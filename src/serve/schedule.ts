import { readFileSync } from 'node:fs';
import path from 'node:path';
import awsCronParser from 'aws-cron-parser';
import { parse as parseYaml } from 'yaml';
import { driftCheck } from '../cores/drift.ts';
import { type RebakeOutcome, scheduledRebake } from '../cores/trigger.ts';
import { InputError } from '../errors.ts';
import type { FunctionRegistry } from '../ports/lambda.ts';
import type { DriftReport, Notifier } from '../ports/notifier.ts';
import type { ArtefactStore, Ledger } from '../ports/storage.ts';
import type { Clock } from '../ports/system.ts';
import type { BakeStarter, SourceCatalog } from '../ports/triggers.ts';
import { readJsonIfExists, writeJsonAtomic } from '../util/fsx.ts';

/** A parsed EventBridge schedule expression: `rate(…)` or AWS's six-field `cron(…)` (UTC). */
export type Schedule =
  | { kind: 'rate'; ms: number; expression: string }
  | { kind: 'cron'; cron: ReturnType<typeof awsCronParser.parse>; expression: string };

/** The words each cron field may hold (minutes, hours, day-of-month, month, day-of-week, year). */
const WORDS: Array<Set<string>> = [
  new Set(),
  new Set(),
  new Set(['L', 'W', 'LW']),
  new Set(['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']),
  new Set(['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'L']),
  new Set(),
];

const UNIT_MS: Record<string, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/**
 * Parse a schedule expression as EventBridge (and Scheduler) accept it. `rate(value unit)`
 * is parsed here (one regex; AWS's rule: value 1 takes the singular unit, others the
 * plural); `cron(minutes hours day-of-month month day-of-week year)` by aws-cron-parser,
 * which implements AWS's dialect (`?`, `L`, `W`, `#`, the year field).
 */
export function parseSchedule(expression: string): Schedule {
  const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expression.trim());
  if (rate) {
    const value = Number(rate[1]);
    const unit = rate[2] as string;
    if (value < 1 || (value === 1) !== !unit.endsWith('s')) {
      throw new InputError(
        `schedule ${expression}: use rate(1 ${unit.replace(/s$/, '')}) or rate(N ${unit.replace(/s?$/, 's')}) with N > 1`,
      );
    }
    return { kind: 'rate', ms: value * (UNIT_MS[unit.replace(/s$/, '')] as number), expression };
  }
  const cron = /^cron\((.+)\)$/.exec(expression.trim());
  if (cron) {
    const fields = (cron[1] as string).trim().split(/\s+/);
    if (fields.length !== 6)
      throw new InputError(
        `schedule ${expression}: AWS cron expressions have six fields (minutes hours day-of-month month day-of-week year)`,
      );
    if (fields[2] !== '?' && fields[4] !== '?')
      throw new InputError(`schedule ${expression}: one of day-of-month and day-of-week must be ?`);
    // aws-cron-parser expects expressions AWS has validated: a garbled field parses to nothing that is ever due.
    const bad = fields.find(
      (f, i) => !/^[0-9A-Za-z*?,/#-]+$/.test(f) || (f.match(/[A-Za-z]+/g) ?? []).some((w) => !WORDS[i]?.has(w.toUpperCase())),
    );
    let parsed: ReturnType<typeof awsCronParser.parse> | undefined;
    try {
      parsed = bad === undefined ? awsCronParser.parse(cron[1] as string) : undefined;
    } catch {
      parsed = undefined;
    }
    const next = parsed ? awsCronParser.next(parsed, new Date()) : null;
    if (!parsed || !next || Number.isNaN(next.getTime())) {
      throw new InputError(`schedule ${expression} is not a valid AWS cron expression${bad ? ` (field "${bad}")` : ''}, or it never fires`);
    }
    return { kind: 'cron', cron: parsed, expression };
  }
  throw new InputError(`schedule ${expression} is neither rate(...) nor cron(...)`, {
    hint: 'Use the format of patchRebuildSchedule in serverless.yml, e.g. rate(7 days) or cron(0 3 ? * MON *).',
  });
}

/**
 * The most recent time `schedule` was due at or before `now`, or null when never. A rate
 * is due at every multiple of its interval since the Unix epoch (EventBridge counts from
 * the rule's creation, which has no local counterpart; a fixed origin makes periods the
 * same across restarts).
 */
export function lastDue(schedule: Schedule, now: Date): Date | null {
  if (schedule.kind === 'rate') return new Date(Math.floor(now.getTime() / schedule.ms) * schedule.ms);
  // prev() looks strictly before its argument; a firing at exactly `now` counts as due.
  return awsCronParser.prev(schedule.cron, new Date(now.getTime() + 1000));
}

/** The expressions the deployed pipeline runs on, read from serverless.yml's `custom` section. */
export function deployedSchedules(projectRoot: string): Record<ScheduleName, string> {
  // CloudFormation's short tags (!Ref, !Sub, …) do not matter here: read them as plain values, quietly.
  const doc = parseYaml(readFileSync(path.join(projectRoot, 'serverless.yml'), 'utf8'), { logLevel: 'error' }) as {
    custom?: Record<string, unknown>;
  };
  const custom = doc.custom ?? {};
  return {
    'patch-rebuild': typeof custom.patchRebuildSchedule === 'string' ? custom.patchRebuildSchedule : 'rate(7 days)',
    'drift-check': typeof custom.driftSchedule === 'string' ? custom.driftSchedule : 'rate(1 hour)',
  };
}

export type ScheduleName = 'patch-rebuild' | 'drift-check';

export interface ScheduleSettings {
  /** Expressions; null turns one off. Defaults: serverless.yml's (see {@link deployedSchedules}). */
  'patch-rebuild'?: string | null;
  'drift-check'?: string | null;
  /** How often the clock is looked at (default 15 s; the expressions are at least a minute apart). */
  tickMs?: number;
}

export interface SchedulerDeps {
  catalog: SourceCatalog;
  starter: BakeStarter;
  clock: Clock;
  drift: { ledger: Ledger; functions: FunctionRegistry; artefacts: ArtefactStore; clock: Clock; notifier: Notifier };
}

export type Firing =
  | { schedule: 'patch-rebuild'; scheduledTime: string; outcome: RebakeOutcome }
  | { schedule: 'drift-check'; scheduledTime: string; outcome: DriftReport };

/** The last period each schedule fired for, persisted: a restart does not fire one period twice. */
type Fired = Partial<Record<ScheduleName, string>>;

export const LOCAL_SCHEDULE_ARN = 'arn:aws:scheduler:local:000000000000:schedule/default/bakery-serve-patch-rebuild';

/**
 * The schedules of `bakery serve`: each due period fires once. The period is recorded
 * before it fires (at most once per period, as a crash right after would rather skip than
 * repeat; the patch rebuild's own names make a repeat harmless anyway). At the first
 * start the period already under way counts as fired, so starting the server does not
 * rebuild everything at once; the next period does.
 */
export class Scheduler {
  private readonly file: string;
  private readonly schedules: Partial<Record<ScheduleName, Schedule>>;
  private readonly deps: SchedulerDeps;
  private readonly source: { bucket: string; prefix: string };
  private readonly write: (line: string) => void;
  private readonly tickMs: number;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  /** Firings so far (the dashboard shows the last few). */
  readonly history: Array<Firing | { schedule: ScheduleName; scheduledTime: string; error: string }> = [];

  constructor(options: {
    file: string;
    settings: ScheduleSettings;
    source: { bucket: string; prefix: string };
    deps: SchedulerDeps;
    write?: (line: string) => void;
  }) {
    this.file = options.file;
    this.deps = options.deps;
    this.source = options.source;
    this.write = options.write ?? (() => {});
    this.tickMs = options.settings.tickMs ?? 15_000;
    this.schedules = {};
    for (const name of ['patch-rebuild', 'drift-check'] as const) {
      const expression = options.settings[name];
      if (expression) this.schedules[name] = parseSchedule(expression);
    }
  }

  /** The expression of each schedule that is on. */
  expressions(): Partial<Record<ScheduleName, string>> {
    return Object.fromEntries(Object.entries(this.schedules).map(([name, s]) => [name, s.expression]));
  }

  /** Look at the clock: fire every schedule whose latest due time has not fired yet. */
  tick(): Promise<void> {
    this.ticking = this.ticking.then(() => this.due()).catch((error: unknown) => this.write(`schedule: ${(error as Error).message}`));
    return this.ticking;
  }

  private async due(): Promise<void> {
    const now = this.deps.clock.now();
    const fired = (await readJsonIfExists<Fired>(this.file)) ?? {};
    let first = false;
    for (const [name, schedule] of Object.entries(this.schedules) as Array<[ScheduleName, Schedule]>) {
      const due = lastDue(schedule, now);
      if (!due) continue;
      const last = fired[name];
      if (last === undefined) {
        fired[name] = due.toISOString();
        first = true;
        continue;
      }
      if (due.getTime() <= Date.parse(last)) continue;
      fired[name] = due.toISOString();
      await writeJsonAtomic(this.file, fired);
      await this.fire(name, due);
    }
    if (first) await writeJsonAtomic(this.file, fired);
  }

  /** Fire one schedule now (`bakery schedule run`), or for the period due at `scheduledTime`. */
  async fire(name: ScheduleName, scheduledTime: Date = this.deps.clock.now()): Promise<Firing> {
    const at = scheduledTime.toISOString();
    try {
      let firing: Firing;
      if (name === 'patch-rebuild') {
        const outcome = await scheduledRebake({ scheduleArn: LOCAL_SCHEDULE_ARN, scheduledTime: at }, this.source, this.deps);
        const started = outcome.bakes.filter((b) => b.started).length;
        this.write(`schedule patch-rebuild (${at}): ${outcome.sources} source(s), ${started} bake(s) started, week ${outcome.week}`);
        firing = { schedule: name, scheduledTime: at, outcome };
      } else {
        const outcome = await driftCheck(this.deps.drift);
        this.write(`schedule drift-check (${at}): ${outcome.drifted ? 'drift found' : 'no drift'}`);
        firing = { schedule: name, scheduledTime: at, outcome };
      }
      this.history.push(firing);
      return firing;
    } catch (error) {
      this.history.push({ schedule: name, scheduledTime: at, error: (error as Error).message });
      throw error;
    }
  }

  start(): void {
    if (this.timer || Object.keys(this.schedules).length === 0) return;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.tickMs);
    this.timer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    return this.ticking;
  }
}
