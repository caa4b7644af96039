import { z } from 'zod';
import { StateDamagedError } from '../errors.ts';
import type { LedgerEntry } from './storage.ts';

/**
 * The fields of a ledger entry that the commands read (status, history, drift, prune,
 * rollback, verify). Checked when the ledger is read, so an entry changed by hand is a
 * named error that names where it is, not a TypeError deep in a command. Extra fields
 * are kept: entries written by newer versions still read.
 */
const ref = z.looseObject({ uri: z.string(), sha256Hex: z.string(), size: z.number() });
const move = z.looseObject({ name: z.string(), alias: z.string(), from: z.string().nullable(), to: z.string(), changed: z.boolean() });

export const LedgerEntrySchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('released'),
    bakeId: z.string(),
    at: z.string(),
    layer: z.looseObject({ arn: z.string(), version: z.number(), codeSha256: z.string() }),
    functions: z.array(move),
    manifest: ref,
  }),
  z.looseObject({
    type: z.literal('failed'),
    bakeId: z.string().nullable(),
    at: z.string(),
    state: z.string(),
    error: z.string(),
    cause: z.string(),
    manifest: ref.nullable(),
    functions: z.array(z.string()).optional(),
  }),
  z.looseObject({
    type: z.literal('rolledBack'),
    bakeId: z.string().nullable(),
    at: z.string(),
    by: z.string(),
    name: z.string(),
    alias: z.string(),
    from: z.string(),
    to: z.string(),
    fromWeights: z.record(z.string(), z.number()),
  }),
]);

/** `value` as a ledger entry; a StateDamagedError naming `where` (a file and line, a table item) when it is not one. */
export function parseLedgerEntry(value: unknown, where: string, hint: string): LedgerEntry {
  const parsed = LedgerEntrySchema.safeParse(value);
  if (parsed.success) return parsed.data as LedgerEntry;
  const problems = parsed.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(entry)'}: ${i.message}`).join('; ');
  throw new StateDamagedError(`${where} is not a ledger entry bakery wrote (${problems})`, { hint });
}
