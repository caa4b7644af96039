import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publishVersions } from '../../src/cores/version.ts';
import { PublishVersionError } from '../../src/errors.ts';
import type { ResolvedBake } from '../../src/state.ts';
import { functionSpec, publishedLayer, resolvedBake, resolvedFunction } from '../helpers/fixtures.ts';
import { MemoryArtefactStore, MemoryFunctionRegistry } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

describe('publishVersions', () => {
  let dir: string;
  let artefacts: MemoryArtefactStore;
  let bake: ResolvedBake;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-version-test-'));
    artefacts = new MemoryArtefactStore();
    const refs = [];
    for (const name of ['api', 'worker']) {
      const file = path.join(dir, `${name}.zip`);
      await writeFile(file, `zip of ${name}`);
      const ref = await artefacts.putFile(`code/${name}.zip`, file);
      refs.push(
        resolvedFunction(name, {
          code: { ...ref, sha256Base64: `${name}-b64` },
          environment: { ROLE: name },
          alias: name === 'api' ? 'live' : 'prod',
        }),
      );
    }
    bake = resolvedBake({
      functions: [functionSpec('api', [{ name: 'c' }]), functionSpec('worker', [{ name: 'c' }], { alias: 'prod' })],
      resolved: refs,
    });
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes one version per function, on the pinned layer, with the function configuration', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    const layer = publishedLayer();

    // Act
    const result = await publishVersions({ bake, layer }, { artefacts, functions });

    // Assess
    expect(result).toEqual({
      functions: [
        { name: 'api', version: '1', codeSha256: 'api-b64', alias: 'live' },
        { name: 'worker', version: '1', codeSha256: 'worker-b64', alias: 'prod' },
      ],
    });
    expect(functions.published[0]).toEqual({
      name: 'api',
      description: `bake ${bake.bakeId}`,
      codeFile: path.join(dir, 'api.zip'),
      codeSha256: 'api-b64',
      handler: 'index.handler',
      runtime: 'provided.al2023',
      architecture: 'x86_64',
      memorySize: 256,
      timeout: 10,
      environment: { ROLE: 'api' },
      layers: [layer.arn],
    });
  });

  it('fails with PublishVersionError when the stored CodeSha256 is not the staged code', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.storedCodeSha256 = (input) => (input.name === 'worker' ? 'tampered' : input.codeSha256);

    // Act
    const error = await rejection(publishVersions({ bake, layer: publishedLayer() }, { artefacts, functions }));

    // Assess
    expect(error).toBeInstanceOf(PublishVersionError);
    expect(error.name).toBe('PublishVersionError');
    expect(error.message).toBe('worker version 1 has CodeSha256 tampered, expected worker-b64');
  });

  it('fails with PublishVersionError when the version is not on the layer', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    functions.storedLayers = () => ['arn:aws:lambda:test:000000000000:layer:other:1'];
    const layer = publishedLayer();

    // Act
    const error = await rejection(publishVersions({ bake, layer }, { artefacts, functions }));

    // Assess
    expect(error).toBeInstanceOf(PublishVersionError);
    expect(error.message).toBe(`api version 1 is not on layer ${layer.arn}`);
    expect(functions.published).toHaveLength(1);
  });
});
