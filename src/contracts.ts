import { z } from 'zod';
import { BakeSpecError } from './errors.ts';
import type { BakeRequest } from './ports.ts';

/**
 * Schemas of what enters a Lambda from outside bakery's own code: the execution
 * input (from the CLI, an S3 event rule or the schedule). Payloads between states are
 * produced by bakery's typed cores and pass through the ASL unchanged; for those the
 * handlers check only that the keys the ASL promises are present.
 */
const TriggerSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('cli'), user: z.string() }).strict(),
  z.object({ type: z.literal('s3'), bucket: z.string().min(1), key: z.string().min(1), versionId: z.string().nullable() }).strict(),
  z.object({ type: z.literal('schedule'), scheduleArn: z.string().nullable() }).strict(),
]);

export const BakeRequestSchema = z
  .object({
    bakeId: z.string().optional(),
    source: z.discriminatedUnion('type', [
      z.object({ type: z.literal('file'), path: z.string().min(1) }).strict(),
      z.object({ type: z.literal('s3'), bucket: z.string().min(1), key: z.string().min(1), versionId: z.string().nullable() }).strict(),
    ]),
    trigger: TriggerSchema,
    options: z.object({ rebuild: z.boolean().optional() }).strict().optional(),
  })
  .strict();

export function parseBakeRequest(payload: unknown): BakeRequest {
  const parsed = BakeRequestSchema.safeParse(payload);
  if (!parsed.success) throw new BakeSpecError(`invalid bake request:\n${z.prettifyError(parsed.error)}`);
  return parsed.data as BakeRequest;
}

/** Check that an internal state payload carries the keys the ASL passes. */
export function requireKeys<T>(payload: unknown, keys: readonly string[], task: string): T {
  if (payload === null || typeof payload !== 'object') throw new TypeError(`${task}: payload is not an object`);
  const missing = keys.filter((k) => !(k in payload));
  if (missing.length) throw new TypeError(`${task}: payload lacks ${missing.join(', ')}`);
  return payload as T;
}
