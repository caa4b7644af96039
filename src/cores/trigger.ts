import { createHash } from 'node:crypto';
import type { Clock } from '../ports/system.ts';
import type { BakeStarter, SourceCatalog, SourceObject } from '../ports/triggers.ts';
import type { BakeRequest } from '../state.ts';

/**
 * Execution names are bake ids: at most 80 characters (Step Functions' limit) of
 * `[A-Za-z0-9_-]` (the bake id pattern, stricter than Step Functions').
 */
export const MAX_NAME_LENGTH = 80;
const HASH_LENGTH = 20;

const hash = (...parts: string[]): string =>
  createHash('sha256')
    .update(parts.map((p) => `${p.length}:${p}`).join('\0'))
    .digest('hex')
    .slice(0, HASH_LENGTH);

/** The readable end of a key: `bakes/team/hello.zip` → `bakes-team-hello`, at most `max` characters. */
export function keySlug(key: string, max: number): string {
  const slug = key
    .replace(/\.zip$/i, '')
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  // The end of the key (the file name) says the most; cut at a separator where possible.
  const tail = slug.length > max ? slug.slice(slug.length - max).replace(/^[^-]*-/, '') : slug;
  return tail || 'source';
}

/**
 * The execution name (and bake id) of the bake of one S3 object version: a readable
 * prefix and a hash of bucket, key and version. S3 delivers events at least once, so
 * the same object may ask twice; the second StartExecution with the same name then
 * finds the first execution instead of starting a bake of its own. Without a version
 * id (an unversioned bucket) the event's sequencer tells writes of the same key apart.
 */
export function s3BakeName(object: { bucket: string; key: string; versionId: string | null; sequencer?: string | null }): string {
  const versionId = objectVersionId(object.versionId);
  const version = versionId ?? `seq:${object.sequencer ?? ''}`;
  const digest = hash('s3', object.bucket, object.key, version);
  return `s3-${keySlug(object.key, MAX_NAME_LENGTH - 's3-'.length - 1 - HASH_LENGTH)}-${digest}`;
}

/**
 * S3 reports `"null"` as the version id of an object written while the bucket's
 * versioning was never enabled or is suspended: every such write replaces the same
 * "null" version, so it names no version at all and is treated as a missing one.
 */
export const objectVersionId = (versionId: string | null | undefined): string | null =>
  versionId === undefined || versionId === null || versionId === 'null' ? null : versionId;

/** `2026W47`: the ISO 8601 week (and its year) of a time, in UTC. */
export function isoWeek(at: Date): string {
  const day = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate()));
  // The Thursday of this week decides its year.
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}W${String(week).padStart(2, '0')}`;
}

/**
 * The execution name of the scheduled patch rebuild of one source object version in
 * one ISO week: the schedule firing twice (retries, at-least-once delivery) or more than
 * once a week starts each object's patch bake at most once that week.
 */
export function patchBakeName(object: SourceObject, week: string): string {
  const digest = hash('patch', object.bucket, object.key, object.versionId ?? 'null', week);
  const prefix = `patch-${week}-`;
  return `${prefix}${keySlug(object.key, MAX_NAME_LENGTH - prefix.length - 1 - HASH_LENGTH)}-${digest}`;
}

/** The S3 object an "Object Created" event is about. */
export interface ObjectCreated {
  bucket: string;
  key: string;
  versionId: string | null;
  sequencer: string | null;
}

export interface StartOutcome {
  bakeId: string;
  /** False when an execution of this name existed already: a duplicate, nothing started. */
  started: boolean;
  executionArn: string | null;
}

/**
 * The S3 trigger: start the bake of an uploaded source object under its deterministic
 * name. The input is the same for every delivery of the event (no timestamps), so a
 * duplicate start is recognised as the same execution, not as a second bake.
 */
export async function startS3Bake(object: ObjectCreated, deps: { starter: BakeStarter }): Promise<StartOutcome> {
  const bakeId = s3BakeName(object);
  const location = { type: 's3' as const, bucket: object.bucket, key: object.key, versionId: objectVersionId(object.versionId) };
  const request: BakeRequest = { bakeId, source: location, trigger: location };
  const { started, executionArn } = await deps.starter.start(bakeId, request);
  return { bakeId, started, executionArn };
}

/** One firing of the patch-rebuild schedule. */
export interface ScheduleFiring {
  /** The schedule that fired (EventBridge Scheduler's `<aws.scheduler.schedule-arn>`); null when run by hand. */
  scheduleArn: string | null;
  /** When it was due (`<aws.scheduler.scheduled-time>`): the same for every retry of the firing. */
  scheduledTime: string | null;
}

export interface RebakeOutcome {
  week: string;
  sources: number;
  bakes: Array<StartOutcome & { key: string; versionId: string | null }>;
}

/**
 * The scheduled patch rebuild: start a bake of the current version of every bake source
 * in the source bucket, triggered as `schedule`. ResolveBake then moves the recipe's pins
 * to the newest patch and ends the bake as "up to date" when nothing changed. One source
 * failing to start does not stop the others; after all were tried its error (or an
 * AggregateError of several) is thrown, so the invocation counts as failed and is retried
 * (the ones that started are then duplicates, which start nothing).
 */
export async function scheduledRebake(
  firing: ScheduleFiring,
  config: { bucket: string; prefix: string },
  deps: { catalog: SourceCatalog; starter: BakeStarter; clock: Clock },
): Promise<RebakeOutcome> {
  const due = firing.scheduledTime ? new Date(firing.scheduledTime) : deps.clock.now();
  const week = isoWeek(Number.isNaN(due.getTime()) ? deps.clock.now() : due);
  const sources = (await deps.catalog.latest(config.bucket, config.prefix)).sort((a, b) => a.key.localeCompare(b.key));
  const bakes: RebakeOutcome['bakes'] = [];
  const errors: unknown[] = [];
  for (const object of sources) {
    const bakeId = patchBakeName(object, week);
    const location = { type: 's3' as const, bucket: object.bucket, key: object.key, versionId: object.versionId };
    try {
      const { started, executionArn } = await deps.starter.start(bakeId, {
        bakeId,
        source: location,
        trigger: { type: 'schedule', scheduleArn: firing.scheduleArn },
      });
      bakes.push({ bakeId, started, executionArn, key: object.key, versionId: object.versionId });
    } catch (error) {
      errors.push(error);
    }
  }
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new AggregateError(errors, `${errors.length} of ${sources.length} patch bakes could not be started`);
  return { week, sources: sources.length, bakes };
}
