import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PruneItem, prune } from '../../src/cores/prune.ts';
import { rollback } from '../../src/cores/rollback.ts';
import { verifyBake } from '../../src/cores/verify.ts';
import { AliasConflictError } from '../../src/errors.ts';
import { ExecutionJournal, versionsInFlight } from '../../src/local/journal.ts';
import type { Json } from '../../src/state.ts';
import { MemoryArtefactStore, MemoryFunctionRegistry, MemoryLayerRegistry, MemoryLedger } from '../helpers/memory.ts';
import { type LocalBackend, localBackend, type RecordedBake, recordBake } from '../helpers/pins.ts';

const LAYER = 'hello-node22';
const summary = (items: PruneItem[]) => items.map((i) => `${i.kind} ${i.name}:${i.version} ${i.result}`);

describe('prune on the local backend', () => {
  let backend: LocalBackend;

  beforeEach(async () => {
    backend = await localBackend();
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  /** Four released bakes, each with its own runtime and code: versions 1 to 4 of hello and of the layer. */
  async function fourBakes() {
    const bakes = [];
    for (const n of [1, 2, 3, 4]) bakes.push(await recordBake(backend, { bakeId: `bake-${n}`, runtime: `r${n}`, code: `c${n}` }));
    return bakes;
  }

  it('lists, in a dry run, what no alias and none of the newest manifests uses, and deletes nothing', async () => {
    // Prepare
    await fourBakes();

    // Act
    const result = await prune({ keep: 2, apply: false }, backend.deps);

    // Assess
    expect(result.keptManifests).toEqual(['bake-3', 'bake-4']);
    expect(summary(result.items)).toEqual([
      'function hello:1 would delete',
      'function hello:2 would delete',
      'function hello:3 kept',
      'function hello:4 kept',
      `layer ${LAYER}:1 would delete`,
      `layer ${LAYER}:2 would delete`,
      `layer ${LAYER}:3 kept`,
      `layer ${LAYER}:4 kept`,
    ]);
    expect(result.items.find((i) => i.kind === 'function' && i.version === 4)?.keptBecause).toEqual(['alias live', 'pinned by bake-4']);
    expect(result.items.find((i) => i.kind === 'layer' && i.version === 3)?.keptBecause).toEqual(['used by hello:3', 'pinned by bake-3']);
    expect((await backend.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1', '2', '3', '4']);
    expect((await backend.deps.layers.listVersions(LAYER)).map((v) => v.version)).toEqual([1, 2, 3, 4]);
  });

  it('with apply deletes exactly those, and what stays still verifies', async () => {
    // Prepare
    await fourBakes();

    // Act
    const result = await prune({ keep: 2, apply: true }, backend.deps);

    // Assess
    expect(summary(result.items).filter((s) => !s.endsWith('kept'))).toEqual([
      'function hello:1 deleted',
      'function hello:2 deleted',
      `layer ${LAYER}:1 deleted`,
      `layer ${LAYER}:2 deleted`,
    ]);
    expect((await backend.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['3', '4']);
    expect((await backend.deps.layers.listVersions(LAYER)).map((v) => v.version)).toEqual([3, 4]);
    expect((await verifyBake('bake-3', backend.deps)).mismatches).toEqual([]);
    expect((await verifyBake('bake-4', backend.deps)).mismatches).toEqual([]);
    expect((await verifyBake('bake-1', backend.deps)).mismatches.map((m) => m.property)).toEqual(['exists', 'exists']);
    // A second run finds nothing more to delete.
    expect(summary((await prune({ keep: 2, apply: true }, backend.deps)).items).filter((s) => !s.endsWith('kept'))).toEqual([]);
  });

  it('keeps an old version an alias points at, and the layer it uses', async () => {
    // Prepare
    await fourBakes();
    await backend.deps.functions.setAlias('hello', 'stable', '1', null);

    // Act
    const result = await prune({ keep: 1, apply: true }, backend.deps);

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 kept',
      'function hello:2 deleted',
      'function hello:3 deleted',
      'function hello:4 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 deleted`,
      `layer ${LAYER}:3 deleted`,
      `layer ${LAYER}:4 kept`,
    ]);
    expect(result.items[0]?.keptBecause).toEqual(['alias stable']);
    expect(result.items[4]?.keptBecause).toEqual(['used by hello:1']);
  });

  it("does not count a failed bake towards a function's window, and keeps the rollback target before it", async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'c1' });
    await recordBake(backend, { bakeId: 'bake-2', runtime: 'r2', code: 'c2', fail: true });
    await recordBake(backend, { bakeId: 'bake-3', runtime: 'r3', code: 'c3' });

    // Act
    const result = await prune({ keep: 2, apply: true }, backend.deps);

    // Assess
    expect(result.keptManifests).toEqual(['bake-1', 'bake-3']);
    expect(summary(result.items)).toEqual([
      'function hello:1 kept',
      'function hello:2 deleted',
      'function hello:3 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 deleted`,
      `layer ${LAYER}:3 kept`,
    ]);
    expect(result.items[0]?.keptBecause).toEqual(['pinned by bake-1']);
    const back = await rollback({ name: 'hello', alias: 'live', by: 'tester' }, backend.deps);
    expect(back).toMatchObject({ from: '3', to: '1', changed: true });
  });

  it("counts each function's own releases: another function's bakes, failed or not, never use up hello's window", async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'c1' });
    await recordBake(backend, { bakeId: 'bake-2', runtime: 'r2', code: 'c2' });
    await recordBake(backend, { bakeId: 'world-1', runtime: 'r3', code: 'w1', functions: ['world'], fail: true });
    await recordBake(backend, { bakeId: 'world-2', runtime: 'r4', code: 'w2', functions: ['world'], fail: true });
    await recordBake(backend, { bakeId: 'world-3', runtime: 'r5', code: 'w3', functions: ['world'] });

    // Act
    const result = await prune({ keep: 2, apply: true }, backend.deps);

    // Assess
    expect(result.keptManifests).toEqual(['bake-1', 'bake-2', 'world-3']);
    expect(summary(result.items)).toEqual([
      'function hello:1 kept',
      'function hello:2 kept',
      'function world:1 deleted',
      'function world:2 deleted',
      'function world:3 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 kept`,
      `layer ${LAYER}:3 deleted`,
      `layer ${LAYER}:4 deleted`,
      `layer ${LAYER}:5 kept`,
    ]);
    expect((await verifyBake('bake-1', backend.deps)).mismatches).toEqual([]);
    expect(await rollback({ name: 'hello', alias: 'live', by: 'tester' }, backend.deps)).toMatchObject({ to: '1', changed: true });
  });

  it('keeps what a waiting bake published or reused, read from its journal, and says which bake', async () => {
    // Prepare
    const bakes = await fourBakes();
    const journal = await ExecutionJournal.start(
      backend.home,
      { bakeId: 'bake-9', source: { type: 'file', path: 'bake.json' }, trigger: { type: 'cli', user: 'tester' } },
      'bake.json',
    );
    // bake-9 reused bake-1's layer and function version (same runtime and code) and waits for approval.
    const reused = bakes[0] as RecordedBake;
    await journal.entered('RequestApproval', { layer: reused.layer, versions: reused.versions } as unknown as Json);
    const deps = { ...backend.deps, executions: { inFlight: () => versionsInFlight(backend.home) } };

    // Act
    const result = await prune({ keep: 1, apply: true }, deps);

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 kept',
      'function hello:2 deleted',
      'function hello:3 deleted',
      'function hello:4 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 deleted`,
      `layer ${LAYER}:3 deleted`,
      `layer ${LAYER}:4 kept`,
    ]);
    expect(result.items[0]?.keptBecause).toEqual(['in use by bake bake-9 (running)']);
    expect(result.items[4]?.keptBecause).toEqual(['used by hello:1', 'in use by bake bake-9 (running)']);
  });

  it('keeps every version of the layer a bake is publishing now: it may reuse any of them', async () => {
    // Prepare
    const bakes = await fourBakes();
    const journal = await ExecutionJournal.start(
      backend.home,
      { bakeId: 'bake-9', source: { type: 'file', path: 'bake.json' }, trigger: { type: 'cli', user: 'tester' } },
      'bake.json',
    );
    await journal.entered('PublishLayer', { bake: (bakes[0] as RecordedBake).bake } as unknown as Json);
    const deps = { ...backend.deps, executions: { inFlight: () => versionsInFlight(backend.home) } };

    // Act
    const result = await prune({ keep: 1, apply: true }, deps);

    // Assess
    expect(summary(result.items).filter((s) => s.startsWith('layer'))).toEqual([1, 2, 3, 4].map((v) => `layer ${LAYER}:${v} kept`));
    expect(result.items.find((i) => i.kind === 'layer' && i.version === 2)?.keptBecause).toEqual([
      'bake bake-9 is in PublishLayer (running) and may reuse it',
    ]);
    expect(summary(result.items).filter((s) => s.startsWith('function'))).toEqual([
      'function hello:1 deleted',
      'function hello:2 deleted',
      'function hello:3 deleted',
      'function hello:4 kept',
    ]);
  });

  it('re-checks under the publish lock: a version a bake took up after prune listed it is not deleted', async () => {
    // Prepare
    const bakes = await fourBakes();
    const taken = bakes[0] as RecordedBake;
    let calls = 0;
    // The first look (listing) sees nothing in flight; by the time each deletion re-checks, a bake holds version 1.
    const executions = {
      inFlight: async () => {
        calls += 1;
        return calls === 1
          ? { layers: [], functions: [], publishing: [] }
          : {
              layers: [{ arn: taken.layer.arn, bakeId: 'late', status: 'running' as const }],
              functions: [{ name: 'hello', version: '1', bakeId: 'late', status: 'running' as const }],
              publishing: [],
            };
      },
    };

    // Act
    const result = await prune({ keep: 1, apply: true }, { ...backend.deps, executions });

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 kept',
      'function hello:2 deleted',
      'function hello:3 deleted',
      'function hello:4 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 deleted`,
      `layer ${LAYER}:3 deleted`,
      `layer ${LAYER}:4 kept`,
    ]);
    expect(result.items[0]?.keptBecause).toEqual(['in use by bake late (running)']);
    expect((await backend.deps.layers.listVersions(LAYER)).map((v) => v.version)).toEqual([1, 4]);
  });

  it('looks a layer version up for reuse only under the publish lock that prune deletes under', async () => {
    // Prepare
    const bakes = await fourBakes();
    const layer = (bakes[0] as RecordedBake).layer;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let found: unknown = 'not yet';

    // Act: the lookup starts only once the holder is inside the lock.
    let entered: () => void = () => {};
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const holding = backend.deps.layers.withPublishLock(LAYER, () => {
      entered();
      return held;
    });
    await inside;
    const lookup = backend.deps.layers.findByCodeSha256(LAYER, layer.codeSha256).then((l) => {
      found = l?.version;
    });
    await new Promise((r) => setTimeout(r, 300));
    const whileHeld = found;
    release();
    await Promise.all([holding, lookup]);

    // Assess
    expect(whileHeld).toBe('not yet');
    expect(found).toBe(1);
  });

  it('keeps versions newer than every recorded bake: a bake may be publishing them now', async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'c1' });
    await recordBake(backend, { bakeId: 'bake-2', runtime: 'r2', code: 'c2' });
    // Published and then stopped before anything was recorded (waiting for approval, say).
    const ledger = backend.deps.ledger;
    backend.deps.ledger = { append: async () => {}, list: () => ledger.list(), endOf: async () => undefined };
    await recordBake(backend, { bakeId: 'bake-3', runtime: 'r3', code: 'c3', fail: true });
    backend.deps.ledger = ledger;

    // Act
    const result = await prune({ keep: 0, apply: true }, backend.deps);

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 deleted',
      'function hello:2 kept',
      'function hello:3 kept',
      `layer ${LAYER}:1 deleted`,
      `layer ${LAYER}:2 kept`,
      `layer ${LAYER}:3 kept`,
    ]);
    expect(result.items[2]?.keptBecause).toEqual(['newer than every recorded bake (one may be in progress)']);
    expect(result.items[5]?.keptBecause).toEqual(['used by hello:3', 'newer than every recorded bake (one may be in progress)']);
  });

  it('never reuses the number of a deleted version', async () => {
    // Prepare
    await fourBakes();
    await prune({ keep: 1, apply: true }, backend.deps);
    await backend.deps.functions.deleteAlias('hello', 'live', (await backend.deps.functions.getAlias('hello', 'live'))?.revisionId ?? '');
    await backend.deps.functions.deleteVersion('hello', '4');
    await backend.deps.layers.deleteVersion(`arn:aws:lambda:local:000000000000:layer:${LAYER}:4`);

    // Act
    const next = await recordBake(backend, { bakeId: 'bake-5', runtime: 'r5', code: 'c5' });

    // Assess
    expect(next.layer.version).toBe(5);
    expect(next.versions.functions[0]?.version).toBe('5');
  });
});

