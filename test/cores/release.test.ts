import { describe, expect, it } from 'vitest';
import { release } from '../../src/cores/release.ts';
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
});
