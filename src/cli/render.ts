import type { ExecutionSummary } from '../local/journal.ts';

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
