import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_UNZIPPED_BYTES, publishLayer } from '../../src/cores/layer.ts';
import { LayerIntegrityError, LayerPackagingError } from '../../src/errors.ts';
import type { BuiltImage } from '../../src/state.ts';
import { sha256File } from '../../src/util/fsx.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { builtImage, resolvedBake, resolvedFunction } from '../helpers/fixtures.ts';
import { MemoryArtefactStore, MemoryLayerRegistry } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

describe('publishLayer', () => {
  let dir: string;
  let tree: string;
  let image: BuiltImage;
  const treeBytes = 'echo bootstrap\n'.length + 'console.log(1)\n'.length;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-layer-test-'));
    tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'runtime'), { recursive: true });
    await writeFile(path.join(tree, 'bootstrap'), 'echo bootstrap\n');
    await chmod(path.join(tree, 'bootstrap'), 0o755);
    await writeFile(path.join(tree, 'runtime', 'index.mjs'), 'console.log(1)\n');
    image = builtImage(pathToFileURL(tree).href);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes the zipped tree under the spec layer name, for the recipe runtime and architecture', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const expected = await zipTree(tree, path.join(dir, 'expected.zip'));

    // Act
    const layer = await publishLayer({ bake: resolvedBake(), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(layers.published).toHaveLength(1);
    expect(layers.published[0]).toMatchObject({
      name: 'hello-node22',
      sha256Base64: expected.sha256Base64,
      size: expected.size,
      compatibleRuntimes: ['provided.al2023'],
      architectures: ['x86_64'],
    });
    expect(layers.published[0]?.description).toContain('node22 runtime');
    expect(layer).toEqual({
      name: 'hello-node22',
      arn: 'arn:aws:lambda:test:000000000000:layer:hello-node22:1',
      version: 1,
      codeSha256: expected.sha256Base64,
      size: expected.size,
      sha256Hex: expected.sha256Hex,
      unzippedSize: treeBytes,
      reused: false,
    });
  });

  it('reuses the layer version with the same CodeSha256 without publishing', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const artefacts = new MemoryArtefactStore();
    const first = await publishLayer({ bake: resolvedBake(), image }, { artefacts, layers });

    // Act
    const second = await publishLayer({ bake: resolvedBake({ bakeId: 'hello-20261123T000000-beef' }), image }, { artefacts, layers });

    // Assess
    expect(layers.published).toHaveLength(1);
    expect(second).toEqual({ ...first, reused: true });
  });

  it('reuses the layer of a runtime zipped before by its SHA-256, without fetching or zipping the tree', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const artefacts = new MemoryArtefactStore();
    const first = await publishLayer({ bake: resolvedBake(), image }, { artefacts, layers });
    // Gone: a zip now would fail, so the reuse below cannot have zipped.
    await rm(tree, { recursive: true, force: true });

    // Act
    const second = await publishLayer({ bake: resolvedBake({ bakeId: 'hello-20261123T000000-beef' }), image }, { artefacts, layers });

    // Assess
    expect(layers.published).toHaveLength(1);
    expect(second).toEqual({ ...first, reused: true });
  });

  it('zips and publishes again when the layer version of a runtime zipped before is gone', async () => {
    // Prepare
    const artefacts = new MemoryArtefactStore();
    const first = await publishLayer({ bake: resolvedBake(), image }, { artefacts, layers: new MemoryLayerRegistry() });
    const layers = new MemoryLayerRegistry();

    // Act
    const second = await publishLayer({ bake: resolvedBake(), image }, { artefacts, layers });

    // Assess
    expect(layers.published).toHaveLength(1);
    expect(second).toMatchObject({ codeSha256: first.codeSha256, reused: false });
  });

  it('publishes a new version when the tree changed', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const artefacts = new MemoryArtefactStore();
    const first = await publishLayer({ bake: resolvedBake(), image }, { artefacts, layers });
    await writeFile(path.join(tree, 'runtime', 'index.mjs'), 'console.log(2)\n');
    // A changed tree is a new build, with its own SHA-256.
    const rebuilt = { ...image, runtime: { ...image.runtime, sha256Hex: '44'.repeat(32) } };

    // Act
    const second = await publishLayer({ bake: resolvedBake(), image: rebuilt }, { artefacts, layers });

    // Assess
    expect(layers.published).toHaveLength(2);
    expect(second.version).toBe(2);
    expect(second.codeSha256).not.toBe(first.codeSha256);
    expect(second.reused).toBe(false);
  });

  it('fails with LayerIntegrityError when Lambda stores other bytes than were built', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    layers.storedCodeSha256 = () => 'dHJ1bmNhdGVk';

    // Act
    const error = await rejection(publishLayer({ bake: resolvedBake(), image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerIntegrityError);
    expect(error.name).toBe('LayerIntegrityError');
    expect(error.message).toContain('stores CodeSha256 dHJ1bmNhdGVk');
    expect(error.message).toContain(`built zip is ${(await zipTree(tree, path.join(dir, 'x.zip'))).sha256Base64}`);
  });

  it('fails with LayerPackagingError over 250 MB unzipped with a function code, before publishing', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const bake = resolvedBake();
    const small = resolvedFunction('small', { code: { uri: 'mem://s', sha256Hex: '', size: 10, sha256Base64: '', unzippedSize: 10 } });
    const large = resolvedFunction('large', {
      code: { uri: 'mem://l', sha256Hex: '', size: 10, sha256Base64: '', unzippedSize: MAX_UNZIPPED_BYTES - treeBytes + 1 },
    });
    bake.functions = [small, large];

    // Act
    const error = await rejection(publishLayer({ bake, image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain('large is 262,144,001 bytes (250.0 MiB) unzipped with its layers');
    expect(error.message).toContain(`hello-node22 (the runtime layer) ${treeBytes} bytes`);
    expect(error.message).toContain('262,144,000 bytes (250 MiB)');
    expect(error.message).not.toContain('small is');
    expect(layers.published).toEqual([]);
  });

  it('accepts a layer exactly at the 250 MB limit', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    const bake = resolvedBake();
    bake.functions = [
      resolvedFunction('fits', {
        code: { uri: 'mem://f', sha256Hex: '', size: 10, sha256Base64: '', unzippedSize: MAX_UNZIPPED_BYTES - treeBytes },
      }),
    ];

    // Act
    const layer = await publishLayer({ bake, image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(layer.unzippedSize).toBe(treeBytes);
    expect(MAX_UNZIPPED_BYTES).toBe(250 * 1024 * 1024);
  });

  it('refuses a tree with a symlink as LayerPackagingError', async () => {
    // Prepare
    await symlink('/etc/passwd', path.join(tree, 'passwd'));
    const layers = new MemoryLayerRegistry();

    // Act
    const error = await rejection(publishLayer({ bake: resolvedBake(), image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain('symlink in the artefact tree: passwd');
    expect(layers.published).toEqual([]);
  });

  it('hands the registry a zip file whose bytes are the published digest', async () => {
    // Prepare
    const layers = new MemoryLayerRegistry();
    let digestAtPublish: string | undefined;
    const publish = layers.publish.bind(layers);
    layers.publish = async (input) => {
      digestAtPublish = (await sha256File(input.zipFile)).base64;
      return publish(input);
    };

    // Act
    const layer = await publishLayer({ bake: resolvedBake(), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(digestAtPublish).toBe(layer.codeSha256);
    expect(layers.published[0]?.sha256Base64).toBe(digestAtPublish);
  });
});
