import { describe, expect, it } from 'vitest';
import { release, undoRelease } from '../../src/cores/release.ts';
import { AliasConflictError } from '../../src/errors.ts';
import { publishedVersions } from '../helpers/fixtures.ts';
import { MemoryFunctionRegistry } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

describe('release', () => {
  it('moves the alias passing the revision it read, so a concurrent change would fail', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    const before = functions.seedAlias('hello', 'live', '1');

    // Act
    const result = await release({ versions: publishedVersions(['hello', '2']) }, { functions });

    // Assess
    expect(functions.setAliasCalls).toEqual([{ name: 'hello', alias: 'live', version: '2', expectedRevisionId: before.revisionId }]);
    expect(result).toEqual({ functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }] });
    expect((await functions.getAlias('hello', 'live'))?.version).toBe('2');
  });

  it('creates a missing alias with a null expected revision', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();

    // Act
    const result = await release({ versions: publishedVersions(['hello', '1']) }, { functions });

    // Assess
    expect(functions.setAliasCalls).toEqual([{ name: 'hello', alias: 'live', version: '1', expectedRevisionId: null }]);
    expect(result.functions).toEqual([{ name: 'hello', alias: 'live', from: null, to: '1', changed: true }]);
  });

  it('leaves an alias that already points at the version alone', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    const before = functions.seedAlias('hello', 'live', '2');

    // Act
    const result = await release({ versions: publishedVersions(['hello', '2']) }, { functions });

    // Assess
    expect(functions.setAliasCalls).toEqual([]);
    expect(result.functions).toEqual([{ name: 'hello', alias: 'live', from: '2', to: '2', changed: false }]);
    expect(await functions.getAlias('hello', 'live')).toEqual(before);
  });

  it('fails with AliasConflictError when the alias moved after it was read', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.seedAlias('hello', 'live', '1');
    functions.beforeSetAlias = () => {
      functions.beforeSetAlias = undefined;
      functions.seedAlias('hello', 'live', '5'); // someone else released meanwhile
    };

    // Act
    const error = await rejection(release({ versions: publishedVersions(['hello', '2']) }, { functions }));

    // Assess
    expect(error).toBeInstanceOf(AliasConflictError);
    expect((await functions.getAlias('hello', 'live'))?.version).toBe('5');
  });

  it('moves the first function back when the second one fails, then rethrows', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.seedAlias('first', 'live', '1');
    functions.seedAlias('second', 'live', '4');
    const conflict = new AliasConflictError('second moved');
    functions.beforeSetAlias = (name) => {
      if (name === 'second') throw conflict;
    };

    // Act
    const error = await rejection(release({ versions: publishedVersions(['first', '2'], ['second', '5']) }, { functions }));

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
    const functions = new MemoryFunctionRegistry();
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
    const error = await rejection(release({ versions: publishedVersions(['first', '2'], ['second', '5']) }, { functions }));

    // Assess
    expect(error.message).toBe('second moved');
    expect((await functions.getAlias('first', 'live'))?.version).toBe('9');
  });

  it('removes an alias it created when a later move fails', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.seedAlias('second', 'live', '4');
    functions.beforeSetAlias = (name) => {
      if (name === 'second') throw new AliasConflictError('second moved');
    };

    // Act
    await rejection(release({ versions: publishedVersions(['first', '1'], ['second', '5']) }, { functions }));

    // Assess
    expect(await functions.getAlias('first', 'live')).toBeUndefined();
    expect((await functions.getAlias('second', 'live'))?.version).toBe('4');
  });
});

describe('undoRelease', () => {
  it('moves changed aliases back, removes created ones and skips unchanged ones', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.seedAlias('a', 'live', '2');
    functions.seedAlias('b', 'live', '1');
    functions.seedAlias('c', 'live', '7');
    const moves = [
      { name: 'a', alias: 'live', from: '1', to: '2', changed: true },
      { name: 'b', alias: 'live', from: null, to: '1', changed: true },
      { name: 'c', alias: 'live', from: '7', to: '7', changed: false },
    ];

    // Act
    const result = await undoRelease({ release: { functions: moves } }, { functions });

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
    const functions = new MemoryFunctionRegistry();
    functions.seedAlias('a', 'live', '3');

    // Act
    const result = await undoRelease(
      { release: { functions: [{ name: 'a', alias: 'live', from: '1', to: '2', changed: true }] } },
      { functions },
    );

    // Assess
    expect(result.functions).toEqual([{ name: 'a', alias: 'live', restored: null, skipped: 'it is on 3 now, not 2' }]);
    expect((await functions.getAlias('a', 'live'))?.version).toBe('3');
    expect(functions.setAliasCalls).toEqual([]);
  });
});
