import { describe, expect, it } from 'vitest';
import { release, shiftTraffic, undoRelease } from '../../src/cores/release.ts';
import { AliasConflictError, CanaryAlarmError, NotFoundError } from '../../src/errors.ts';
import type { FunctionVersionInfo } from '../../src/ports/lambda.ts';
import { parseSpec } from '../../src/spec.ts';
import type { AliasMove, ReleaseResult, ResolvedBake } from '../../src/state.ts';
import { publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import { MemoryAlarms, MemoryFunctionRegistry } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

/** A registry in which every version exists but those listed in `missing` (aliases are what these tests are about). */
class Registry extends MemoryFunctionRegistry {
  readonly missing = new Set<string>();

  override async getVersion(name: string, version: string): Promise<FunctionVersionInfo | undefined> {
    if (this.missing.has(`${name}:${version}`)) return undefined;
    return {
      name,
      version,
      codeSha256: `code-${name}-b64`,
      handler: 'index.handler',
      runtime: 'provided.al2023',
      layers: [],
      environment: {},
    };
  }
}

/** The ports Release and ShiftTraffic use; no alarms unless given. */
function world(alarms: MemoryAlarms = new MemoryAlarms()) {
  return { functions: new Registry(), alarms };
}

/** A bake whose spec asks for a gradual release. */
function gradualBake(release: { steps: Array<{ weight: number; minutes: number }>; alarms?: string[] }): ResolvedBake {
  const bake = resolvedBake();
  bake.spec = parseSpec({ ...bake.spec, release }, 'test');
  return bake;
}

describe('release', () => {
  it('moves the alias passing the revision it read, so a concurrent change would fail', async () => {
    // Prepare
    const functions = new Registry();
    const before = functions.seedAlias('hello', 'live', '1');

    // Act
    const result = await release({ versions: publishedVersions(['hello', '2']) }, { functions, alarms: new MemoryAlarms() });

    // Assess
    expect(functions.setAliasCalls).toEqual([
      { name: 'hello', alias: 'live', version: '2', expectedRevisionId: before.revisionId, weights: {} },
    ]);
    expect(result).toEqual({ functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null });
    expect((await functions.getAlias('hello', 'live'))?.version).toBe('2');
  });

  it('creates a missing alias with a null expected revision', async () => {
    // Prepare
    const functions = new Registry();

    // Act
    const result = await release({ versions: publishedVersions(['hello', '1']) }, { functions, alarms: new MemoryAlarms() });

    // Assess
    expect(functions.setAliasCalls).toEqual([{ name: 'hello', alias: 'live', version: '1', expectedRevisionId: null, weights: {} }]);
    expect(result.functions).toEqual([{ name: 'hello', alias: 'live', from: null, to: '1', changed: true }]);
  });

  it('leaves an alias that already points at the version alone', async () => {
    // Prepare
    const functions = new Registry();
    const before = functions.seedAlias('hello', 'live', '2');

    // Act
    const result = await release({ versions: publishedVersions(['hello', '2']) }, { functions, alarms: new MemoryAlarms() });

    // Assess
    expect(functions.setAliasCalls).toEqual([]);
    expect(result.functions).toEqual([{ name: 'hello', alias: 'live', from: '2', to: '2', changed: false }]);
    expect(await functions.getAlias('hello', 'live')).toEqual(before);
  });

  it('fails with AliasConflictError when the alias moved after it was read', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('hello', 'live', '1');
    functions.beforeSetAlias = () => {
      functions.beforeSetAlias = undefined;
      functions.seedAlias('hello', 'live', '5'); // someone else released meanwhile
    };

    // Act
    const error = await rejection(release({ versions: publishedVersions(['hello', '2']) }, { functions, alarms: new MemoryAlarms() }));

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect((await functions.getAlias('hello', 'live'))?.version).toBe('5');
  });

  it('moves the first function back when the second one fails, then rethrows', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('first', 'live', '1');
    functions.seedAlias('second', 'live', '4');
    const conflict = new AliasConflictError('second moved');
    functions.beforeSetAlias = (name) => {
      if (name === 'second') throw conflict;
    };

    // Act
    const error = await rejection(
      release({ versions: publishedVersions(['first', '2'], ['second', '5']) }, { functions, alarms: new MemoryAlarms() }),
    );

    // Assess
    expect(error).toBe(conflict);
    expect((await functions.getAlias('first', 'live'))?.version).toBe('1');
    expect((await functions.getAlias('second', 'live'))?.version).toBe('4');
    const [forward, failedMove, back] = functions.setAliasCalls;
    expect(forward).toMatchObject({ name: 'first', version: '2' });
    expect(failedMove).toMatchObject({ name: 'second', version: '5' });
    // The move back is itself a compare-and-swap on the revision our own move produced.
    expect(back).toMatchObject({ name: 'first', version: '1' });
    expect(back?.expectedRevisionId).not.toBeNull();
    expect(back?.expectedRevisionId).not.toBe(forward?.expectedRevisionId);
    expect(functions.setAliasCalls).toHaveLength(3);
  });

  it('does not overwrite a concurrent change while moving back', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('first', 'live', '1');
    functions.seedAlias('second', 'live', '4');
    functions.beforeSetAlias = (name, _alias, version) => {
      if (name === 'second') {
        functions.seedAlias('first', 'live', '9'); // someone moved first after our move
        throw new AliasConflictError('second moved');
      }
      if (name === 'first' && version === '1') functions.beforeSetAlias = undefined;
    };

    // Act
    const error = await rejection(
      release({ versions: publishedVersions(['first', '2'], ['second', '5']) }, { functions, alarms: new MemoryAlarms() }),
    );

    // Assess
    expect(error.message).toBe('second moved');
    expect((await functions.getAlias('first', 'live'))?.version).toBe('9');
  });

  it('removes an alias it created when a later move fails', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('second', 'live', '4');
    functions.beforeSetAlias = (name) => {
      if (name === 'second') throw new AliasConflictError('second moved');
    };

    // Act
    await rejection(release({ versions: publishedVersions(['first', '1'], ['second', '5']) }, { functions, alarms: new MemoryAlarms() }));

    // Assess
    expect(await functions.getAlias('first', 'live')).toBeUndefined();
    expect((await functions.getAlias('second', 'live'))?.version).toBe('4');
  });
});

