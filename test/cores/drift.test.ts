import { describe, expect, it } from 'vitest';
import { drift, driftCheck, expectedAliases } from '../../src/cores/drift.ts';
import { describeEntry, history } from '../../src/cores/history.ts';
import { type ManifestFunction, manifestKey } from '../../src/cores/record.ts';
import type { FunctionVersionInfo } from '../../src/ports/lambda.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import type { ArtefactRef } from '../../src/state.ts';
import { FakeClock, MemoryArtefactStore, MemoryFunctionRegistry, MemoryLedger, RecordingNotifier } from '../helpers/memory.ts';

const LAYER = (n: number) => `arn:aws:lambda:eu-west-1:123456789012:layer:hello-node22:${n}`;

const released = (
  bakeId: string,
  name: string,
  from: string | null,
  to: string,
  manifest: ArtefactRef = { uri: `mem://${manifestKey(bakeId)}`, sha256Hex: '00', size: 1 },
): LedgerEntry => ({
  type: 'released',
  bakeId,
  at: '2026-11-22T07:30:00.000Z',
  trigger: { type: 'cli', user: 'ana' },
  layer: { arn: LAYER(Number(to)), version: Number(to), codeSha256: 'l=' },
  functions: [{ name, alias: 'live', from, to, changed: true }],
  manifest,
});

const version = (name: string, v: string, overrides: Partial<FunctionVersionInfo> = {}): FunctionVersionInfo => ({
  name,
  version: v,
  codeSha256: `code-${name}-${v}`,
  handler: 'index.handler',
  runtime: 'provided.al2023',
  layers: [LAYER(Number(v))],
  environment: { GREETING_STYLE: 'plain' },
  ...overrides,
});

/** What a bake's manifest records of a version it published. */
const recorded = (v: FunctionVersionInfo): ManifestFunction => ({
  name: v.name,
  version: v.version,
  codeSha256: v.codeSha256,
  alias: 'live',
  handler: v.handler,
  runtime: v.runtime,
  layers: v.layers,
  environmentNames: Object.keys(v.environment).sort(),
});

/** hello and bye, each released by its own bake (hello twice: versions 1 then 2), everything as released. */
async function world() {
  const functions = new MemoryFunctionRegistry();
  const artefacts = new MemoryArtefactStore();
  const ledger = new MemoryLedger();
  const published = [version('hello', '1'), version('hello', '2'), version('bye', '1')];
  functions.versions.push(...published.map((v) => structuredClone(v)));
  const bakes: Array<[string, FunctionVersionInfo, string | null]> = [
    ['b1', published[0] as FunctionVersionInfo, null],
    ['b2', published[1] as FunctionVersionInfo, '1'],
    ['b3', published[2] as FunctionVersionInfo, null],
  ];
  for (const [bakeId, v, from] of bakes) {
    const manifest = await artefacts.putJson(manifestKey(bakeId), {
      bakeId,
      layer: { arn: v.layers[0] },
      recipe: { runtime: v.runtime },
      functions: [recorded(v)],
    });
    ledger.entries.push(released(bakeId, v.name, from, v.version, manifest));
  }
  functions.seedAlias('hello', 'live', '2');
  functions.seedAlias('bye', 'live', '1');
  return { functions, artefacts, ledger, clock: new FakeClock(), notifier: new RecordingNotifier() };
}

/** Change a published version in place (what only a hand, or a broken tool, does). */
function tamper(functions: MemoryFunctionRegistry, name: string, v: string, change: (v: FunctionVersionInfo) => void) {
  const found = functions.versions.find((x) => x.name === name && x.version === v);
  if (!found) throw new Error(`no ${name}:${v}`);
  change(found);
}

