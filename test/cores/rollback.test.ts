import { describe, expect, it } from 'vitest';
import { rollback } from '../../src/cores/rollback.ts';
import { AliasConflictError, InputError, NotFoundError, StateDirError } from '../../src/errors.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { FakeClock, MemoryFunctionRegistry, MemoryLedger } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

/** A ledger entry of a bake that released `hello:live` from `from` to `to`. */
const released = (bakeId: string, from: string | null, to: string, name = 'hello'): LedgerEntry => ({
  type: 'released',
  bakeId,
  at: `2026-11-2${bakeId.slice(-1)}T07:30:00.000Z`,
  trigger: { type: 'cli', user: 'ana' },
  layer: { arn: `arn:aws:lambda:eu-west-1:123456789012:layer:rt:${to}`, version: Number(to), codeSha256: 'l=' },
  functions: [{ name, alias: 'live', from, to, changed: true }],
  manifest: { uri: `mem://manifests/${bakeId}.json`, sha256Hex: '00', size: 1 },
});

/** hello versions 1..4 exist; bakes b1..b3 released 1, 2, 3 in turn (1 replaced a version 0 from before bakery); live is on 3. */
function world() {
  const functions = new MemoryFunctionRegistry();
  for (const version of ['1', '2', '3', '4']) {
    functions.versions.push({
      name: 'hello',
      version,
      codeSha256: `c${version}`,
      handler: 'index.handler',
      runtime: 'provided.al2023',
      layers: [],
      environment: {},
    });
  }
  const ledger = new MemoryLedger();
  ledger.entries.push(released('b1', '0', '1'), released('b2', '1', '2'), released('b3', '2', '3'));
  const live = functions.seedAlias('hello', 'live', '3');
  return { functions, ledger, clock: new FakeClock('2026-11-30T10:00:00.000Z'), live };
}