describe('undoRelease', () => {
  it('moves changed aliases back, removes created ones and skips unchanged ones', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('a', 'live', '2');
    functions.seedAlias('b', 'live', '1');
    functions.seedAlias('c', 'live', '7');
    const moves = [
      { name: 'a', alias: 'live', from: '1', to: '2', changed: true },
      { name: 'b', alias: 'live', from: null, to: '1', changed: true },
      { name: 'c', alias: 'live', from: '7', to: '7', changed: false },
    ];

    // Act
    const result = await undoRelease({ release: { functions: moves, gradual: null } }, { functions });

    // Assess
    expect(result.functions).toEqual([
      { name: 'a', alias: 'live', restored: '1', skipped: null },
      { name: 'b', alias: 'live', restored: null, skipped: null },
    ]);
    expect((await functions.getAlias('a', 'live'))?.version).toBe('1');
    expect(await functions.getAlias('b', 'live')).toBeUndefined();
    expect((await functions.getAlias('c', 'live'))?.version).toBe('7');
  });

  it('leaves an alias that moved again since the release, and says so', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('a', 'live', '3');

    // Act
    const result = await undoRelease(
      { release: { functions: [{ name: 'a', alias: 'live', from: '1', to: '2', changed: true }], gradual: null } },
      { functions },
    );

    // Assess
    expect(result.functions).toEqual([{ name: 'a', alias: 'live', restored: null, skipped: 'it is on 3 now, not 2' }]);
    expect((await functions.getAlias('a', 'live'))?.version).toBe('3');
    expect(functions.setAliasCalls).toEqual([]);
  });
});