describe('drift', () => {
  it('finds nothing when everything is as released', async () => {
    // Prepare
    const deps = await world();

    // Act
    const report = await drift(deps);

    // Assess
    expect(report).toEqual({
      checkedAt: '2026-11-22T07:30:00.000Z',
      drifted: false,
      functions: [
        { name: 'bye', alias: 'live', bakeId: 'b3', expectedVersion: '1', liveVersion: '1', differences: [] },
        { name: 'hello', alias: 'live', bakeId: 'b2', expectedVersion: '2', liveVersion: '2', differences: [] },
      ],
    });
  });

  it('finds a layer swapped by hand: a new version on another layer, the alias moved to it', async () => {
    // Prepare: someone published hello:3 on layer 9 from the console and pointed live at it.
    const deps = await world();
    deps.functions.versions.push(version('hello', '3', { codeSha256: 'code-hello-2', layers: [LAYER(9)] }));
    const current = await deps.functions.getAlias('hello', 'live');
    await deps.functions.setAlias('hello', 'live', '3', current?.revisionId ?? null);

    // Act
    const report = await drift(deps);

    // Assess
    expect(report.drifted).toBe(true);
    expect(report.functions.find((f) => f.name === 'hello')?.differences).toEqual([
      { field: 'alias.version', expected: '2', live: '3' },
      { field: 'layers', expected: [LAYER(2)], live: [LAYER(9)] },
    ]);
    expect(report.functions.find((f) => f.name === 'bye')?.differences).toEqual([]);
  });

  it('finds a layer swapped on the released version itself', async () => {
    const deps = await world();
    tamper(deps.functions, 'hello', '2', (v) => {
      v.layers = [LAYER(2), 'arn:aws:lambda:eu-west-1:123456789012:layer:debug-tools:1'];
    });

    const report = await drift(deps);

    expect(report.functions.find((f) => f.name === 'hello')?.differences).toEqual([
      { field: 'layers', expected: [LAYER(2)], live: [LAYER(2), 'arn:aws:lambda:eu-west-1:123456789012:layer:debug-tools:1'] },
    ]);
  });

  it('finds an environment changed by hand, by variable names only', async () => {
    // Prepare: a variable added, and another's value changed (values are not compared).
    const deps = await world();
    tamper(deps.functions, 'hello', '2', (v) => {
      v.environment = { GREETING_STYLE: 'shouty', DEBUG: '1' };
    });

    // Act
    const report = await drift(deps);

    // Assess
    expect(report.functions.find((f) => f.name === 'hello')?.differences).toEqual([
      { field: 'environment.names', expected: ['GREETING_STYLE'], live: ['DEBUG', 'GREETING_STYLE'] },
    ]);
  });

  it('finds an alias moved by hand, weights left on it, and a handler, runtime or code changed', async () => {
    // Prepare
    const deps = await world();
    const bye = await deps.functions.getAlias('bye', 'live');
    await deps.functions.setAlias('bye', 'live', '1', bye?.revisionId ?? null, { '9': 0.2 });
    tamper(deps.functions, 'hello', '2', (v) => {
      v.handler = 'other.handler';
      v.runtime = 'nodejs22.x';
      v.codeSha256 = 'patched';
    });

    // Act
    const report = await drift(deps);

    // Assess
    expect(report.functions.find((f) => f.name === 'bye')?.differences).toEqual([
      { field: 'alias.weights', expected: {}, live: { '9': 0.2 } },
    ]);
    expect(report.functions.find((f) => f.name === 'hello')?.differences).toEqual([
      { field: 'codeSha256', expected: 'code-hello-2', live: 'patched' },
      { field: 'runtime', expected: 'provided.al2023', live: 'nodejs22.x' },
      { field: 'handler', expected: 'index.handler', live: 'other.handler' },
    ]);
  });

  it('expects the target of a rollback, compared with the manifest of the bake that released it', async () => {
    // Prepare: hello rolled back to 1 (and the ledger says so).
    const deps = await world();
    const current = await deps.functions.getAlias('hello', 'live');
    await deps.functions.setAlias('hello', 'live', '1', current?.revisionId ?? null);
    deps.ledger.entries.push({
      type: 'rolledBack',
      bakeId: 'b1',
      at: '2026-11-23T00:00:00.000Z',
      by: 'ana',
      name: 'hello',
      alias: 'live',
      from: '2',
      to: '1',
      fromWeights: {},
    });

    // Act
    const report = await drift(deps);

    // Assess
    expect(report.drifted).toBe(false);
    expect(report.functions.find((f) => f.name === 'hello')).toMatchObject({ bakeId: 'b1', expectedVersion: '1', liveVersion: '1' });
  });

  it('reports an alias deleted, and a manifest that cannot be found', async () => {
    const deps = await world();
    deps.functions.aliases.delete('bye:live');
    deps.artefacts.json.delete(manifestKey('b2'));

    const report = await drift(deps);

    expect(report.functions.map((f) => f.differences)).toEqual([
      [{ field: 'alias', expected: '1', live: null }],
      [{ field: 'manifest', expected: manifestKey('b2'), live: null }],
    ]);
  });

  it('falls back to the layer and runtime of a manifest written before the configuration was recorded', async () => {
    const deps = await world();
    const rewritten = await deps.artefacts.putJson(manifestKey('b2'), {
      layer: { arn: LAYER(2) },
      recipe: { runtime: 'provided.al2023' },
      functions: [{ name: 'hello', version: '2', codeSha256: 'code-hello-2', alias: 'live' }],
    });
    // As the ledger referenced the older manifest when it was written.
    for (const e of deps.ledger.entries) if (e.type === 'released' && e.bakeId === 'b2') e.manifest = rewritten;
    tamper(deps.functions, 'hello', '2', (v) => {
      v.layers = [LAYER(5)];
      v.environment = { ANYTHING: 'x' };
    });

    const report = await drift(deps);

    // Environment names were not recorded then: only the layer can be compared.
    expect(report.functions.find((f) => f.name === 'hello')?.differences).toEqual([
      { field: 'layers', expected: [LAYER(2)], live: [LAYER(5)] },
    ]);
  });
});

