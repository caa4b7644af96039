import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newBakeId, resolveBake } from '../../src/cores/resolve.ts';
import { BakeSpecError, UnknownRecipeError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import type { SourceReader } from '../../src/ports/sources.ts';
import { DirectoryRecipeCatalog } from '../../src/recipes/recipe.ts';
import type { BakeRequest } from '../../src/state.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { FakeClock, MemoryArtefactStore, sequentialIds } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

function validSpec(fn: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    name: 'hello',
    runtime: { recipe: 'node22', parameters: { NodeVersion: '22.99.0' } },
    layer: { name: 'hello-node22' },
    functions: [
      {
        name: 'hello',
        code: './src',
        handler: 'index.handler',
        environment: { STYLE: 'plain' },
        validation: { cases: [{ name: 'greets', event: {}, expect: { result: { ok: true } } }] },
        ...fn,
      },
    ],
  };
}

describe('resolveBake', () => {
  let dir: string;
  let specFile: string;
  let deps: {
    sources: SourceReader;
    recipes: DirectoryRecipeCatalog;
    artefacts: MemoryArtefactStore;
    clock: FakeClock;
    ids: ReturnType<typeof sequentialIds>;
  };
  const request = (extra: Partial<BakeRequest> = {}): BakeRequest => ({
    source: { type: 'file', path: 'bake.json' },
    trigger: { type: 'cli', user: 'tester' },
    ...extra,
  });
  const writeSpec = (spec: unknown) => writeFile(specFile, typeof spec === 'string' ? spec : JSON.stringify(spec));

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-resolve-test-'));
    specFile = path.join(dir, 'project', 'bake.json');
    await mkdir(path.join(dir, 'project', 'src'), { recursive: true });
    await writeFile(path.join(dir, 'project', 'src', 'index.mjs'), 'export const handler = async () => ({ ok: true });\n');
    deps = {
      // `where` is how the source is named in messages (a relative path, an s3:// URL).
      sources: { open: async () => ({ specFile, where: 'bake.json' }) },
      // The repository's own recipes, so the test follows their format.
      recipes: new DirectoryRecipeCatalog(path.join(PROJECT_ROOT, 'layers')),
      artefacts: new MemoryArtefactStore(),
      clock: new FakeClock('2026-11-22T07:30:00.123Z'),
      ids: { random: () => '3f9a77c1' },
    };
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('resolves the spec, the recipe with its overrides and the staged code', async () => {
    // Prepare
    await writeSpec(validSpec());
    const expectedZip = await zipTree(path.join(dir, 'project', 'src'), path.join(dir, 'expected.zip'));

    // Act
    const bake = await resolveBake(request({ options: { rebuild: true } }), deps);

    // Assess
    expect(bake).toMatchObject({
      bakeId: 'hello-20261122T073000-3f9a',
      requestedAt: '2026-11-22T07:30:00.123Z',
      trigger: { type: 'cli', user: 'tester' },
      rebuild: true,
      approval: { timeoutSeconds: 86_400, approvers: [] },
    });
    expect(bake.recipe).toMatchObject({
      name: 'node22',
      runtime: 'provided.al2023',
      architecture: 'x86_64',
      parameters: { NodeVersion: '22.99.0', NodeSha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      documents: [{ path: 'components/node22-runtime.yml', sha256Hex: expect.stringMatching(/^[0-9a-f]{64}$/) }],
      contentSha256Hex: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    expect(bake.functions).toEqual([
      {
        name: 'hello',
        handler: 'index.handler',
        memorySize: 256,
        timeout: 10,
        environment: { STYLE: 'plain' },
        alias: 'live',
        code: {
          uri: `mem://code/hello/${expectedZip.sha256Hex}.zip`,
          sha256Hex: expectedZip.sha256Hex,
          size: expectedZip.size,
          sha256Base64: expectedZip.sha256Base64,
          unzippedSize: expectedZip.unzippedSize,
        },
      },
    ]);
  });

  it('forms the bake id from the spec name, the UTC time to the second and 4 random characters', () => {
    // Act
    const id = newBakeId('hello', new Date('2026-01-02T03:04:05.678Z'), 'abcdef');

    // Assess
    expect(id).toBe('hello-20260102T030405-abcd');
  });

  it('keeps a generated bake id within the 80 characters a bake id may have, for the longest spec name', async () => {
    // Prepare
    const spec = validSpec();
    spec.name = 'n'.repeat(64);
    await writeSpec(spec);
    // The CLI generates the id before the execution starts and passes it in the request.
    const generated = newBakeId(spec.name as string, deps.clock.now(), '3f9a77c1');

    // Act
    const fromCli = await resolveBake(request({ bakeId: generated }), deps);
    const fromState = await resolveBake(request(), deps);

    // Assess
    expect(generated).toMatch(/^n+-20261122T073000-3f9a$/);
    expect(generated.length).toBe(80);
    expect(fromCli.bakeId).toBe(generated);
    expect(fromState.bakeId).toBe(generated);
  });

  it('keeps a bake id given in the request', async () => {
    // Prepare
    await writeSpec(validSpec());

    // Act
    const bake = await resolveBake(request({ bakeId: 'my_bake-1' }), deps);

    // Assess
    expect(bake.bakeId).toBe('my_bake-1');
  });

  it.each(['has space', 'a/b', '', 'x'.repeat(81)])('refuses the bake id %j', async (bakeId) => {
    // Prepare
    await writeSpec(validSpec());

    // Act
    const error = await rejection(resolveBake(request({ bakeId }), { ...deps, ids: sequentialIds() }));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.message).toContain(`bake id "${bakeId}" is not valid`);
    expect(deps.artefacts.files.size).toBe(0);
  });

  it('names the field of a spec that does not match the schema, and where the spec came from', async () => {
    // Prepare
    await writeSpec(validSpec({ handler: 'index', memorySize: 64 }));

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.name).toBe('BakeSpecError');
    expect(error.message).toContain('bake.json is not a valid bake spec');
    expect(error.message).toContain('functions[0].handler: expected "file.export"');
    expect(error.message).toContain('functions[0].memorySize:');
    expect(error.message).not.toContain(dir);
  });

  it('says a required section is missing', async () => {
    // Prepare
    const { layer: _layer, ...spec } = validSpec();
    await writeSpec(spec);

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.message).toMatch(/^ {2}layer: /m);
  });

  it('refuses a spec without validation cases', async () => {
    // Prepare
    await writeSpec(validSpec({ validation: { cases: [] } }));

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error.message).toContain('functions[0].validation.cases: at least one validation case');
  });

  it('refuses a spec that is not JSON, or not there', async () => {
    // Prepare
    await writeSpec('{ "version": 1,');

    // Act
    const notJson = await rejection(resolveBake(request(), deps));
    await rm(specFile);
    const missing = await rejection(resolveBake(request(), deps));

    // Assess
    expect(notJson).toBeInstanceOf(BakeSpecError);
    expect(notJson.message).toContain('is not valid JSON');
    expect(missing).toBeInstanceOf(BakeSpecError);
    expect(missing.message).toContain('bake spec not found');
  });

  it('refuses an unknown recipe, listing the known ones', async () => {
    // Prepare
    const spec = validSpec();
    spec.runtime = { recipe: 'node99' };
    await writeSpec(spec);

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(UnknownRecipeError);
    expect(error.name).toBe('UnknownRecipeError');
    expect(error.message).toContain('unknown runtime recipe "node99"');
    const known = await deps.recipes.list();
    expect(known).toContain('node22');
    expect((error as UnknownRecipeError).hint).toBe(`Known recipes: ${known.join(', ')}.`);
  });

  it('refuses a parameter override the recipe does not have, listing its parameters', async () => {
    // Prepare
    const spec = validSpec();
    spec.runtime = { recipe: 'node22', parameters: { NodeVersoin: '22.2.0' } };
    await writeSpec(spec);

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.message).toBe('runtime.parameters.NodeVersoin: recipe "node22" has no parameter "NodeVersoin"');
    expect((error as BakeSpecError).hint).toMatch(/^Its parameters are: .*\bNodeVersion\b.*\.$/);
  });

  it('refuses a code directory that does not exist, naming the function', async () => {
    // Prepare
    await writeSpec(validSpec({ code: './missing' }));

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.message).toContain(
      'bake.json cannot be baked; nothing was written:\n  - functions[0].code: "./missing" is not a directory',
    );
    expect(deps.artefacts.files.size).toBe(0);
  });

  it('refuses an empty code directory', async () => {
    // Prepare
    await mkdir(path.join(dir, 'project', 'empty'));
    await writeSpec(validSpec({ code: './empty' }));

    // Act
    const error = await rejection(resolveBake(request(), deps));

    // Assess
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(error.message).toContain('functions[0].code');
    expect(error.message).toContain('holds no file: there is nothing to deploy');
  });

  it('stages the same code under the same key on every run', async () => {
    // Prepare
    await writeSpec(validSpec());

    // Act
    const first = await resolveBake(request(), deps);
    const second = await resolveBake(request(), { ...deps, artefacts: new MemoryArtefactStore() });

    // Assess
    expect(second.functions[0]?.code).toEqual(first.functions[0]?.code);
  });
});