describe('release: several functions', () => {
  it('puts every alias back where it was when the move of one of several fails (its version deleted meanwhile)', async () => {
    // Prepare: three functions live; the second's version disappears between the check and its move.
    const { functions, alarms } = world();
    const before = [functions.seedAlias('a', 'live', '1'), functions.seedAlias('b', 'live', '4'), functions.seedAlias('c', 'live', '7')];
    const setAlias = functions.setAlias.bind(functions);
    functions.setAlias = async (name, alias, version, expected, weights) => {
      if (name === 'b' && version === '5') throw new NotFoundError('b has no version 5');
      return setAlias(name, alias, version, expected, weights);
    };

    // Act
    const error = await rejection(release({ versions: publishedVersions(['a', '2'], ['b', '5'], ['c', '8']) }, { functions, alarms }));

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    for (const alias of before) expect((await functions.getAlias(alias.name, 'live'))?.version).toBe(alias.version);
    // c was never touched; a went forward and back (b's move failed before it reached the registry).
    expect(functions.setAliasCalls.map((c) => `${c.name}:${c.version}`)).toEqual(['a:2', 'a:1']);
  });
});

describe('release: gradual', () => {
  it('keeps the previous version and sends the first weight to the new one, with compare-and-swap', async () => {
    // Prepare
    const { functions, alarms } = world(new MemoryAlarms({ 'baked-hello-errors': 'OK' }));
    const before = functions.seedAlias('hello', 'live', '1');
    const bake = gradualBake({
      steps: [
        { weight: 10, minutes: 5 },
        { weight: 50, minutes: 0.5 },
      ],
      alarms: ['baked-hello-errors'],
    });

    // Act
    const result = await release({ versions: publishedVersions(['hello', '2']), bake }, { functions, alarms });

    // Assess
    const live = await functions.getAlias('hello', 'live');
    expect(live).toMatchObject({ version: '1', weights: { '2': 0.1 } });
    expect(functions.setAliasCalls).toEqual([
      { name: 'hello', alias: 'live', version: '1', expectedRevisionId: before.revisionId, weights: { '2': 0.1 } },
    ]);
    expect(result).toEqual({
      functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }],
      gradual: {
        step: 0,
        steps: [
          { weight: 10, seconds: 300 },
          { weight: 50, seconds: 30 },
        ],
        alarms: ['baked-hello-errors'],
        waitSeconds: 300,
        done: false,
        functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', revisionId: String(live?.revisionId) }],
      },
    } satisfies ReleaseResult);
    expect(alarms.checked).toEqual([['baked-hello-errors']]);
  });

  it('gives an alias it creates all traffic at once: there is nothing to shift from', async () => {
    // Prepare
    const { functions, alarms } = world();
    const bake = gradualBake({ steps: [{ weight: 10, minutes: 5 }] });

    // Act
    const result = await release({ versions: publishedVersions(['hello', '1']), bake }, { functions, alarms });

    // Assess
    expect(result.gradual).toBeNull();
    expect(await functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: {} });
  });

  it('refuses to start when an alarm is missing or already in ALARM, moving nothing', async () => {
    // Prepare
    const { functions, alarms } = world(new MemoryAlarms({ firing: 'ALARM' }));
    const before = functions.seedAlias('hello', 'live', '1');
    const versions = publishedVersions(['hello', '2']);

    // Act
    const missing = await rejection(
      release({ versions, bake: gradualBake({ steps: [{ weight: 10, minutes: 1 }], alarms: ['typo'] }) }, { functions, alarms }),
    );
    const firing = await rejection(
      release({ versions, bake: gradualBake({ steps: [{ weight: 10, minutes: 1 }], alarms: ['firing'] }) }, { functions, alarms }),
    );

    // Assess
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.message).toContain('typo');
    expect(firing).toBeInstanceOf(CanaryAlarmError);
    expect(firing.message).toContain('firing already in ALARM before any traffic moved');
    expect(functions.setAliasCalls).toEqual([]);
    expect(await functions.getAlias('hello', 'live')).toEqual(before);
  });
});

