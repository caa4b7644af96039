import { describe, expect, it } from 'vitest';
import { isoWeek, keySlug, MAX_NAME_LENGTH, patchBakeName, s3BakeName, scheduledRebake, startS3Bake } from '../../src/cores/trigger.ts';
import type { BakeStarter, SourceCatalog, SourceObject } from '../../src/ports/triggers.ts';
import type { BakeRequest } from '../../src/state.ts';
import { FakeClock } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

const BAKE_ID = /^[A-Za-z0-9_-]{1,80}$/;

/** Step Functions as far as names go: a name starts one execution, ever. */
class NamedExecutions implements BakeStarter {
  readonly started = new Map<string, BakeRequest>();
  readonly calls: string[] = [];
  readonly failFor = new Set<string>();

  async start(name: string, request: BakeRequest) {
    this.calls.push(name);
    if (this.failFor.has(name)) throw new Error(`cannot start ${name}`);
    if (this.started.has(name)) return { started: false, executionArn: `arn:aws:states:eu-west-1:123456789012:execution:bake:${name}` };
    this.started.set(name, structuredClone(request));
    return { started: true, executionArn: `arn:aws:states:eu-west-1:123456789012:execution:bake:${name}` };
  }
}

const catalogOf = (objects: SourceObject[]): SourceCatalog => ({ latest: async () => structuredClone(objects) });

