import { AliasConflictError, CanaryAlarmError, NotFoundError } from '../errors.ts';
import type { AlarmMonitor } from '../ports/alarms.ts';
import type { AliasInfo, FunctionRegistry } from '../ports/lambda.ts';
import type { ReleaseSpec } from '../spec.ts';
import type {
  AliasMove,
  BoundAlias,
  GradualRelease,
  PublishedFunctionVersion,
  ReleaseResult,
  TaskInput,
  TrafficStep,
  UndoneMove,
  UndoResult,
} from '../state.ts';

const noWeights = (alias: AliasInfo): boolean => Object.keys(alias.weights).length === 0;

/** Lambda's weights are fractions; the spec's are percent. Rounded so 10 % is exactly 0.1. */
export const fractionOf = (percent: number): number => Math.round(percent * 1000) / 100_000;

export const trafficSteps = (plan: ReleaseSpec): TrafficStep[] =>
  plan.steps.map((s) => ({ weight: s.weight, seconds: Math.round(s.minutes * 60) }));

/** The alarms of a gradual release that are in ALARM, or missing (a missing alarm cannot vouch for anything). */
async function unhealthy(alarms: AlarmMonitor, names: string[]): Promise<string[]> {
  if (!names.length) return [];
  const states = await alarms.states(names);
  return states.filter((s) => s.state === 'ALARM' || s.state === null).map((s) => `${s.name} (${s.state ?? 'missing'})`);
}

/** `2`, `1 with 10% on 3`, or `nothing` (no alias): an alias's routing, for messages. */
function routing(version: string | null, weights: Record<string, number>): string {
  if (version === null) return 'nothing (no alias)';
  const extra = Object.entries(weights).map(([v, w]) => `${Math.round(w * 10_000) / 100}% on ${v}`);
  return extra.length ? `${version} with ${extra.join(', ')}` : version;
}

/**
 * Where an earlier attempt of this very Release (the ASL retried it) left the alias:
 * all on the new version, or, with a gradual plan, the bound version sending the first
 * step's weight to it.
 */
function movedByThisRelease(current: AliasInfo, fn: PublishedFunctionVersion, bound: BoundAlias, first: TrafficStep | undefined): boolean {
  if (first && bound.version !== null && bound.version !== fn.version) {
    const weighted = Object.entries(current.weights);
    return current.version === bound.version && weighted.length === 1 && weighted[0]?.[0] === fn.version;
  }
  return current.version === fn.version && noWeights(current);
}

/**
 * Release: move each function's alias to its new version. With an approval that bound
 * what was live (`approval.live`), each alias moves only from exactly that: the revision
 * it had when the approver was asked is what the move compares against. An alias that
 * moved since (a rollback, another bake's release, a hand edit) fails the release with
 * AliasConflictError naming what changed, and nothing moves. Without a binding, the
 * revisions read here are compared against. If one move fails, the aliases already
 * moved are put back (or removed, where this release created them) before the error
 * goes on.
 *
 * With a gradual plan (`release.steps` in the spec) an alias that has a previous
 * version keeps it and sends the first step's weight to the new version; the state
 * machine then waits and runs {@link shiftTraffic} until `gradual.done`. An alias
 * created by this release has nothing to shift from and gets all traffic at once.
 */