describe('shiftTraffic', () => {
  /** Release gradually with these steps, then hand back the ports and the result. */
  async function started(steps: Array<{ weight: number; minutes: number }>, fns: Array<[string, string, string]> = [['hello', '1', '2']]) {
    const w = world(new MemoryAlarms({ 'baked-errors': 'OK' }));
    for (const [name, from] of fns) w.functions.seedAlias(name, 'live', from);
    const bake = gradualBake({ steps, alarms: ['baked-errors'] });
    const versions = publishedVersions(...fns.map(([name, , to]): [string, string] => [name, to]));
    const result = await release({ versions, bake }, w);
    return { ...w, result };
  }

  it('moves step by step to all traffic on the new version while the alarms are OK', async () => {
    // Prepare
    const { functions, alarms, result } = await started([
      { weight: 10, minutes: 1 },
      { weight: 50, minutes: 2 },
    ]);

    // Act
    const second = await shiftTraffic({ release: result }, { functions, alarms });
    const atSecond = await functions.getAlias('hello', 'live');
    const last = await shiftTraffic({ release: second }, { functions, alarms });

    // Assess
    expect(atSecond).toMatchObject({ version: '1', weights: { '2': 0.5 } });
    expect(second.gradual).toMatchObject({ step: 1, waitSeconds: 120, done: false });
    expect(last.gradual).toMatchObject({ step: 2, waitSeconds: 0, done: true });
    expect(await functions.getAlias('hello', 'live')).toMatchObject({ version: '2', weights: {} });
    expect(last.functions).toEqual(result.functions);
    // Every move passed the revision of bakery's previous move.
    const calls = functions.setAliasCalls.slice(1);
    expect(calls.map((c) => c.expectedRevisionId)).toEqual([
      result.gradual?.functions[0]?.revisionId,
      second.gradual?.functions[0]?.revisionId,
    ]);
    expect(alarms.checked).toHaveLength(3);
  });

  it('moves every alias back to its previous version when an alarm fires, and fails with CanaryAlarmError', async () => {
    // Prepare: two functions shifted together, and a third one this release created.
    const w = world(new MemoryAlarms({ 'baked-errors': 'OK' }));
    w.functions.seedAlias('a', 'live', '1');
    w.functions.seedAlias('b', 'live', '4');
    const bake = gradualBake({
      steps: [
        { weight: 10, minutes: 1 },
        { weight: 50, minutes: 1 },
      ],
      alarms: ['baked-errors'],
    });
    const first = await release({ versions: publishedVersions(['a', '2'], ['b', '5'], ['c', '1']), bake }, w);
    const second = await shiftTraffic({ release: first }, w);
    w.alarms.alarms.set('baked-errors', 'ALARM');

    // Act
    const error = await rejection(shiftTraffic({ release: second }, w));

    // Assess
    expect(error).toBeInstanceOf(CanaryAlarmError);
    expect(error.message).toContain('alarm baked-errors (ALARM) at 50% on the new version (step 2/2)');
    expect(await w.functions.getAlias('a', 'live')).toMatchObject({ version: '1', weights: {} });
    expect(await w.functions.getAlias('b', 'live')).toMatchObject({ version: '4', weights: {} });
    expect(await w.functions.getAlias('c', 'live')).toBeUndefined();
  });

  it('counts an alarm deleted during the release as unhealthy', async () => {
    // Prepare
    const { functions, alarms, result } = await started([{ weight: 10, minutes: 1 }]);
    alarms.alarms.delete('baked-errors');

    // Act
    const error = await rejection(shiftTraffic({ release: result }, { functions, alarms }));

    // Assess
    expect(error).toBeInstanceOf(CanaryAlarmError);
    expect(error.message).toContain('baked-errors (missing)');
    expect(await functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: {} });
  });

  it('fails with AliasConflictError when someone moved the alias during the release, and overwrites nothing', async () => {
    // Prepare
    const { functions, alarms, result } = await started([{ weight: 10, minutes: 1 }]);
    functions.seedAlias('hello', 'live', '1'); // moved by hand: all traffic back on 1, a new revision

    // Act
    const error = await rejection(shiftTraffic({ release: result }, { functions, alarms }));

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect(await functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: {} });
  });

  it('picks up where a retried step left off: an alias it already moved is not moved again', async () => {
    // Prepare: a, b shifted; the step fails on b the first time (throttled), after a moved.
    const { functions, alarms, result } = await started(
      [
        { weight: 10, minutes: 1 },
        { weight: 30, minutes: 1 },
      ],
      [
        ['a', '1', '2'],
        ['b', '4', '5'],
      ],
    );
    let failOnce = true;
    functions.beforeSetAlias = (name) => {
      if (name === 'b' && failOnce) {
        failOnce = false;
        throw Object.assign(new Error('Rate exceeded'), { name: 'TransientBackendError' });
      }
    };
    await rejection(shiftTraffic({ release: result }, { functions, alarms }));

    // Act: the ASL retries the step with the same input.
    const retried = await shiftTraffic({ release: result }, { functions, alarms });

    // Assess
    expect(await functions.getAlias('a', 'live')).toMatchObject({ version: '1', weights: { '2': 0.3 } });
    expect(await functions.getAlias('b', 'live')).toMatchObject({ version: '4', weights: { '5': 0.3 } });
    expect(functions.setAliasCalls.filter((c) => c.name === 'a')).toHaveLength(2); // release + one shift
    expect(retried.gradual?.functions.map((f) => f.revisionId)).toEqual([
      (await functions.getAlias('a', 'live'))?.revisionId,
      (await functions.getAlias('b', 'live'))?.revisionId,
    ]);
  });

  it('returns an all-at-once or finished release unchanged', async () => {
    const { functions, alarms } = world();
    const moves: AliasMove[] = [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }];
    const once: ReleaseResult = { functions: moves, gradual: null };
    expect(await shiftTraffic({ release: once }, { functions, alarms })).toBe(once);
    expect(functions.setAliasCalls).toEqual([]);
    expect(alarms.checked).toEqual([]);
  });
});