describe('rollback', () => {
  it('goes back to the version released before the live one, with compare-and-swap, and records it', async () => {
    // Prepare
    const deps = world();

    // Act
    const result = await rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps);

    // Assess
    expect(result).toEqual({ name: 'hello', alias: 'live', from: '3', to: '2', bakeId: 'b2', changed: true, fromWeights: {} });
    expect(deps.functions.setAliasCalls).toEqual([
      { name: 'hello', alias: 'live', version: '2', expectedRevisionId: deps.live.revisionId, weights: {} },
    ]);
    expect(deps.ledger.entries.at(-1)).toEqual({
      type: 'rolledBack',
      bakeId: 'b2',
      at: '2026-11-30T10:00:00.000Z',
      by: 'ana',
      name: 'hello',
      alias: 'live',
      from: '3',
      to: '2',
      fromWeights: {},
    });
  });

  it('walks further back when run again, and refuses to go past the first release', async () => {
    // Prepare
    const deps = world();

    // Act
    await rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps);
    const second = await rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps);
    const third = await rejection(rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps));

    // Assess
    expect(second).toMatchObject({ from: '2', to: '1', bakeId: 'b1' });
    // Version 0 was live before bakery: no bake released it.
    expect(third).toBeInstanceOf(InputError);
    expect(third.message).toBe('nothing to roll back to: no bake released a version of hello:live before version 1');
    expect((await deps.functions.getAlias('hello', 'live'))?.version).toBe('1');
  });

  it('goes to the version a named bake released, or to a released version number', async () => {
    // Prepare
    const deps = world();

    // Act
    const byBake = await rollback({ name: 'hello', alias: 'live', to: 'b1', by: 'ana' }, deps);
    const byVersion = await rollback({ name: 'hello', alias: 'live', to: '3', by: 'ana' }, deps);

    // Assess
    expect(byBake).toMatchObject({ from: '3', to: '1', bakeId: 'b1' });
    expect(byVersion).toMatchObject({ from: '1', to: '3', bakeId: 'b3' });
    expect(deps.ledger.entries.filter((e) => e.type === 'rolledBack')).toHaveLength(2);
  });

  it('refuses a version no bake released, even one that exists, and moves nothing', async () => {
    // Prepare
    const deps = world();

    // Act
    const published = await rejection(rollback({ name: 'hello', alias: 'live', to: '4', by: 'ana' }, deps));
    const before = await rejection(rollback({ name: 'hello', alias: 'live', to: '0', by: 'ana' }, deps));
    const otherBake = await rejection(rollback({ name: 'hello', alias: 'live', to: 'b9', by: 'ana' }, deps));

    // Assess
    expect(published).toBeInstanceOf(InputError);
    expect(published.message).toBe('version 4 of hello:live was never released by a bake; refusing to point the alias at it');
    expect(before).toBeInstanceOf(InputError);
    expect(otherBake).toBeInstanceOf(NotFoundError);
    expect(deps.functions.setAliasCalls).toEqual([]);
    expect(deps.ledger.entries).toHaveLength(3);
  });

  it('refuses a bake that did not release this function', async () => {
    const deps = world();
    deps.ledger.entries.push(released('b4', '7', '8', 'other'));

    const error = await rejection(rollback({ name: 'hello', alias: 'live', to: 'b4', by: 'ana' }, deps));

    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe('bake b4 did not release hello:live');
  });

  it('fails with AliasConflictError when the alias moves meanwhile, and records nothing', async () => {
    // Prepare
    const deps = world();
    deps.functions.beforeSetAlias = () => {
      deps.functions.beforeSetAlias = undefined;
      deps.functions.seedAlias('hello', 'live', '4'); // someone else's move
    };

    // Act
    const error = await rejection(rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps));

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect((await deps.functions.getAlias('hello', 'live'))?.version).toBe('4');
    expect(deps.ledger.entries).toHaveLength(3);
  });

  it('puts the alias back when the rollback cannot be recorded', async () => {
    // Prepare
    const deps = world();
    deps.ledger.append = async () => {
      throw new StateDirError('ledger.jsonl is read-only');
    };

    // Act
    const error = await rejection(rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps));

    // Assess
    expect(error).toBeInstanceOf(StateDirError);
    expect((await deps.functions.getAlias('hello', 'live'))?.version).toBe('3');
  });

  it('cuts a gradual release short: all traffic back on the version, the weights recorded', async () => {
    // Prepare: 3 is live with 10% on an unreleased 4 (a canary under way).
    const deps = world();
    deps.functions.seedAlias('hello', 'live', '3', { '4': 0.1 });

    // Act
    const result = await rollback({ name: 'hello', alias: 'live', to: '3', by: 'ana' }, deps);

    // Assess
    expect(result).toMatchObject({ from: '3', to: '3', changed: true, fromWeights: { '4': 0.1 } });
    expect(await deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '3', weights: {} });
    expect(deps.ledger.entries.at(-1)).toMatchObject({ type: 'rolledBack', fromWeights: { '4': 0.1 } });
  });

  it('changes and records nothing when the alias is already there', async () => {
    const deps = world();

    const result = await rollback({ name: 'hello', alias: 'live', to: 'b3', by: 'ana' }, deps);

    expect(result.changed).toBe(false);
    expect(deps.functions.setAliasCalls).toEqual([]);
    expect(deps.ledger.entries).toHaveLength(3);
  });

  it('says so when the version to go back to was deleted since', async () => {
    const deps = world();
    deps.functions.versions.splice(1, 1); // version 2

    const error = await rejection(rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps));

    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe('version 2 of hello (released by bake b2) no longer exists');
    expect(deps.functions.setAliasCalls).toEqual([]);
  });

  it('refuses a function no bake released, and an alias that does not exist', async () => {
    const deps = world();
    expect(await rejection(rollback({ name: 'nope', alias: 'live', by: 'ana' }, deps))).toBeInstanceOf(NotFoundError);
    deps.functions.aliases.clear();
    expect((await rejection(rollback({ name: 'hello', alias: 'live', by: 'ana' }, deps))).message).toBe('alias hello:live does not exist');
  });
});
