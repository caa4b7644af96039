import { describe, expect, it } from 'vitest';
import { status } from '../../src/cores/status.ts';
import type { FunctionVersionInput } from '../../src/ports/lambda.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { MemoryFunctionRegistry, MemoryLayerRegistry, MemoryLedger } from '../helpers/memory.ts';

const LAYER_ARN = 'arn:aws:lambda:test:000000000000:layer:hello-node22:1';
const digest = Buffer.alloc(32, 7);

function versionInput(name: string, layers: string[]): FunctionVersionInput {
  return {
    name,
    description: '',
    codeFile: '/dev/null',
    codeSha256: 'c',
    handler: 'index.handler',
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    memorySize: 128,
    timeout: 3,
    environment: {},
    layers,
  };
}

function released(bakeId: string, at: string, moves: Array<[name: string, from: string | null, to: string]>): LedgerEntry {
  return {
    type: 'released',
    bakeId,
    at,
    trigger: { type: 'cli', user: 't' },
    layer: { arn: LAYER_ARN, version: 1, codeSha256: digest.toString('base64') },
    functions: moves.map(([name, from, to]) => ({ name, alias: 'live', from, to, changed: true })),
    manifest: { uri: `mem://manifests/${bakeId}.json`, sha256Hex: '', size: 0 },
  };
}

async function world() {
  const ledger = new MemoryLedger();
  const functions = new MemoryFunctionRegistry();
  const layers = new MemoryLayerRegistry();
  layers.versions.push({ name: 'hello-node22', arn: LAYER_ARN, version: 1, codeSha256: digest.toString('base64'), size: 10 });
  await functions.publishVersion(versionInput('hello', [LAYER_ARN]));
  await functions.publishVersion(versionInput('hello', [LAYER_ARN]));
  await functions.publishVersion(versionInput('api', []));
  return { ledger, functions, layers };
}

describe('status', () => {
  it('shows nothing before the first release', async () => {
    // Prepare
    const deps = await world();

    // Act
    const result = await status(deps);

    // Assess
    expect(result).toEqual({ functions: [] });
  });

  it('shows where each released alias points, its layer digest in both forms, and the bake that released it', async () => {
    // Prepare
    const deps = await world();
    await deps.ledger.append(released('bake-1', '2026-11-01T00:00:00.000Z', [['hello', null, '1']]));
    await deps.ledger.append(released('bake-2', '2026-11-02T00:00:00.000Z', [['hello', '1', '2']]));
    await deps.ledger.append({
      type: 'failed',
      bakeId: 'bake-3',
      at: '2026-11-03T00:00:00.000Z',
      state: 'Validate',
      error: 'ValidationFailedError',
      cause: 'x',
      manifest: null,
    });
    deps.functions.seedAlias('hello', 'live', '2');

    // Act
    const result = await status(deps);

    // Assess
    expect(result.functions).toEqual([
      {
        name: 'hello',
        alias: 'live',
        version: '2',
        layer: { arn: LAYER_ARN, version: 1, sha256: digest.toString('hex'), codeSha256: digest.toString('base64') },
        bakeId: 'bake-2',
        releasedAt: '2026-11-02T00:00:00.000Z',
      },
    ]);
  });

  it('names the older bake when the alias was moved back to its version', async () => {
    // Prepare
    const deps = await world();
    await deps.ledger.append(released('bake-1', '2026-11-01T00:00:00.000Z', [['hello', null, '1']]));
    await deps.ledger.append(released('bake-2', '2026-11-02T00:00:00.000Z', [['hello', '1', '2']]));
    deps.functions.seedAlias('hello', 'live', '1');

    // Act
    const [hello] = (await status(deps)).functions;

    // Assess
    expect(hello).toMatchObject({ version: '1', bakeId: 'bake-1', releasedAt: '2026-11-01T00:00:00.000Z' });
  });

  it('says when the alias points somewhere bakery never released, or is gone, and lists functions by name', async () => {
    // Prepare
    const deps = await world();
    await deps.ledger.append(
      released('bake-1', '2026-11-01T00:00:00.000Z', [
        ['hello', null, '1'],
        ['api', null, '1'],
      ]),
    );
    deps.functions.seedAlias('hello', 'live', '2');

    // Act
    const result = await status(deps);

    // Assess
    expect(result.functions).toEqual([
      { name: 'api', alias: 'live', version: null, layer: null, bakeId: null, releasedAt: null },
      {
        name: 'hello',
        alias: 'live',
        version: '2',
        layer: { arn: LAYER_ARN, version: 1, sha256: digest.toString('hex'), codeSha256: digest.toString('base64') },
        bakeId: null,
        releasedAt: null,
      },
    ]);
  });

  it('keeps the layer arn when the layer version itself is no longer found', async () => {
    // Prepare
    const deps = await world();
    deps.layers.versions.length = 0;
    await deps.ledger.append(released('bake-1', '2026-11-01T00:00:00.000Z', [['hello', null, '1']]));
    deps.functions.seedAlias('hello', 'live', '1');

    // Act
    const [hello] = (await status(deps)).functions;

    // Assess
    expect(hello?.layer).toEqual({ arn: LAYER_ARN, version: null, sha256: null, codeSha256: null });
  });
});
