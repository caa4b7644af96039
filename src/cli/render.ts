import type { FunctionStatus } from '../cores/status.ts';
import type { ExecutionSummary } from '../local/journal.ts';
import type { RunnerEvent, RunOutcome, UpToDateOutcome } from '../local/runner.ts';
import type { StepEvent } from '../recipes/toe.ts';
import type { BakeState } from '../state.ts';

/**
 * What the terminal shows of a bake: the runner emits events, this renders them (and
 * the CLI's other tables). One place for every line a user reads.
 */

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** The detail after a state's ✓ line: what it produced. */

export function stateDetail(state: string, output: BakeState): string {
  switch (state) {
    case 'ResolveBake': {
      const bake = output.bake;
      if (!bake) return '';
      const patched = (bake.patched ?? []).map((p) => `${p.field} ${p.from ?? '(none)'} → ${p.to}`);
      return [
        `bake ${bake.bakeId}, recipe ${bake.recipe.name}, ${bake.functions.length} function(s)`,
        ...(patched.length ? [`newest patch: ${patched.join(', ')}`] : []),
        ...(bake.upToDate
          ? [`up to date: same bake key, code and configuration as the live release of ${(bake.upToDateWith ?? []).join(', ')}`]
          : []),
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

/** `3 s`, `4 min`, `2 h 5 min`, `3 d 4 h`: how long ago, for a terminal. */
export function age(since: string, now: Date): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(since)) / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** The lines of `bakery executions`: one per execution, and how to go on with an interrupted one. */
export function renderExecutions(executions: ExecutionSummary[], now: Date): string[] {
  if (executions.length === 0) return ['no local executions yet'];
  const rows = executions.map((e) => [e.bakeId, e.status, e.state ?? '-', age(e.startedAt, now), e.spec]);
  const header = ['BAKE', 'STATUS', 'STATE', 'AGE', 'SPEC'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const lines = [format(header), ...rows.map(format)];
  const interrupted = executions.filter((e) => e.status === 'interrupted');
  if (interrupted.length) lines.push('', `resume an interrupted bake with: bakery resume ${interrupted[0]?.bakeId}`);
  return lines;
}

/** One progress line for a runner event (undefined: nothing to show). */
export function renderRunnerEvent(event: RunnerEvent): string | undefined {
  switch (event.type) {
    case 'entered':
      return event.stateType === 'Task' ? `▸ ${event.state}` : undefined;
    case 'succeeded': {
      // A state output that breaks the contract fails at the next task's parse, not here.
      const info = (() => {
        try {
          return stateDetail(event.state, event.output);
        } catch {
          return '';
        }
      })();
      return `✓ ${event.state} (${seconds(event.durationMs)})${info ? `  ${info}` : ''}`;
    }
    case 'failed':
      return `✗ ${event.state} (${seconds(event.durationMs)})  ${event.error}: ${event.cause.split('\n')[0]}`;
    case 'retried':
      return `↻ ${event.state}: retry ${event.attempt}`;
    case 'paused':
      return `(test) paused at ${event.point}`;
  }
}

/** An `onEvent` for the runner that writes each rendered line. */
export const renderTo =
  (write: (line: string) => void) =>
  (event: RunnerEvent): void => {
    const text = renderRunnerEvent(event);
    if (text !== undefined) write(text);
  };

/** A build step of a bake, under its BuildImage line (undefined for a step that only started). */
export function renderBakeStep(e: StepEvent): string | undefined {
  if (e.status === 'started') return undefined;
  return `    ${e.status === 'succeeded' ? '·' : '!'} ${e.phase} › ${e.step} ${e.status} (${seconds(e.durationMs ?? 0)})`;
}

/** A build step of `bakery build`. */
export function renderBuildStep(e: StepEvent): string | undefined {
  const at = `${e.phase} › ${e.step} (${e.action})`;
  if (e.status === 'retrying') return `  ↻ ${at} attempt ${e.attempt}/${e.maxAttempts}`;
  if (e.status === 'succeeded') return `  · ${at} ${seconds(e.durationMs ?? 0)}`;
  if (e.status === 'ignored') return `  ! ${at} failed, ignored (onFailure: Ignore) ${seconds(e.durationMs ?? 0)}`;
  if (e.status === 'failed') return `  ✗ ${at} failed after ${seconds(e.durationMs ?? 0)}`;
  return undefined;
}

/** The end of `bake` and `resume`: lines for stdout, and for stderr when the bake failed. */
export function renderOutcome(outcome: RunOutcome | UpToDateOutcome, bakeId: string): { out: string[]; err: string[] } {
  if (outcome.status === 'failed') {
    return {
      out: [],
      err: [
        `bake ${outcome.bakeId ?? bakeId} failed in ${outcome.state}: ${outcome.error}`,
        outcome.cause,
        'nothing was released: every alias is where it was.',
      ],
    };
  }
  if (outcome.status === 'upToDate') {
    const { functions, upToDateWith } = outcome.output.bake;
    const names = functions.map((f) => `${f.name}:${f.alias}`);
    return {
      out: [
        `up to date: ${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} already ${upToDateWith.join(', ')} (same runtime, code and configuration)`,
        `  nothing was built, published, asked or recorded for bake ${outcome.bakeId}; \`bakery bake --force\` bakes anyway`,
      ],
      err: [],
    };
  }
  const { layer, release, record } = outcome.output;
  const out = [`bake ${outcome.bakeId} released`];
  if (layer) {
    out.push(`  layer     ${layer.arn} (${layer.reused ? 'reused: same bytes as before' : 'new version'})`);
    out.push(`  sha256    ${layer.sha256Hex}`);
  }
  for (const move of release?.functions ?? []) {
    out.push(
      `  ${move.name.padEnd(9)} version ${move.to}; alias ${move.alias} → ${move.to}${move.changed ? ` (was ${move.from ?? 'unset'})` : ' (unchanged)'}`,
    );
  }
  out.push(`  manifest  ${record.manifest.uri}`);
  return { out, err: [] };
}

/** `bakery status` without --json. */
export function renderStatus(result: { functions: FunctionStatus[] }): string[] {
  if (result.functions.length === 0) return ['nothing released yet; try: npm run demo'];
  return result.functions.flatMap((f) => [
    `${f.name}:${f.alias} → version ${f.version ?? '(alias missing)'}`,
    `  layer   ${f.layer ? `${f.layer.arn}\n          sha256 ${f.layer.sha256 ?? '?'}` : '(none)'}`,
    `  bake    ${f.bakeId ?? '(not released by bakery)'}${f.releasedAt ? ` at ${f.releasedAt}` : ''}`,
  ]);
}
