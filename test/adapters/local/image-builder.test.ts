import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalImageBuilder, treeSha256 } from '../../../src/adapters/local/image-builder.ts';
import { bakeKey } from '../../../src/cores/image.ts';
import { ImageBuildFailedError } from '../../../src/errors.ts';
import type { TaskCallbacks } from '../../../src/ports/callbacks.ts';
import { DirectoryRecipeCatalog, resolveRecipe } from '../../../src/recipes/recipe.ts';
import type { StepEvent } from '../../../src/recipes/toe.ts';
import type { Json } from '../../../src/state.ts';
import { currentOwner } from '../../../src/util/owner.ts';

/** A recipe whose build writes one file from a pinned parameter and a runtime file. */
async function writeTinyRecipe(layers: string): Promise<void> {
  const dir = path.join(layers, 'tiny');
  await mkdir(path.join(dir, 'components'), { recursive: true });
  await mkdir(path.join(dir, 'files'), { recursive: true });
  await writeFile(path.join(dir, 'files', 'hello.sh'), '#!/bin/sh\necho hello\n');
  await writeFile(
    path.join(dir, 'recipe.yml'),
    `name: tiny
baseImage: test-base/1.0.0
runtime: provided.al2023
architecture: x86_64
components: [components/tiny.yml]
parameters:
  Greeting: hello
  Fail: "no"
sources:
  local: { Files: "recipe:files" }
  aws: { Files: /opt/files }
`,
  );
  await writeFile(
    path.join(dir, 'components', 'tiny.yml'),
    `name: tiny
schemaVersion: 1.0
parameters:
  - Greeting: { type: string }
  - Fail: { type: string }
  - Files: { type: string }
  - LayerRoot: { type: string, default: /opt/layer }
phases:
  - name: build
    steps:
      - name: Write
        action: CreateFile
        inputs: [{ path: '{{ LayerRoot }}/greeting.txt', content: '{{ Greeting }}' }]
      - name: Copy
        action: CopyFile
        inputs: [{ source: '{{ Files }}/hello.sh', destination: '{{ LayerRoot }}/bin/' }]
  - name: test
    steps:
      - name: MaybeFail
        action: ExecuteBash
        inputs: { commands: ["echo 'the test phase says {{ Fail }}'", "test '{{ Fail }}' = no"] }
`,
  );
}

