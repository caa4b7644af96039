import type { Ledger, LedgerEntry } from '../ports.ts';

/** Whether a ledger entry concerns the function `name` (failed entries name the functions of their spec). */
export function concerns(entry: LedgerEntry, name: string): boolean {
  switch (entry.type) {
    case 'released':
      return entry.functions.some((m) => m.name === name);
    case 'rolledBack':
      return entry.name === name;
    case 'failed':
      return entry.functions?.includes(name) ?? false;
  }
}

/** `bakery history`: the ledger oldest first, as it was appended; only the entries of one function when named. */
export async function history(input: { name?: string }, deps: { ledger: Ledger }): Promise<LedgerEntry[]> {
  const entries = await deps.ledger.list();
  const { name } = input;
  return name === undefined ? entries : entries.filter((e) => concerns(e, name));
}

/** One line of `bakery history`. */
export function describeEntry(entry: LedgerEntry): string {
  switch (entry.type) {
    case 'released': {
      const moves = entry.functions
        .map((m) => `${m.name}:${m.alias} ${m.from ?? '(none)'} → ${m.to}${m.changed ? '' : ' (unchanged)'}`)
        .join(', ');
      return `${entry.at}  released     ${entry.bakeId}  ${moves}  layer ${entry.layer.arn}`;
    }
    case 'rolledBack':
      return `${entry.at}  rolled back  ${entry.bakeId ?? '-'}  ${entry.name}:${entry.alias} ${entry.from} → ${entry.to} by ${entry.by}`;
    case 'failed':
      return `${entry.at}  failed       ${entry.bakeId ?? '(unresolved)'}  in ${entry.state}: ${entry.error}: ${entry.cause.split('\n')[0] ?? ''}`;
  }
}