export async function release(
  input: TaskInput<'Release'>,
  deps: { functions: FunctionRegistry; alarms: AlarmMonitor },
): Promise<ReleaseResult> {
  const plan = input.bake?.spec.release;
  const steps = plan ? trafficSteps(plan) : [];
  if (plan?.alarms.length) {
    // Checked before anything moves: a typo in an alarm name must not disable the guard.
    const states = await deps.alarms.states(plan.alarms);
    const missing = states.filter((s) => s.state === null).map((s) => s.name);
    if (missing.length) {
      throw new NotFoundError(`release.alarms names alarms that do not exist: ${missing.join(', ')}; nothing was released`, {
        hint: 'Create them (in AWS: CloudWatch alarms; locally: `bakery alarm set <name> OK`), or fix the names in the spec.',
      });
    }
    const firing = states.filter((s) => s.state === 'ALARM').map((s) => s.name);
    if (firing.length) {
      throw new CanaryAlarmError(`${firing.join(', ')} already in ALARM before any traffic moved; nothing was released`);
    }
  }

  // Everything is read and checked before the first move: a version (or function) gone
  // since validation, or an alias moved since the approval, fails the release with every
  // alias untouched.
  const plans: Array<{ fn: PublishedFunctionVersion; current: AliasInfo | undefined; done?: AliasInfo }> = [];
  const stale: string[] = [];
  for (const fn of input.versions.functions) {
    if (!(await deps.functions.getVersion(fn.name, fn.version))) {
      throw new NotFoundError(`${fn.name} has no version ${fn.version} any more (deleted since it was validated?); no alias was moved`);
    }
    const current = await deps.functions.getAlias(fn.name, fn.alias);
    const bound = input.approval?.live?.find((b) => b.name === fn.name && b.alias === fn.alias);
    if (!bound || (current?.revisionId ?? null) === bound.revisionId) {
      plans.push({ fn, current });
    } else if (current && movedByThisRelease(current, fn, bound, steps[0])) {
      // The move was made (a retried attempt): it is this release's, from what was bound.
      plans.push({ fn, current: { ...current, version: bound.version ?? current.version, weights: bound.weights }, done: current });
    } else {
      stale.push(
        `${fn.name}:${fn.alias} is on ${routing(current?.version ?? null, current?.weights ?? {})} since the approval, which was for ${routing(bound.version, bound.weights)} → ${fn.version}`,
      );
    }
  }
  if (stale.length) {
    throw new AliasConflictError(`${stale.join('; ')}; the approval went stale and nothing was released`, {
      hint: 'An approval covers moving what the approver saw live. Bake again to ask for approval of a move from what is live now.',
    });
  }

  const moves: AliasMove[] = [];
  const shifting: GradualRelease['functions'] = [];
  const undo: Array<{ name: string; alias: string; back: AliasInfo | null; revisionId: string }> = [];
  try {
    for (const { fn, current, done } of plans) {
      if (done) {
        const from = current?.version ?? null;
        const gradualFrom = steps[0] && from !== null && from !== fn.version ? from : null;
        if (gradualFrom !== null) {
          shifting.push({ name: fn.name, alias: fn.alias, from: gradualFrom, to: fn.version, revisionId: done.revisionId });
        }
        const back = from === null || !current ? null : { ...current, version: from };
        undo.push({ name: fn.name, alias: fn.alias, back, revisionId: done.revisionId });
        moves.push({ name: fn.name, alias: fn.alias, from, to: fn.version, changed: true });
        continue;
      }
      if (current?.version === fn.version && noWeights(current)) {
        moves.push({ name: fn.name, alias: fn.alias, from: current.version, to: fn.version, changed: false });
        continue;
      }
      const first = steps[0];
      let moved: AliasInfo;
      if (first && current && current.version !== fn.version) {
        moved = await deps.functions.setAlias(fn.name, fn.alias, current.version, current.revisionId, {
          [fn.version]: fractionOf(first.weight),
        });
        shifting.push({ name: fn.name, alias: fn.alias, from: current.version, to: fn.version, revisionId: moved.revisionId });
      } else {
        moved = await deps.functions.setAlias(fn.name, fn.alias, fn.version, current?.revisionId ?? null);
      }
      undo.push({ name: fn.name, alias: fn.alias, back: current ?? null, revisionId: moved.revisionId });
      moves.push({ name: fn.name, alias: fn.alias, from: current?.version ?? null, to: fn.version, changed: true });
    }
  } catch (error) {
    for (const step of undo.reverse()) {
      const put =
        step.back === null
          ? deps.functions.deleteAlias(step.name, step.alias, step.revisionId)
          : deps.functions.setAlias(step.name, step.alias, step.back.version, step.revisionId, step.back.weights);
      await put.catch(() => undefined);
    }
    throw error;
  }
  const gradual: GradualRelease | null =
    plan && shifting.length
      ? { step: 0, steps, alarms: plan.alarms, waitSeconds: steps[0]?.seconds ?? 0, done: false, functions: shifting }
      : null;
  return { functions: moves, gradual };
}

/**
 * ShiftTraffic, run by the state machine after each wait of a gradual release: check
 * the alarms; one in ALARM (or gone) moves every alias of the release back to its
 * previous version and fails with CanaryAlarmError. Otherwise move every alias to the
 * next step's weight, or after the last step all the way to the new version.
 *
 * Each move passes the revision of bakery's previous move (compare-and-swap). A
 * retried step skips the aliases it already moved, so the ASL may retry it; any other
 * failure goes to UndoRelease.
 */