describe('LocalImageBuilder', () => {
  let root: string;
  let home: LocalHome;
  let recipes: DirectoryRecipeCatalog;
  let events: StepEvent[];
  let settled: Array<{ token: string; ok: boolean; output?: Json; error?: string; cause?: string }>;
  let builder: LocalImageBuilder;

  const callbacks: TaskCallbacks = {
    succeed: async (token, output) => {
      settled.push({ token, ok: true, output });
    },
    fail: async (token, error, cause) => {
      settled.push({ token, ok: false, error, cause });
    },
  };

  async function request(overrides: Record<string, string> = {}, rebuild = false) {
    const recipe = await resolveRecipe(recipes, 'tiny', overrides);
    return { bakeKey: bakeKey(recipe), rebuild, recipe };
  }
  const ran = () => events.filter((e) => e.status === 'succeeded').map((e) => e.step);

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-builder-'));
    await writeTinyRecipe(path.join(root, 'layers'));
    home = new LocalHome(path.join(root, 'home'));
    recipes = new DirectoryRecipeCatalog(path.join(root, 'layers'));
    events = [];
    settled = [];
    builder = new LocalImageBuilder({ home, recipes, callbacks, projectRoot: root, onStep: (e) => events.push(e) });
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('builds the tree under builds/<bakeKey>/ with the image, the record and the log', async () => {
    const req = await request();
    const image = await builder.build(req);
    const paths = builder.paths(req.bakeKey);
    expect(image.cacheHit).toBe(false);
    expect(await readFile(path.join(paths.tree, 'greeting.txt'), 'utf8')).toBe('hello');
    expect(await readFile(path.join(paths.tree, 'bin/hello.sh'), 'utf8')).toContain('echo hello');
    expect(image.runtime.sha256Hex).toBe((await treeSha256(paths.tree)).hex);
    expect(JSON.parse(await readFile(paths.image, 'utf8'))).toEqual(image);
    expect(JSON.parse(await readFile(paths.record, 'utf8'))).toMatchObject({
      bakeKey: req.bakeKey,
      baseImage: 'test-base/1.0.0',
      recipe: 'tiny',
    });
    expect(await readFile(paths.log, 'utf8')).toContain('the test phase says no');
    // No staging directory or scratch space is left behind.
    expect(await readdir(home.path('builds'))).toEqual([req.bakeKey]);
    expect((await readdir(paths.dir)).sort()).toEqual(['build-record.json', 'build.log', 'image.json', 'layer']);
  });

  it('tells build-step listeners each step as it runs, with the bake it is for', async () => {
    // Prepare
    const req = await request();
    const heard: Array<[string | null, string, string]> = [];
    const stop = builder.onBuildStep((bakeId, event) => heard.push([bakeId, `${event.phase} › ${event.step}`, event.status]));

    // Act
    await builder.build({ ...req, bakeId: 'bake-steps' });
    stop();
    await builder.build({ ...req, bakeId: 'bake-after', rebuild: true });

    // Assess
    expect(heard.length).toBeGreaterThan(2);
    expect(new Set(heard.map(([bakeId]) => bakeId))).toEqual(new Set(['bake-steps']));
    // The first build's steps, exactly as the builder's own progress saw them; none of the second's.
    expect(heard.map(([, step, status]) => `${step} ${status}`)).toEqual(
      events.slice(0, heard.length).map((e) => `${e.phase} › ${e.step} ${e.status}`),
    );
    expect(events.length).toBe(2 * heard.length);
    expect(heard.map(([, , status]) => status)).toContain('succeeded');
  });

  it('reuses the build with the same key as a cache hit, without running a step', async () => {
    const req = await request();
    const first = await builder.build(req);
    events = [];
    const second = await builder.build(req);
    expect(second.cacheHit).toBe(true);
    expect(ran()).toEqual([]);
    expect(second.runtime).toEqual(first.runtime);
    expect(second.buildRecord.finishedAt).toBe(first.buildRecord.finishedAt);
  });

  it('builds again with rebuild, and for a different key', async () => {
    const req = await request();
    await builder.build(req);
    events = [];
    const rebuilt = await builder.build({ ...req, rebuild: true });
    expect(rebuilt.cacheHit).toBe(false);
    expect(ran()).toEqual(['Write', 'Copy', 'MaybeFail']);

    events = [];
    const other = await request({ Greeting: 'bonjour' });
    expect(other.bakeKey).not.toBe(req.bakeKey);
    const image = await builder.build(other);
    expect(image.cacheHit).toBe(false);
    expect(await readFile(path.join(builder.paths(other.bakeKey).tree, 'greeting.txt'), 'utf8')).toBe('bonjour');
  });

  it('does not reuse a cached tree that changed since it was built', async () => {
    const req = await request();
    await builder.build(req);
    await writeFile(path.join(builder.paths(req.bakeKey).tree, 'greeting.txt'), 'tampered');
    events = [];
    const image = await builder.build(req);
    expect(image.cacheHit).toBe(false);
    expect(ran()).toContain('Write');
    expect(await readFile(path.join(builder.paths(req.bakeKey).tree, 'greeting.txt'), 'utf8')).toBe('hello');
  });

  it('never replaces a good build with a failed one, and leaves no staging behind', async () => {
    const req = await request();
    const good = await builder.build(req);
    // A rebuild under the same key that fails its test phase keeps the good build.
    const failing = await request({ Fail: 'yes' });
    const error = await builder.build({ ...failing, bakeKey: req.bakeKey, rebuild: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageBuildFailedError);
    expect((error as Error).message).toContain('layers/tiny/components/tiny.yml › test › MaybeFail failed (exit 1)');
    expect((error as Error).message).toContain('the test phase says yes');
    expect(await readdir(home.path('builds'))).toEqual([req.bakeKey]);
    expect(JSON.parse(await readFile(builder.paths(req.bakeKey).image, 'utf8'))).toEqual(good);
  });

  it("removes the staging of a build whose process was killed, and leaves a live build's alone", async () => {
    // Prepare
    const req = await request();
    const builds = home.path('builds');
    await mkdir(path.join(builds, '.staging-killed', 'layer'), { recursive: true });
    await writeFile(
      path.join(builds, '.staging-killed', 'owner.json'),
      JSON.stringify({ ...currentOwner(), startedAt: '2000-01-01T00:00:00.000Z' }),
    );
    await mkdir(path.join(builds, '.staging-running', 'layer'), { recursive: true });
    await writeFile(path.join(builds, '.staging-running', 'owner.json'), JSON.stringify(currentOwner()));
    await mkdir(path.join(builds, '.staging-just-started'), { recursive: true });

    // Act
    await builder.build(req);

    // Assess
    expect((await readdir(builds)).sort()).toEqual(['.staging-just-started', '.staging-running', req.bakeKey].sort());
    expect(await readdir(builder.paths(req.bakeKey).dir)).not.toContain('owner.json');
  });

  it('reports the outcome through the task token, as the Image Builder event handler does in AWS', async () => {
    const ok = await request();
    expect(await builder.start({ ...ok, bakeId: 'b1', taskToken: 'token-ok' })).toEqual({ buildId: `local-${ok.bakeKey.slice(0, 16)}` });
    const failing = await request({ Fail: 'yes' });
    await builder.start({ ...failing, bakeId: 'b2', taskToken: 'token-fail' });
    expect(settled).toHaveLength(2);
    expect(settled[0]).toMatchObject({ token: 'token-ok', ok: true, output: { bakeKey: ok.bakeKey, cacheHit: false } });
    expect(settled[1]).toMatchObject({ token: 'token-fail', ok: false, error: 'ImageBuildFailedError' });
    expect(settled[1]?.cause).toContain('› test › MaybeFail failed (exit 1)');
  });
});
