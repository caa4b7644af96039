import { createHash } from 'node:crypto';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { manifestKey } from '../../src/cores/record.ts';
import { verifyBake } from '../../src/cores/verify.ts';
import { NotFoundError } from '../../src/errors.ts';
import { type LocalBackend, localBackend, recordBake } from '../helpers/pins.ts';
import { rejection } from '../helpers/rejection.ts';

describe('verifyBake on the local backend', () => {
  let backend: LocalBackend;

  beforeEach(async () => {
    backend = await localBackend();
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  it('finds everything a released bake pinned identical to its manifest', async () => {
    // Prepare
    const first = await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    await recordBake(backend, { bakeId: 'bake-2', runtime: 'r2', code: 'two' });

    // Act
    const result = await verifyBake('bake-1', backend.deps);

    // Assess
    expect(result.mismatches).toEqual([]);
    expect(result.status).toBe('released');
    const subjects = result.checks.map((c) => `${c.subject} | ${c.property}`);
    expect(subjects).toEqual([
      'manifest | sha256 (as in the ledger)',
      `layer ${first.layer.arn} | exists`,
      `layer ${first.layer.arn} | CodeSha256 (as Lambda reports it)`,
      `layer ${first.layer.arn} | content SHA-256`,
      `layer ${first.layer.arn} | content size`,
      `layer ${first.layer.arn} | unzipped size`,
      'hello:1 | exists',
      'hello:1 | CodeSha256 (as Lambda reports it)',
      'hello:1 | layers (in order)',
      'hello:1 | runtime',
      'hello:1 | handler',
      'hello:1 | environment names',
      'hello:1 | memory size (MB)',
      'hello:1 | timeout (s)',
      'hello:1 | code content SHA-256',
    ]);
    expect(result.checks.find((c) => c.property === 'content SHA-256')?.actual).toBe(first.layer.codeSha256);
  });

  it('names the layer whose stored zip was altered', async () => {
    // Prepare
    const { layer } = await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    const stored = await backend.deps.layers.getStored(layer.arn);
    if (!stored) throw new Error('the layer is not stored');
    await appendFile(stored.zipPath, 'tampered');

    // Act
    const result = await verifyBake('bake-1', backend.deps);

    // Assess
    expect(result.mismatches.map((m) => `${m.subject} | ${m.property}`)).toEqual([
      `layer ${layer.arn} | content SHA-256`,
      `layer ${layer.arn} | content size`,
      `layer ${layer.arn} | unzipped size`,
    ]);
    expect(result.mismatches[0]).toMatchObject({ expected: layer.codeSha256, ok: false });
    expect(result.mismatches[0]?.actual).not.toBe(layer.codeSha256);
  });

  it('finds a function version whose code or layers no longer match, and one that is gone', async () => {
    // Prepare
    const { layer } = await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one', functions: ['hello', 'worker'] });
    const hello = await backend.deps.functions.getStored('hello', '1');
    if (!hello) throw new Error('hello:1 is not stored');
    await writeFile(hello.codePath, 'other code');
    const record = backend.home.path('functions', 'hello', 'versions', '1.json');
    const changed = JSON.parse(await readFile(record, 'utf8')) as { layers: string[] };
    changed.layers = ['arn:aws:lambda:local:000000000000:layer:other:9'];
    await writeFile(record, JSON.stringify(changed));
    const alias = await backend.deps.functions.getAlias('worker', 'live');
    await backend.deps.functions.deleteAlias('worker', 'live', alias?.revisionId ?? '');
    await backend.deps.functions.deleteVersion('worker', '1');

    // Act
    const result = await verifyBake('bake-1', backend.deps);

    // Assess
    expect(result.mismatches.map((m) => `${m.subject} | ${m.property}`)).toEqual([
      'hello:1 | layers (in order)',
      'hello:1 | code content SHA-256',
      'worker:1 | exists',
    ]);
    expect(result.mismatches[0]).toMatchObject({ expected: layer.arn, actual: 'arn:aws:lambda:local:000000000000:layer:other:9' });
    expect(result.mismatches[1]?.actual).toBe(createHash('sha256').update('other code').digest('base64'));
    expect(result.mismatches[2]).toMatchObject({ expected: 'yes', actual: 'no' });
  });

  it('finds a manifest altered after the ledger recorded its hash', async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    await appendFile(backend.home.path('artefacts', manifestKey('bake-1')), ' ');

    // Act
    const result = await verifyBake('bake-1', backend.deps);

    // Assess
    expect(result.mismatches.map((m) => `${m.subject} | ${m.property}`)).toEqual(['manifest | sha256 (as in the ledger)']);
  });

  it('verifies what a failed bake published', async () => {
    // Prepare
    const failed = await recordBake(backend, { bakeId: 'bake-f', runtime: 'r1', code: 'one', fail: true });

    // Act
    const result = await verifyBake('bake-f', backend.deps);

    // Assess
    expect(result.status).toBe('failed');
    expect(result.mismatches).toEqual([]);
    expect(result.checks.map((c) => c.subject)).toContain(`layer ${failed.layer.arn}`);
    expect(result.checks.map((c) => c.subject)).toContain('hello:1');
  });

  it('refuses a bake id it has no record of with NotFoundError', async () => {
    // Prepare
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });

    // Act
    const error = await rejection(verifyBake('bake-unknown', backend.deps));

    // Assess
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toContain('no bake bake-unknown');
    expect(path.basename(manifestKey('bake-unknown'))).toBe('bake-unknown.json');
  });
});