export async function shiftTraffic(
  input: { release: ReleaseResult },
  deps: { functions: FunctionRegistry; alarms: AlarmMonitor },
): Promise<ReleaseResult> {
  const gradual = input.release.gradual;
  if (!gradual || gradual.done) return input.release;
  const weight = gradual.steps[gradual.step]?.weight ?? 0;

  const bad = await unhealthy(deps.alarms, gradual.alarms);
  if (bad.length) {
    const undone = await undoRelease({ release: input.release }, deps);
    const kept = undone.functions.filter((u) => u.skipped !== null);
    const back = kept.length
      ? `moved back except ${kept.map((u) => `${u.name}:${u.alias} (${u.skipped})`).join(', ')}`
      : `every alias is back on its previous version (${undone.functions.map((u) => `${u.name}:${u.alias} → ${u.restored ?? 'removed'}`).join(', ')})`;
    throw new CanaryAlarmError(
      `alarm ${bad.join(', ')} at ${weight}% on the new version (step ${gradual.step + 1}/${gradual.steps.length}): ${back}`,
      {
        hint: 'Find out why the alarm fired; the new versions stay published for a look, and nothing else was changed.',
      },
    );
  }

  const next = gradual.step + 1;
  const nextStep = gradual.steps[next];
  const functions: GradualRelease['functions'] = [];
  for (const f of gradual.functions) {
    const target = nextStep ? { version: f.from, weights: { [f.to]: fractionOf(nextStep.weight) } } : { version: f.to, weights: {} };
    const current = await deps.functions.getAlias(f.name, f.alias);
    if (current && current.revisionId !== f.revisionId && sameRouting(current, target)) {
      // Moved by an earlier attempt of this very step (the ASL retried it).
      functions.push({ ...f, revisionId: current.revisionId });
      continue;
    }
    const moved = await deps.functions.setAlias(f.name, f.alias, target.version, f.revisionId, target.weights);
    functions.push({ ...f, revisionId: moved.revisionId });
  }
  const done = nextStep === undefined;
  return {
    functions: input.release.functions,
    gradual: { ...gradual, step: next, waitSeconds: nextStep?.seconds ?? 0, done, functions },
  };
}

function sameRouting(alias: AliasInfo, target: { version: string; weights: Record<string, number> }): boolean {
  const a = Object.entries(alias.weights).sort();
  const b = Object.entries(target.weights).sort();
  return alias.version === target.version && JSON.stringify(a) === JSON.stringify(b);
}

/**
 * UndoRelease: a release happened (or a gradual one was under way) but cannot be
 * completed or recorded, so put every alias it moved back where it was, all traffic
 * on the previous version. Only states bakery itself produced are undone: the new
 * version live, or the previous one with a weight on the new one. An alias that
 * moved otherwise since is left alone, and said so.
 */
export async function undoRelease(input: { release: ReleaseResult }, deps: { functions: FunctionRegistry }): Promise<UndoResult> {
  const out: UndoneMove[] = [];
  for (const move of [...input.release.functions].reverse()) {
    if (!move.changed) continue;
    const done = (restored: string | null) => out.push({ name: move.name, alias: move.alias, restored, skipped: null });
    const current = await deps.functions.getAlias(move.name, move.alias);
    if (!current) {
      if (move.from === null) done(null);
      else out.push({ name: move.name, alias: move.alias, restored: null, skipped: 'the alias is gone' });
      continue;
    }
    const weighted = Object.keys(current.weights);
    if (current.version === move.from && weighted.length === 1 && weighted[0] === move.to) {
      await deps.functions.setAlias(move.name, move.alias, move.from, current.revisionId);
      done(move.from);
    } else if (current.version === move.to && weighted.length === 0) {
      if (move.from === null) await deps.functions.deleteAlias(move.name, move.alias, current.revisionId);
      else await deps.functions.setAlias(move.name, move.alias, move.from, current.revisionId);
      done(move.from);
    } else {
      const routing = weighted.length ? ` with ${weighted.map((v) => `${(current.weights[v] ?? 0) * 100}% on ${v}`).join(', ')}` : '';
      out.push({
        name: move.name,
        alias: move.alias,
        restored: null,
        skipped: `it is on ${current.version}${routing} now, not ${move.to}`,
      });
    }
  }
  return { functions: out.reverse() };
}