describe('s3BakeName', () => {
  const object = { bucket: 'bakery-dev-sourcebucket-1a2b3c', key: 'bakes/hello.zip', versionId: '3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH' };

  it('is the same for every delivery of the same object version, readable, and a valid bake id', () => {
    // Act
    const first = s3BakeName(object);
    const again = s3BakeName({ ...object });

    // Assess
    expect(first).toBe(again);
    expect(first).toMatch(/^s3-bakes-hello-[0-9a-f]{20}$/);
    expect(first).toMatch(BAKE_ID);
  });

  it('differs for another version, key or bucket', () => {
    const names = new Set([
      s3BakeName(object),
      s3BakeName({ ...object, versionId: 'another.version' }),
      s3BakeName({ ...object, key: 'bakes/hello2.zip' }),
      s3BakeName({ ...object, bucket: 'other-bucket' }),
    ]);
    expect(names.size).toBe(4);
  });

  it('tells unversioned writes of the same key apart by their sequencer', () => {
    const a = s3BakeName({ ...object, versionId: null, sequencer: '00617F08299329D189' });
    const b = s3BakeName({ ...object, versionId: null, sequencer: '00617F08299329D190' });
    expect(a).not.toBe(b);
    expect(a).toMatch(BAKE_ID);
  });

  it('treats version id "null" (versioning suspended) as no version: two uploads of the key are two names', () => {
    // S3 reports "null" for every write into a bucket whose versioning is suspended.
    const first = s3BakeName({ ...object, versionId: 'null', sequencer: '00617F08299329D189' });
    const second = s3BakeName({ ...object, versionId: 'null', sequencer: '00617F08299329D190' });
    expect(first).not.toBe(second);
    expect(first).toBe(s3BakeName({ ...object, versionId: null, sequencer: '00617F08299329D189' }));
  });

  it('stays within 80 characters of the bake id alphabet for long and unusual keys, keeping the file name', () => {
    const long = `bakes/${'team-a/'.repeat(20)}my service (v2)+ünïcode.zip`;
    const name = s3BakeName({ ...object, key: long });
    expect(name.length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
    expect(name).toMatch(BAKE_ID);
    expect(name).toContain('my-service-v2');
    expect(s3BakeName({ ...object, key: 'bakes/.zip' })).toMatch(BAKE_ID);
  });
});

describe('keySlug', () => {
  it('drops .zip and separators, and cuts long keys at a separator from the end', () => {
    expect(keySlug('bakes/team/hello.zip', 40)).toBe('bakes-team-hello');
    expect(keySlug('bakes/aaaa/bbbb/hello.zip', 12)).toBe('bbbb-hello');
    expect(keySlug('///', 10)).toBe('source');
  });
});

describe('isoWeek', () => {
  it.each([
    ['2026-11-22T07:30:00Z', '2026W47'],
    ['2026-11-23T00:00:00Z', '2026W48'],
    ['2027-01-01T12:00:00Z', '2026W53'],
    ['2027-01-04T00:00:00Z', '2027W01'],
    ['2024-12-30T00:00:00Z', '2025W01'],
    ['2021-01-03T23:59:59Z', '2020W53'],
  ])('puts %s in %s', (at, week) => {
    expect(isoWeek(new Date(at))).toBe(week);
  });
});

describe('patchBakeName', () => {
  const object = { bucket: 'src', key: 'bakes/hello.zip', versionId: 'v1' };

  it('is one name per object version and week', () => {
    expect(patchBakeName(object, '2026W47')).toBe(patchBakeName({ ...object }, '2026W47'));
    expect(patchBakeName(object, '2026W47')).not.toBe(patchBakeName(object, '2026W48'));
    expect(patchBakeName(object, '2026W47')).not.toBe(patchBakeName({ ...object, versionId: 'v2' }, '2026W47'));
    expect(patchBakeName(object, '2026W47')).toMatch(/^patch-2026W47-bakes-hello-[0-9a-f]{20}$/);
    expect(patchBakeName({ ...object, key: `bakes/${'x'.repeat(200)}.zip` }, '2026W47').length).toBeLessThanOrEqual(80);
  });
});

describe('startS3Bake', () => {
  const created = { bucket: 'src', key: 'bakes/hello.zip', versionId: 'v1', sequencer: '00617F08299329D189' };

  it('starts the bake of the object version under its name, as an s3-triggered bake of that version', async () => {
    // Prepare
    const executions = new NamedExecutions();

    // Act
    const outcome = await startS3Bake(created, { starter: executions });

    // Assess
    const location = { type: 's3', bucket: 'src', key: 'bakes/hello.zip', versionId: 'v1' };
    expect(outcome).toMatchObject({ bakeId: s3BakeName(created), started: true });
    expect(executions.started.get(outcome.bakeId)).toEqual({ bakeId: outcome.bakeId, source: location, trigger: location });
  });

  it('starts one bake when the same event is delivered twice', async () => {
    // Prepare
    const executions = new NamedExecutions();

    // Act
    const first = await startS3Bake(created, { starter: executions });
    const duplicate = await startS3Bake({ ...created }, { starter: executions });

    // Assess
    expect(first.started).toBe(true);
    expect(duplicate).toEqual({ ...first, started: false });
    expect(executions.calls).toEqual([first.bakeId, first.bakeId]);
    expect(executions.started.size).toBe(1);
  });
});

describe('startS3Bake into a bucket with versioning suspended', () => {
  it('starts two bakes for two uploads of the same key, reading the current object (no version "null")', async () => {
    // Prepare
    const executions = new NamedExecutions();
    const upload = { bucket: 'src', key: 'bakes/hello.zip', versionId: 'null' };

    // Act
    const first = await startS3Bake({ ...upload, sequencer: '00617F08299329D189' }, { starter: executions });
    const second = await startS3Bake({ ...upload, sequencer: '00617F08299329D1A0' }, { starter: executions });
    const duplicate = await startS3Bake({ ...upload, sequencer: '00617F08299329D1A0' }, { starter: executions });

    // Assess
    expect([first.started, second.started, duplicate.started]).toEqual([true, true, false]);
    expect(executions.started.size).toBe(2);
    const location = { type: 's3', bucket: 'src', key: 'bakes/hello.zip', versionId: null };
    expect(executions.started.get(second.bakeId)).toEqual({ bakeId: second.bakeId, source: location, trigger: location });
  });
});

describe('scheduledRebake', () => {
  const sources: SourceObject[] = [
    { bucket: 'src', key: 'bakes/zeta.zip', versionId: 'z1' },
    { bucket: 'src', key: 'bakes/alpha.zip', versionId: 'a3' },
  ];
  const firing = { scheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild', scheduledTime: null };

  it('starts a schedule-triggered bake of the current version of every source, named per version and week', async () => {
    // Prepare
    const executions = new NamedExecutions();
    const clock = new FakeClock('2026-11-22T06:00:00Z');

    // Act
    const outcome = await scheduledRebake(
      firing,
      { bucket: 'src', prefix: 'bakes/' },
      { catalog: catalogOf(sources), starter: executions, clock },
    );

    // Assess
    expect(outcome.week).toBe('2026W47');
    expect(outcome.sources).toBe(2);
    expect(outcome.bakes.map((b) => [b.key, b.started])).toEqual([
      ['bakes/alpha.zip', true],
      ['bakes/zeta.zip', true],
    ]);
    const alpha = outcome.bakes[0]?.bakeId as string;
    expect(alpha).toBe(patchBakeName({ bucket: 'src', key: 'bakes/alpha.zip', versionId: 'a3' }, '2026W47'));
    expect(executions.started.get(alpha)).toEqual({
      bakeId: alpha,
      source: { type: 's3', bucket: 'src', key: 'bakes/alpha.zip', versionId: 'a3' },
      trigger: { type: 'schedule', scheduleArn: firing.scheduleArn },
    });
  });

  it('starts nothing twice in a week (a retried firing), and again the next week; the due time decides the week', async () => {
    // Prepare
    const executions = new NamedExecutions();
    const deps = { catalog: catalogOf(sources), starter: executions, clock: new FakeClock('2026-11-30T00:00:00Z') };
    const config = { bucket: 'src', prefix: 'bakes/' };

    // Act
    const first = await scheduledRebake({ ...firing, scheduledTime: '2026-11-22T06:00:00Z' }, config, deps);
    const retried = await scheduledRebake({ ...firing, scheduledTime: '2026-11-22T06:00:00Z' }, config, deps);
    const nextWeek = await scheduledRebake({ ...firing, scheduledTime: '2026-11-29T06:00:00+00:00' }, config, deps);

    // Assess
    expect(first.bakes.every((b) => b.started)).toBe(true);
    expect(retried.bakes.every((b) => !b.started)).toBe(true);
    expect(retried.bakes.map((b) => b.bakeId)).toEqual(first.bakes.map((b) => b.bakeId));
    expect(nextWeek.week).toBe('2026W48');
    expect(nextWeek.bakes.every((b) => b.started)).toBe(true);
    expect(executions.started.size).toBe(4);
  });

  it('tries every source when one cannot be started, then fails with that error', async () => {
    // Prepare
    const executions = new NamedExecutions();
    executions.failFor.add(patchBakeName({ bucket: 'src', key: 'bakes/alpha.zip', versionId: 'a3' }, '2026W47'));
    const deps = { catalog: catalogOf(sources), starter: executions, clock: new FakeClock('2026-11-22T06:00:00Z') };

    // Act
    const error = await rejection(scheduledRebake(firing, { bucket: 'src', prefix: 'bakes/' }, deps));

    // Assess
    expect(error.message).toContain('cannot start');
    expect(executions.calls).toHaveLength(2);
    expect([...executions.started.keys()]).toEqual([patchBakeName(sources[0] as SourceObject, '2026W47')]);
  });

  it('fails with every error when several sources cannot be started', async () => {
    const executions = new NamedExecutions();
    for (const object of sources) executions.failFor.add(patchBakeName(object, '2026W47'));
    const deps = { catalog: catalogOf(sources), starter: executions, clock: new FakeClock('2026-11-22T06:00:00Z') };
    const error = await rejection(scheduledRebake(firing, { bucket: 'src', prefix: 'bakes/' }, deps));
    expect(error).toBeInstanceOf(AggregateError);
    expect(error.message).toBe('2 of 2 patch bakes could not be started');
    expect((error as AggregateError).errors).toHaveLength(2);
  });

  it('does nothing when there are no sources', async () => {
    const executions = new NamedExecutions();
    const outcome = await scheduledRebake(
      firing,
      { bucket: 'src', prefix: 'bakes/' },
      { catalog: catalogOf([]), starter: executions, clock: new FakeClock() },
    );
    expect(outcome).toEqual({ week: '2026W47', sources: 0, bakes: [] });
  });
});