describe('prune with fakes', () => {
  function world() {
    return {
      ledger: new MemoryLedger(),
      artefacts: new MemoryArtefactStore(),
      layers: new MemoryLayerRegistry(),
      functions: new MemoryFunctionRegistry(),
    };
  }

  const arn = (v: number) => `arn:aws:lambda:test:000000000000:layer:${LAYER}:${v}`;

  /** hello versions 1 and 2 on layer versions 1 and 2, $LATEST on layer 1; one manifest pinning 2; live on 2. */
  async function arranged() {
    const w = world();
    for (const v of [1, 2]) {
      w.layers.seed(
        { name: LAYER, arn: arn(v), version: v, codeSha256: `l${v}`, size: 1 },
        { compatibleRuntimes: [], architectures: [], bytes: Buffer.from('') },
      );
      w.functions.versions.push({
        name: 'hello',
        version: String(v),
        codeSha256: `c${v}`,
        handler: 'index.handler',
        runtime: 'provided.al2023',
        layers: [arn(v)],
        environment: {},
      });
    }
    w.functions.versions.push({
      name: 'hello',
      version: '$LATEST',
      codeSha256: 'c0',
      handler: 'index.handler',
      runtime: 'provided.al2023',
      layers: [arn(1)],
      environment: {},
    });
    w.functions.seedAlias('hello', 'live', '2');
    const manifest = await w.artefacts.putJson('manifests/bake-2.json', {
      bakeId: 'bake-2',
      layer: { name: LAYER, arn: arn(2) },
      functions: [{ name: 'hello', version: '2', codeSha256: 'c2', alias: 'live' }],
    });
    await w.ledger.append({
      type: 'failed',
      bakeId: 'bake-2',
      at: '2026-11-22T08:00:00.000Z',
      state: 'Release',
      error: 'X',
      cause: 'y',
      manifest,
    });
    return w;
  }

  it('never lists or deletes $LATEST, and keeps the layer $LATEST uses', async () => {
    // Prepare
    const w = await arranged();

    // Act
    const result = await prune({ keep: 1, apply: true }, w);

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 deleted',
      'function hello:2 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 kept`,
    ]);
    expect(result.items[2]?.keptBecause).toEqual(['used by hello:$LATEST']);
    expect(w.functions.deletedVersions).toEqual([{ name: 'hello', version: '1' }]);
    expect(w.layers.deleted).toEqual([]);
  });

  it('keeps a layer whose function version could not be deleted, and reports the failure', async () => {
    // Prepare
    const w = await arranged();
    w.functions.versions.pop();
    w.functions.deleteVersion = async (name, version) => {
      throw new AliasConflictError(`${name}:${version} is in use by alias canary; it was not deleted`);
    };

    // Act
    const result = await prune({ keep: 1, apply: true }, w);

    // Assess
    expect(summary(result.items)).toEqual([
      'function hello:1 failed',
      'function hello:2 kept',
      `layer ${LAYER}:1 kept`,
      `layer ${LAYER}:2 kept`,
    ]);
    expect(result.items[0]?.error).toBe('hello:1 is in use by alias canary; it was not deleted');
    expect(result.items[2]?.keptBecause).toEqual(['used by hello:1']);
    expect(w.layers.deleted).toEqual([]);
  });

  it('keeps what a kept release pinned from its ledger entry when its manifest cannot be read', async () => {
    // Prepare
    const w = await arranged();
    w.functions.seedAlias('hello', 'live', '1');
    await w.ledger.append({
      type: 'released',
      bakeId: 'bake-1',
      at: '2026-11-22T09:00:00.000Z',
      trigger: { type: 'cli', user: 'tester' },
      layer: { arn: arn(1), version: 1, codeSha256: 'l1' },
      functions: [{ name: 'hello', alias: 'live', from: null, to: '1', changed: true }],
      manifest: { uri: 'memory://manifests/bake-1.json', sha256Hex: 'x', size: 1 },
    } as never);
    w.functions.seedAlias('hello', 'live', '2');

    // Act
    const result = await prune({ keep: 1, apply: true }, w);

    // Assess
    expect(result.keptManifests).toEqual(['bake-1']);
    expect(result.items.find((i) => i.kind === 'function' && i.version === 1)?.keptBecause).toEqual(['pinned by bake-1']);
    expect(w.functions.deletedVersions).toEqual([]);
  });
});
