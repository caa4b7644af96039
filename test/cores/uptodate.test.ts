import { describe, expect, it } from 'vitest';
import { manifestKey } from '../../src/cores/record.ts';
import { type FunctionInputs, functionInputSha256, liveEqualBakes } from '../../src/cores/uptodate.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { resolvedBake } from '../helpers/fixtures.ts';
import { MemoryArtefactStore, MemoryLedger } from '../helpers/memory.ts';

const inputs = (overrides: Partial<FunctionInputs['fn']> = {}, more: Partial<FunctionInputs> = {}): FunctionInputs => ({
  codeTreeSha256: 'c'.repeat(64),
  fn: { handler: 'index.handler', memorySize: 256, timeout: 10, environment: { GREETING: 'hi' }, layers: [], ...overrides },
  recipe: { runtime: 'provided.al2023', architecture: 'x86_64' },
  layer: { name: 'hello-node22' },
  ...more,
});

describe('functionInputSha256', () => {
  it('is the same for the same inputs, whatever the key order of the environment', () => {
    const a = functionInputSha256(inputs({ environment: { A: '1', B: '2' } }));
    const b = functionInputSha256(inputs({ environment: { B: '2', A: '1' } }));
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).toBe(b);
  });

  it('changes with the code and with every setting that reaches the published version', () => {
    const base = functionInputSha256(inputs());
    const changed = [
      inputs({}, { codeTreeSha256: 'd'.repeat(64) }),
      inputs({ handler: 'other.handler' }),
      inputs({ memorySize: 512 }),
      inputs({ timeout: 11 }),
      inputs({ environment: { GREETING: 'hello' } }),
      inputs({ environment: { GREETING: 'hi', MORE: 'x' } }),
      inputs({ layers: ['arn:aws:lambda:eu-west-1:123456789012:layer:extra:1'] }),
      inputs({}, { recipe: { runtime: 'provided.al2023', architecture: 'arm64' } }),
      inputs({}, { recipe: { runtime: 'provided.al2', architecture: 'x86_64' } }),
      inputs({}, { layer: { name: 'other-layer' } }),
      inputs({}, { layer: { name: 'hello-node22', description: 'new words' } }),
    ].map(functionInputSha256);
    for (const hash of changed) expect(hash).not.toBe(base);
    expect(new Set(changed).size).toBe(changed.length);
  });
});

describe('liveEqualBakes', () => {
  const KEY = 'k'.repeat(64);
  const INPUT = 'i'.repeat(64);
  const code = resolvedBake().functions[0]?.code;
  if (!code) throw new Error('fixture without a function');
  const bake = (bakeKey = KEY, inputSha256 = INPUT) => ({ bakeKey, functions: [{ name: 'hello', alias: 'live', inputSha256 }] });

  function released(bakeId: string, version: string, at: string): LedgerEntry {
    return {
      type: 'released',
      bakeId,
      at,
      trigger: { type: 'cli', user: 'tester' },
      layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:hello-node22:1', version: 1, codeSha256: 'l=' },
      functions: [{ name: 'hello', alias: 'live', from: null, to: version, changed: true }],
      manifest: { uri: `mem://${manifestKey(bakeId)}`, sha256Hex: '00'.repeat(32), size: 1 },
    };
  }

  type Recorded = { bakeKey: string; version: string; inputSha256?: string; status?: string; code?: unknown };
  async function setup(entries: LedgerEntry[], manifests: Record<string, Recorded>) {
    const ledger = new MemoryLedger();
    for (const e of entries) await ledger.append(e);
    const artefacts = new MemoryArtefactStore();
    for (const [bakeId, m] of Object.entries(manifests)) {
      const { bakeKey, version, status = 'released', ...fn } = m;
      await artefacts.putJson(manifestKey(bakeId), {
        bakeId,
        status,
        bakeKey,
        functions: [{ name: 'hello', version, codeSha256: code?.sha256Base64, alias: 'live', code, ...fn }],
      });
    }
    return { ledger, artefacts };
  }

  it('names the live release and its staged code when the bake key and input hash are the same', async () => {
    const deps = await setup([released('b1', '1', '2026-11-01T00:00:00Z')], { b1: { bakeKey: KEY, version: '1', inputSha256: INPUT } });
    await expect(liveEqualBakes(bake(), deps)).resolves.toEqual({
      bakeIds: ['b1'],
      functions: [{ name: 'hello', alias: 'live', version: '1', code }],
    });
  });

  it('is null when the bake key or the inputs differ, nothing was released, or the manifest predates input hashes', async () => {
    const manifest = { b1: { bakeKey: KEY, version: '1', inputSha256: INPUT } };
    const live = [released('b1', '1', '2026-11-01T00:00:00Z')];
    await expect(liveEqualBakes(bake('other'.padEnd(64, '0')), await setup(live, manifest))).resolves.toBeNull();
    await expect(liveEqualBakes(bake(KEY, 'j'.repeat(64)), await setup(live, manifest))).resolves.toBeNull();
    await expect(liveEqualBakes(bake(), await setup([], manifest))).resolves.toBeNull();
    await expect(liveEqualBakes(bake(), await setup(live, {}))).resolves.toBeNull();
    await expect(liveEqualBakes(bake(), await setup(live, { b1: { bakeKey: KEY, version: '1' } }))).resolves.toBeNull();
    await expect(liveEqualBakes(bake(), await setup(live, { b1: { ...manifest.b1, code: undefined } }))).resolves.toBeNull();
    await expect(liveEqualBakes({ bakeKey: KEY, functions: [] }, await setup(live, manifest))).resolves.toBeNull();
  });

  it('compares with what is live now: after a rollback, the bake rolled back to', async () => {
    // Prepare: b2 released version 2 with other inputs, then the alias was rolled back to b1's version 1.
    const deps = await setup(
      [
        released('b1', '1', '2026-11-01T00:00:00Z'),
        released('b2', '2', '2026-11-08T00:00:00Z'),
        {
          type: 'rolledBack',
          bakeId: 'b1',
          at: '2026-11-09T00:00:00Z',
          by: 'ops',
          name: 'hello',
          alias: 'live',
          from: '2',
          to: '1',
          fromWeights: {},
        },
      ],
      { b1: { bakeKey: KEY, version: '1', inputSha256: INPUT }, b2: { bakeKey: KEY, version: '2', inputSha256: 'n'.repeat(64) } },
    );

    // Act + Assess
    await expect(liveEqualBakes(bake(), deps)).resolves.toMatchObject({ bakeIds: ['b1'] });
    await expect(liveEqualBakes(bake(KEY, 'n'.repeat(64)), deps)).resolves.toBeNull();
  });
});
