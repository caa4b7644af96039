import { describe, expect, it } from 'vitest';
import { StateContractError } from '../src/errors.ts';
import { BakeStateSchema, parseFailureInput, parseTaskInput, ResolvedBakeSchema, TASK_INPUTS } from '../src/state.ts';
import { builtImage, passedValidation, publishedLayer, publishedVersions, resolvedBake } from './helpers/fixtures.ts';
import { rejection } from './helpers/rejection.ts';

const bake = resolvedBake();
const image = builtImage('file:///tmp/tree');
const layer = publishedLayer();
const versions = publishedVersions(['hello', '2']);
const validation = passedValidation(versions);
const release = { functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }], gradual: null };

describe('parseTaskInput', () => {
  it('hands each task exactly the state it was given, when it matches the contract', () => {
    // Prepare
    const inputs = {
      BuildImage: { bake, taskToken: 't' },
      PublishLayer: { bake, image },
      PublishVersion: { bake, layer },
      Validate: { bake, versions },
      RequestApproval: { bake, layer, versions, validation, taskToken: 't' },
      Release: { versions, bake },
      ShiftTraffic: { release },
      UndoRelease: { release },
      RecordSuccess: { bake, image, layer, versions, validation, release },
      RecordFailure: { bakeId: 'b', errors: { Validate: { Error: 'ValidationFailedError', Cause: 'no' } } },
    } as const;

    // Act + Assess: a JSON round trip, as Step Functions delivers it, parses to the same value.
    for (const [state, input] of Object.entries(inputs)) {
      expect(parseTaskInput(state as keyof typeof inputs, JSON.parse(JSON.stringify(input)))).toEqual(input);
    }
    expect(Object.keys(TASK_INPUTS).sort()).toEqual([...Object.keys(inputs), 'ResolveBake'].sort());
  });

  it('names the state and the field of a mismatch', async () => {
    // Prepare
    const { bakeKey: _dropped, ...keyless } = image;

    // Act
    const error = await rejection(Promise.resolve().then(() => parseTaskInput('PublishLayer', { bake, image: keyless })));

    // Assess
    expect(error).toBeInstanceOf(StateContractError);
    expect(error.name).toBe('StateContractError');
    expect(error.message).toBe('PublishLayer: $.image.bakeKey: expected string, received undefined');
  });

  it('lists every mismatch, with array indexes in the path', async () => {
    // Prepare
    const input = { bake, versions: { functions: [{ name: 'hello', version: 2, codeSha256: 'c', alias: 'live' }] }, extra: 1 };

    // Act
    const error = await rejection(Promise.resolve().then(() => parseTaskInput('Validate', { ...input, bake: { ...bake, rebuild: 'no' } })));

    // Assess
    expect(error.message.split('\n')).toEqual([
      'Validate: $.bake.rebuild: expected boolean, received string',
      '  Validate: $.versions.functions[0].version: expected string, received number',
    ]);
  });

  it('refuses a bake as resolve stages it before it is keyed: bakeKey, upToDate and patched are required', () => {
    // Prepare
    const { bakeKey: _k, upToDate: _u, upToDateWith: _w, patched: _p, ...staged } = bake;

    // Act
    const parsed = ResolvedBakeSchema.safeParse(staged);

    // Assess
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues.map((i) => i.path.join('.')).sort()).toEqual(['bakeKey', 'patched', 'upToDate', 'upToDateWith']);
  });

  it('leaves out of the record tasks’ input what no schema names, but keeps what the request set', () => {
    // Act
    const state = BakeStateSchema.parse({ bakeId: 'b', trigger: { type: 'cli', user: 'u' }, recordFailureError: { Error: 'x' } });

    // Assess
    expect(state).toEqual({ bakeId: 'b', trigger: { type: 'cli', user: 'u' } });
  });
});

describe('parseFailureInput', () => {
  it('keeps what matches of a state that breaks the contract, so RecordFailure can still record it', () => {
    // Prepare: PublishLayer failed on this image (its Catch led to RecordFailure).
    const { bakeKey: _dropped, ...keyless } = image;
    const errors = { PublishLayer: { Error: 'StateContractError', Cause: 'PublishLayer: $.image.bakeKey: expected string' } };

    // Act
    const state = parseFailureInput({ bake, image: keyless, errors });

    // Assess
    expect(state).toEqual({ bake, errors });
  });

  it('still requires the errors every Catch writes', async () => {
    // Act
    const error = await rejection(Promise.resolve().then(() => parseFailureInput({ bake, errors: { Validate: { Error: 1 } } })));

    // Assess
    expect(error.message).toMatch(/^RecordFailure: \$\.errors\.Validate\.Error: expected string, received number/);
  });
});