describe('undoRelease: gradual', () => {
  it('puts a half-shifted alias back on its previous version, and leaves it there when run again', async () => {
    // Prepare
    const functions = new Registry();
    functions.seedAlias('hello', 'live', '1', { '2': 0.25 });
    const release: ReleaseResult = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null };

    // Act
    const first = await undoRelease({ release }, { functions });
    const again = await undoRelease({ release }, { functions });

    // Assess
    expect(first.functions).toEqual([{ name: 'hello', alias: 'live', restored: '1', skipped: null }]);
    expect(again.functions).toEqual([{ name: 'hello', alias: 'live', restored: null, skipped: 'it is on 1 now, not 2' }]);
    expect(await functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: {} });
    expect(functions.setAliasCalls).toHaveLength(1);
  });

  it('leaves an alias weighted towards some other version alone', async () => {
    const functions = new Registry();
    functions.seedAlias('hello', 'live', '1', { '9': 0.5 });
    const release: ReleaseResult = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null };

    const result = await undoRelease({ release }, { functions });

    expect(result.functions).toEqual([{ name: 'hello', alias: 'live', restored: null, skipped: 'it is on 1 with 50% on 9 now, not 2' }]);
    expect(functions.setAliasCalls).toEqual([]);
  });
});

describe('release: a version gone missing', () => {
  it('fails before any alias moves, so every alias keeps its revision', async () => {
    // Prepare: the second function's version was deleted after validation (a prune, a hand).
    const { functions, alarms } = world();
    const before = [functions.seedAlias('a', 'live', '1'), functions.seedAlias('b', 'live', '4'), functions.seedAlias('c', 'live', '7')];
    functions.missing.add('b:5');

    // Act
    const error = await rejection(release({ versions: publishedVersions(['a', '2'], ['b', '5'], ['c', '8']) }, { functions, alarms }));

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe('b has no version 5 any more (deleted since it was validated?); no alias was moved');
    expect(functions.setAliasCalls).toEqual([]);
    for (const alias of before) expect(await functions.getAlias(alias.name, 'live')).toEqual(alias);
  });
});

