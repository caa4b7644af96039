import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import type { BakeStarter, SourceCatalog } from '../../src/ports/triggers.ts';
import { deployedSchedules, lastDue, parseSchedule, Scheduler } from '../../src/serve/schedule.ts';
import type { BakeRequest } from '../../src/state.ts';
import { FakeClock } from '../helpers/memory.ts';

describe('parseSchedule (the deployed patchRebuildSchedule format)', () => {
  it('reads rate() in each unit, singular for 1, and AWS six-field cron()', () => {
    expect(parseSchedule('rate(1 minute)')).toMatchObject({ kind: 'rate', ms: 60_000 });
    expect(parseSchedule('rate(7 days)')).toMatchObject({ kind: 'rate', ms: 7 * 86_400_000 });
    expect(parseSchedule('rate(2 hours)')).toMatchObject({ kind: 'rate', ms: 7_200_000 });
    const cron = parseSchedule('cron(0 3 ? * MON *)');
    expect(lastDue(cron, new Date('2026-12-02T10:00:00Z'))?.toISOString()).toBe('2026-11-30T03:00:00.000Z');
    expect(lastDue(cron, new Date('2026-11-30T03:00:00Z'))?.toISOString()).toBe('2026-11-30T03:00:00.000Z');
    expect(lastDue(parseSchedule('cron(0/15 * * * ? *)'), new Date('2026-12-02T10:17:30Z'))?.toISOString()).toBe(
      '2026-12-02T10:15:00.000Z',
    );
  });

  it.each([
    'rate(1 minutes)',
    'rate(5 minute)',
    'rate(0 days)',
    'cron(0 3 * * *)',
    'cron(0 3 1 * MON *)',
    'every day',
    'cron(x y ? * * *)',
  ])('refuses %s with InputError', (expression) => {
    expect(() => parseSchedule(expression)).toThrow(InputError);
  });

  it("defaults to serverless.yml's expressions", () => {
    expect(deployedSchedules(PROJECT_ROOT)).toEqual({ 'patch-rebuild': 'rate(7 days)', 'drift-check': 'rate(1 hour)' });
  });
});

describe('Scheduler', () => {
  let dir: string;
  const starts: Array<{ name: string; request: BakeRequest }> = [];
  const starter: BakeStarter = {
    start: async (name, request) => {
      starts.push({ name, request });
      return { started: true, executionArn: `local:execution:${name}` };
    },
  };
  const catalog: SourceCatalog = { latest: async (bucket) => [{ bucket, key: 'bakes/hello.zip', versionId: 'v1' }] };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-schedule-'));
    starts.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const scheduler = (clock: FakeClock) =>
    new Scheduler({
      file: path.join(dir, 'schedule.json'),
      settings: { 'patch-rebuild': 'rate(1 minute)' },
      source: { bucket: 'bakery-source', prefix: 'bakes/' },
      deps: { catalog, starter, clock, drift: {} as never },
    });

  it('fires rate(1 minute) once per period, from the period after the first start; a restart in between fires nothing again', async () => {
    // Prepare
    const clock = new FakeClock('2026-12-01T10:00:30.000Z');
    const first = scheduler(clock);

    // Act + Assess: the period under way at the first start is not fired.
    await first.tick();
    expect(starts).toHaveLength(0);
    clock.advance(40_000); // 10:01:10
    await first.tick();
    clock.advance(30_000); // 10:01:40, same period
    await first.tick();
    expect(starts.map((s) => s.request.trigger)).toEqual([{ type: 'schedule', scheduleArn: expect.stringContaining('patch-rebuild') }]);

    // A restart within the same period: a new scheduler on the same state fires nothing.
    clock.advance(10_000); // 10:01:50
    const second = scheduler(clock);
    await second.tick();
    expect(starts).toHaveLength(1);

    // The next period fires once more.
    clock.advance(20_000); // 10:02:10
    await second.tick();
    await second.tick();
    expect(starts).toHaveLength(2);
    expect(starts.every((s) => s.request.source.type === 's3' && s.request.source.versionId === 'v1')).toBe(true);
  });

  it('fires a period missed while stopped once, not once per missed period', async () => {
    const clock = new FakeClock('2026-12-01T10:00:30.000Z');
    await scheduler(clock).tick();
    clock.advance(10 * 60_000);
    const later = scheduler(clock);
    await later.tick();
    await later.tick();
    expect(starts).toHaveLength(1);
  });
});