describe('driftCheck', () => {
  it('notifies when anything drifted, and stays quiet otherwise', async () => {
    // Prepare
    const clean = await world();
    const drifted = await world();
    tamper(drifted.functions, 'bye', '1', (v) => {
      v.environment = {};
    });

    // Act
    await driftCheck(clean);
    const report = await driftCheck(drifted);

    // Assess
    expect(clean.notifier.drifts).toEqual([]);
    expect(drifted.notifier.drifts).toEqual([report]);
    expect(report.drifted).toBe(true);
  });
});

describe('expectedAliases', () => {
  it('takes the last release or rollback of each alias', () => {
    const entries: LedgerEntry[] = [released('b1', 'a', null, '1'), released('b2', 'a', '1', '2'), released('b3', 'b', null, '4')];
    expect(expectedAliases(entries)).toEqual([
      { name: 'a', alias: 'live', version: '2', bakeId: 'b2' },
      { name: 'b', alias: 'live', version: '4', bakeId: 'b3' },
    ]);
  });
});

describe('history', () => {
  const entries: LedgerEntry[] = [
    released('b1', 'hello', null, '1'),
    {
      type: 'failed',
      bakeId: 'b2',
      at: '2026-11-22T08:00:00.000Z',
      state: 'Validate',
      error: 'ValidationFailedError',
      cause: 'case x\nmore',
      manifest: null,
      functions: ['hello', 'bye'],
    },
    released('b3', 'bye', null, '1'),
    {
      type: 'failed',
      bakeId: null,
      at: '2026-11-22T09:00:00.000Z',
      state: 'ResolveBake',
      error: 'BakeSpecError',
      cause: 'bad',
      manifest: null,
    },
    {
      type: 'rolledBack',
      bakeId: 'b1',
      at: '2026-11-23T00:00:00.000Z',
      by: 'ana',
      name: 'hello',
      alias: 'live',
      from: '2',
      to: '1',
      fromWeights: {},
    },
  ];

  it('lists the whole ledger oldest first, or the entries of one function', async () => {
    const ledger = new MemoryLedger();
    ledger.entries.push(...entries);

    expect(await history({}, { ledger })).toEqual(entries);
    expect((await history({ name: 'hello' }, { ledger })).map((e) => `${e.type}:${e.bakeId}`)).toEqual([
      'released:b1',
      'failed:b2',
      'rolledBack:b1',
    ]);
    expect((await history({ name: 'bye' }, { ledger })).map((e) => e.bakeId)).toEqual(['b2', 'b3']);
  });

  it('describes each entry on one line', () => {
    expect(entries.map(describeEntry)).toEqual([
      `2026-11-22T07:30:00.000Z  released     b1  hello:live (none) → 1  layer ${LAYER(1)}`,
      '2026-11-22T08:00:00.000Z  failed       b2  in Validate: ValidationFailedError: case x',
      `2026-11-22T07:30:00.000Z  released     b3  bye:live (none) → 1  layer ${LAYER(1)}`,
      '2026-11-22T09:00:00.000Z  failed       (unresolved)  in ResolveBake: BakeSpecError: bad',
      '2026-11-23T00:00:00.000Z  rolled back  b1  hello:live 2 → 1 by ana',
    ]);
  });
});