describe('release bound to an approval', () => {
  const approved = (
    ...live: Array<{ name: string; version: string | null; revisionId: string | null; weights?: Record<string, number> }>
  ) => ({
    approvalId: 'apr-1',
    decision: 'approved' as const,
    by: 'dave',
    at: '2026-11-22T08:00:00.000Z',
    live: live.map((l) => ({ alias: 'live', weights: {}, ...l })),
  });

  it('fails stale with every alias untouched when one moved since the approval, naming each that did', async () => {
    // Prepare: the approval saw api on 1 and hello on 1; hello was rolled back to 0 meanwhile.
    const deps = world();
    const api = deps.functions.seedAlias('api', 'live', '1');
    const asked = deps.functions.seedAlias('hello', 'live', '1');
    const now = deps.functions.seedAlias('hello', 'live', '0');

    // Act
    const error = await rejection(
      release(
        {
          versions: publishedVersions(['api', '2'], ['hello', '3']),
          approval: approved(
            { name: 'api', version: '1', revisionId: api.revisionId },
            { name: 'hello', version: '1', revisionId: asked.revisionId },
          ),
        },
        deps,
      ),
    );

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect(error.message).toBe(
      'hello:live is on 0 since the approval, which was for 1 → 3; the approval went stale and nothing was released',
    );
    expect(await deps.functions.getAlias('api', 'live')).toEqual(api);
    expect(await deps.functions.getAlias('hello', 'live')).toEqual(now);
  });

  it('is stale when the alias was created since an approval that saw none, or given weights by hand', async () => {
    const deps = world();
    deps.functions.seedAlias('hello', 'live', '1', { '2': 0.5 });
    const error = await rejection(
      release(
        { versions: publishedVersions(['hello', '3']), approval: approved({ name: 'hello', version: null, revisionId: null }) },
        deps,
      ),
    );
    expect(error.message).toContain('hello:live is on 1 with 50% on 2 since the approval, which was for nothing (no alias) → 3');
  });

  it('retried after its move (the answer was lost): finds the alias where it moved it, and reports the move from the bound version', async () => {
    // Prepare
    const deps = world();
    const asked = deps.functions.seedAlias('hello', 'live', '1');
    const input = {
      versions: publishedVersions(['hello', '2']),
      approval: approved({ name: 'hello', version: '1', revisionId: asked.revisionId }),
    };
    await release(input, deps);
    const moved = await deps.functions.getAlias('hello', 'live');

    // Act
    const retried = await release(input, deps);

    // Assess
    expect(retried.functions).toEqual([{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }]);
    expect(await deps.functions.getAlias('hello', 'live')).toEqual(moved);
  });

  it('moves a gradual release from the bound revision, and recognises its own first step on a retry', async () => {
    // Prepare
    const deps = world();
    const asked = deps.functions.seedAlias('hello', 'live', '1');
    const input = {
      versions: publishedVersions(['hello', '2']),
      bake: gradualBake({ steps: [{ weight: 10, minutes: 5 }] }),
      approval: approved({ name: 'hello', version: '1', revisionId: asked.revisionId }),
    };

    // Act
    const first = await release(input, deps);
    const retried = await release(input, deps);

    // Assess
    expect(await deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1', weights: { '2': 0.1 } });
    expect(retried).toEqual(first);
  });
});
