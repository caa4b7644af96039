import { NotFoundError } from '../errors.ts';
import type { Ledger, LedgerEntry } from '../ports/storage.ts';

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
  if (name === undefined) return entries;
  const found = entries.filter((e) => concerns(e, name));
  if (found.length === 0) {
    const known = knownFunctions(entries);
    throw new NotFoundError(`no function ${JSON.stringify(name)} in the ledger: nobody baked it`, {
      hint: known.length ? `The ledger knows: ${known.join(', ')}.` : 'The ledger is empty; try: npm run demo',
    });
  }
  return found;
}

/** Every function a ledger entry names, sorted. */
export function knownFunctions(entries: LedgerEntry[]): string[] {
  const names = new Set<string>();
  for (const e of entries) {
    if (e.type === 'released') for (const m of e.functions) names.add(m.name);
    else if (e.type === 'rolledBack') names.add(e.name);
    else for (const n of e.functions ?? []) names.add(n);
  }
  return [...names].sort();
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
