import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publishLayer } from '../../src/cores/layer.ts';
import { limitViolations, MAX_LAYERS_PER_FUNCTION, MAX_UNZIPPED_BYTES } from '../../src/cores/limits.ts';
import { publishVersions } from '../../src/cores/version.ts';
import { LayerPackagingError } from '../../src/errors.ts';
import { parseSpec } from '../../src/spec.ts';
import type { BuiltImage, ResolvedBake } from '../../src/state.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { builtImage, functionSpec, publishedLayer, resolvedBake, resolvedFunction } from '../helpers/fixtures.ts';
import { MemoryArtefactStore, MemoryFunctionRegistry, MemoryLayerRegistry } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

const extraArn = (n: number, name = 'extra') => `arn:aws:lambda:eu-west-1:123456789012:layer:${name}:${n}`;
const target = { runtime: 'provided.al2023', architecture: 'x86_64' };

describe("Lambda's limits, checked before anything is published", () => {
  let dir: string;
  let image: BuiltImage;
  let layers: MemoryLayerRegistry;
  let extraZip: Buffer;
  let extraUnzipped: number;
  const treeBytes = 'echo bootstrap\n'.length;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-limits-test-'));
    const tree = path.join(dir, 'tree');
    await mkdir(tree, { recursive: true });
    await writeFile(path.join(tree, 'bootstrap'), 'echo bootstrap\n');
    await chmod(path.join(tree, 'bootstrap'), 0o755);
    image = builtImage(pathToFileURL(tree).href);
    const extraTree = path.join(dir, 'extra');
    await mkdir(extraTree, { recursive: true });
    await writeFile(path.join(extraTree, 'data.txt'), 'x'.repeat(5000));
    const zipped = await zipTree(extraTree, path.join(dir, 'extra.zip'));
    extraZip = await readFile(zipped.file);
    extraUnzipped = zipped.unzippedSize;
    layers = new MemoryLayerRegistry();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** An existing layer version published by someone else. */
  function seedExtra(n: number, compat: { runtimes?: string[]; architectures?: string[]; name?: string } = {}): string {
    const arn = extraArn(n, compat.name);
    layers.seed(
      { name: compat.name ?? 'extra', arn, version: n, codeSha256: `extra-${n}`, size: extraZip.length },
      { compatibleRuntimes: compat.runtimes ?? ['provided.al2023'], architectures: compat.architectures ?? ['x86_64'], bytes: extraZip },
    );
    return arn;
  }

  function bakeWith(extra: string[], codeUnzipped = 1000): ResolvedBake {
    const bake = resolvedBake({ functions: [functionSpec('hello', [{ name: 'c' }], { layers: extra })] });
    bake.functions = [
      resolvedFunction('hello', { code: { uri: 'mem://c', sha256Hex: '', size: 10, sha256Base64: '', unzippedSize: codeUnzipped } }),
    ];
    return bake;
  }

  it('accepts 5 layers per function: the runtime layer and 4 extra', async () => {
    // Prepare
    const extra = [1, 2, 3, 4].map((n) => seedExtra(n));

    // Act
    const layer = await publishLayer({ bake: bakeWith(extra), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(layer.reused).toBe(false);
    expect(layers.published).toHaveLength(1);
  });

  it('refuses a 6th layer, naming the count, the limit and the fix; nothing is published', async () => {
    // Prepare
    const extra = [1, 2, 3, 4, 5].map((n) => seedExtra(n));

    // Act
    const error = await rejection(publishLayer({ bake: bakeWith(extra), image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain(
      'hello would have 6 layers (the runtime layer and 5 from functions[0].layers); Lambda allows at most 5 per function. Remove 1 from functions[0].layers.',
    );
    expect(layers.published).toEqual([]);
  });

  it('counts the unzipped size of the extra layers, measured from their content, in the 250 MB', async () => {
    // Prepare
    const extra = [seedExtra(1)];
    const fits = MAX_UNZIPPED_BYTES - treeBytes - extraUnzipped;

    // Act
    const over = await rejection(
      publishLayer({ bake: bakeWith(extra, fits + 1), image }, { artefacts: new MemoryArtefactStore(), layers }),
    );
    const published = layers.published.length;
    const at = await publishLayer({ bake: bakeWith(extra, fits), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(over).toBeInstanceOf(LayerPackagingError);
    expect(over.message).toContain('hello is 262,144,001 bytes (250.0 MiB) unzipped with its layers');
    expect(over.message).toContain(`${extra[0]} ${extraUnzipped.toLocaleString('en-US')} bytes`);
    expect(over.message).toContain('Lambda allows at most 262,144,000 bytes (250 MiB) for the code and all layers together');
    expect(published).toBe(0);
    expect(at.reused).toBe(false);
  });

  it('refuses an extra layer for another runtime or architecture, naming both', async () => {
    // Prepare
    const python = seedExtra(1, { runtimes: ['python3.12'] });
    const arm = seedExtra(2, { architectures: ['arm64'] });

    // Act
    const error = await rejection(publishLayer({ bake: bakeWith([python, arm]), image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain(`hello runs on provided.al2023, but layer ${python} is compatible with python3.12 only.`);
    expect(error.message).toContain(`hello runs on x86_64, but layer ${arm} is built for arm64 only.`);
    expect(layers.published).toEqual([]);
  });

  it('accepts an extra layer that declares no runtime or architecture', async () => {
    // Prepare
    const open = seedExtra(1, { runtimes: [], architectures: [] });

    // Act
    const layer = await publishLayer({ bake: bakeWith([open]), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(layer.version).toBe(1);
  });

  it('refuses an extra layer version that does not exist', async () => {
    // Act
    const error = await rejection(publishLayer({ bake: bakeWith([extraArn(7)]), image }, { artefacts: new MemoryArtefactStore(), layers }));

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain(`layer ${extraArn(7)} (functions[0].layers) does not exist or cannot be read`);
    expect(layers.published).toEqual([]);
  });

  it('does not reuse a version with the same bytes published for another runtime', async () => {
    // Prepare
    const first = await publishLayer({ bake: bakeWith([]), image }, { artefacts: new MemoryArtefactStore(), layers });
    const details = layers.details.get(first.arn);
    if (details) details.compatibleRuntimes = ['provided.al2'];

    // Act
    const second = await publishLayer({ bake: bakeWith([]), image }, { artefacts: new MemoryArtefactStore(), layers });

    // Assess
    expect(second.reused).toBe(false);
    expect(second.version).toBe(2);
    expect(second.codeSha256).toBe(first.codeSha256);
  });
});

describe('publishVersions and the extra layers', () => {
  let dir: string;
  let artefacts: MemoryArtefactStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-limits-version-'));
    artefacts = new MemoryArtefactStore();
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function bakeWith(extra: string[]): Promise<ResolvedBake> {
    await writeFile(path.join(dir, 'code.zip'), 'zip of hello');
    const ref = await artefacts.putFile('code/hello.zip', path.join(dir, 'code.zip'));
    return resolvedBake({
      functions: [functionSpec('hello', [{ name: 'c' }], { layers: extra })],
      resolved: [resolvedFunction('hello', { code: { ...ref, sha256Base64: 'hello-b64' } })],
    });
  }

  it('publishes the version on the runtime layer, then the extra layers in spec order', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    const layer = publishedLayer();

    // Act
    await publishVersions({ bake: await bakeWith([extraArn(2), extraArn(1)]), layer }, { artefacts, functions });

    // Assess
    expect(functions.published[0]?.layers).toEqual([layer.arn, extraArn(2), extraArn(1)]);
  });

  it('refuses more than 5 layers before publishing any version', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();

    // Act
    const error = await rejection(
      publishVersions({ bake: await bakeWith([1, 2, 3, 4, 5].map((n) => extraArn(n))), layer: publishedLayer() }, { artefacts, functions }),
    );

    // Assess
    expect(error).toBeInstanceOf(LayerPackagingError);
    expect(error.message).toContain('Lambda allows at most 5 per function');
    expect(functions.published).toEqual([]);
  });

  it('fails when the published version does not carry exactly the layers asked for', async () => {
    // Prepare
    const functions = new MemoryFunctionRegistry();
    const layer = publishedLayer();
    functions.storedLayers = (input) => input.layers.slice(0, 1);

    // Act
    const error = await rejection(publishVersions({ bake: await bakeWith([extraArn(1)]), layer }, { artefacts, functions }));

    // Assess
    expect(error.name).toBe('PublishVersionError');
    expect(error.message).toBe(`hello version 1 has layers ${layer.arn}, expected ${layer.arn}, ${extraArn(1)}`);
  });
});

describe('limitViolations', () => {
  const runtimeLayer = { label: 'rt', unzippedSize: 100, compatibleRuntimes: ['provided.al2023'], architectures: ['x86_64'] };

  it('finds nothing wrong at exactly the limits', () => {
    // Prepare
    const layersAtLimit = Array.from({ length: MAX_LAYERS_PER_FUNCTION }, (_, i) => ({ ...runtimeLayer, label: `l${i}`, unzippedSize: 0 }));

    // Act
    const problems = limitViolations(
      { name: 'f', where: 'functions[0].layers', codeUnzippedSize: MAX_UNZIPPED_BYTES, layers: layersAtLimit },
      target,
    );

    // Assess
    expect(problems).toEqual([]);
  });

  it('leaves the size alone when a size is not known', () => {
    // Act
    const problems = limitViolations(
      { name: 'f', where: 'w', codeUnzippedSize: MAX_UNZIPPED_BYTES * 2, layers: [{ ...runtimeLayer, unzippedSize: null }] },
      target,
    );

    // Assess
    expect(problems).toEqual([]);
  });
});

describe('the layers field of the spec', () => {
  const spec = (layers: unknown) => ({
    version: 1,
    name: 'hello',
    runtime: { recipe: 'node22' },
    layer: { name: 'hello-node22' },
    functions: [
      {
        name: 'hello',
        code: './src',
        handler: 'index.handler',
        layers,
        validation: { cases: [{ name: 'c', event: {}, expect: { result: null } }] },
      },
    ],
  });

  it('defaults to none, so existing specs stay valid', () => {
    // Act
    const parsed = parseSpec({ ...spec(undefined) }, 'bake.json');

    // Assess
    expect(parsed.functions[0]?.layers).toEqual([]);
  });

  it('takes layer version ARNs, and refuses anything else or the same one twice', () => {
    // Act
    const ok = parseSpec(spec([extraArn(1), 'arn:aws:lambda:local:000000000000:layer:tools:2']), 'bake.json');
    const notArn = () => parseSpec(spec(['arn:aws:lambda:eu-west-1:123456789012:layer:extra']), 'bake.json');
    const twice = () => parseSpec(spec([extraArn(1), extraArn(1)]), 'bake.json');

    // Assess
    expect(ok.functions[0]?.layers).toHaveLength(2);
    expect(notArn).toThrow('functions[0].layers[0]: expected a layer version ARN');
    expect(twice).toThrow('a layer version may be listed once');
  });
});
