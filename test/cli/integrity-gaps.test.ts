/**
 * `bakery verify` checks every field the manifest records, and `bakery drift` checks the
 * manifest's own hash and the pinned layer's record and bytes: on a real local backend
 * whose stored versions, manifest and layer are changed behind bakery's back.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCodes } from '../../src/cli/program.ts';
import type { DriftReport } from '../../src/ports/notifier.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { type LocalBackend, localBackend, type RecordedBake, recordBake } from '../helpers/pins.ts';

describe('integrity checks that miss nothing the manifest records', () => {
  let backend: LocalBackend;
  let baked: RecordedBake;
  let bakery: (args: string[]) => Promise<CliResult>;

  beforeEach(async () => {
    backend = await localBackend();
    baked = await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    bakery = (args) => runCli(args, { BAKERY_USER: 'tester', BAKERY_HOME: backend.home.root });
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  /** Change the stored configuration of hello's version 1, as someone editing the state directory would. */
  async function changeVersion(change: (stored: Record<string, unknown>) => Record<string, unknown>) {
    const file = backend.home.path('functions', 'hello', 'versions', '1.json');
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...stored, ...change(stored) }));
  }

  it('verify is identical before anything changes, and checks handler, runtime, environment names, memory and timeout', async () => {
    const result = await bakery(['verify', 'bake-1']);
    expect(result.code).toBe(ExitCodes.Success);
    for (const property of ['handler', 'runtime', 'environment names', 'memory size (MB)', 'timeout (s)', 'layers (in order)']) {
      expect(result.stdout).toContain(`✓ hello:1  ${property} `);
    }
  });

  it.each([
    ['the handler', (_v: Record<string, unknown>) => ({ handler: 'evil.handler' }), 'handler'],
    [
      'an environment variable added',
      (v: Record<string, unknown>) => ({ environment: { ...(v.environment as object), INJECTED: '1' } }),
      'environment names',
    ],
    ['the runtime', (_v: Record<string, unknown>) => ({ runtime: 'nodejs18.x' }), 'runtime'],
    ['the memory size', (_v: Record<string, unknown>) => ({ memorySize: 10240 }), 'memory size (MB)'],
    ['the timeout', (_v: Record<string, unknown>) => ({ timeout: 900 }), 'timeout (s)'],
    [
      'the layer order',
      (v: Record<string, unknown>) => ({ layers: [...(v.layers as string[]), 'arn:aws:lambda:local:000000000000:layer:x:1'] }),
      'layers (in order)',
    ],
  ])('verify exits 1 when %s of the version changed', async (_what, change, property) => {
    // Prepare
    await changeVersion(change);

    // Act
    const result = await bakery(['verify', 'bake-1']);

    // Assess
    expect(result.code).toBe(ExitCodes.Failed);
    expect(result.stdout).toContain(`✗ hello:1  ${property}: manifest `);
    expect(result.stderr).toContain(`  - hello:1: ${property} is `);
  });

  it('drift blames a changed manifest, not what is live', async () => {
    // Prepare: the manifest now says version 1 ran another handler; live is as released.
    const entry = JSON.parse((await readFile(backend.home.path('ledger.jsonl'), 'utf8')).split('\n')[0] ?? '') as LedgerEntry & {
      type: 'released';
    };
    const file = fileURLToPath(entry.manifest.uri);
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { functions: Array<{ handler: string }> };
    for (const fn of manifest.functions) fn.handler = 'tampered.handler';
    await writeFile(file, JSON.stringify(manifest));

    // Act
    const result = await bakery(['drift', '--json']);

    // Assess
    expect(result.code).toBe(ExitCodes.Failed);
    const report = JSON.parse(result.stdout) as DriftReport;
    expect(report.functions[0]?.differences).toEqual([
      { field: 'manifest.sha256', expected: entry.manifest.sha256Hex, live: expect.any(String) },
    ]);
  });

  it('drift finds a changed layer record and a changed layer zip', async () => {
    // Prepare
    const stored = await backend.deps.layers.getStored(baked.layer.arn);
    if (!stored) throw new Error('expected the stored layer');
    const clean = await bakery(['drift']);
    await appendFile(stored.zipPath, 'x');
    const zip = await bakery(['drift', '--json']);
    const recordFile = backend.home.path('layers', baked.layer.name, `${baked.layer.version}.json`);
    const record = JSON.parse(await readFile(recordFile, 'utf8')) as { codeSha256: string };
    await writeFile(recordFile, JSON.stringify({ ...record, codeSha256: 'AAAA' }));
    const both = await bakery(['drift', '--json']);

    // Assess
    expect(clean.code).toBe(ExitCodes.Success);
    expect(zip.code).toBe(ExitCodes.Failed);
    const fields = (r: CliResult) => (JSON.parse(r.stdout) as DriftReport).functions.flatMap((f) => f.differences.map((d) => d.field));
    expect(fields(zip)).toEqual(['layer.content']);
    expect(fields(both)).toEqual(['layer.codeSha256', 'layer.content']);
  });
});
