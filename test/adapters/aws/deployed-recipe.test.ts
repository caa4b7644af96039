import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { DeployedRecipeImageBuilder, imageMatches } from '../../../src/adapters/aws/deployed-recipe.ts';
import { RecipeError } from '../../../src/errors.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import type { ImageBuilder, ImageBuildStart } from '../../../src/ports.ts';
import { DirectoryRecipeCatalog } from '../../../src/recipes/recipe.ts';
import { resolvedBake } from '../../helpers/fixtures.ts';
import { rejection } from '../../helpers/rejection.ts';

class RecordingBuilder implements ImageBuilder {
  readonly started: ImageBuildStart[] = [];
  async start(request: ImageBuildStart) {
    this.started.push(request);
    return { buildId: 'arn:aws:imagebuilder:eu-west-1:123456789012:image/bakery-dev-node22/1.0.0/1' };
  }
}

const deployed = async () =>
  parseYaml(await readFile(path.join(PROJECT_ROOT, 'layers', 'node22', 'recipe.yml'), 'utf8')) as {
    baseImage: string;
    parameters: Record<string, string>;
  };

async function request(change: { parameters?: Record<string, string>; baseImage?: string } = {}): Promise<ImageBuildStart> {
  const yml = await deployed();
  const recipe = {
    ...resolvedBake().recipe,
    parameters: { ...yml.parameters, ...change.parameters },
    baseImage: change.baseImage ?? yml.baseImage,
  };
  return { bakeId: 'b', bakeKey: 'k', rebuild: false, recipe, taskToken: 't' };
}

describe('imageMatches', () => {
  it.each([
    ['al2023/x.x.x', 'al2023/2025.11.14', true],
    ['al2023/2025.x.x', 'al2023/2025.11.14', true],
    ['al2023/2025.6.0', 'al2023/2025.6.0', true],
    ['al2023/2025.6.0', 'al2023/2025.6.1', false],
    ['al2023/x.x.x', 'other/2025.11.14', false],
  ])('%s may start from %s: %s', (parent, wanted, matches) => {
    expect(imageMatches(parent, wanted)).toBe(matches);
  });
});

describe('DeployedRecipeImageBuilder', () => {
  const catalog = new DirectoryRecipeCatalog(path.join(PROJECT_ROOT, 'layers'));

  it('starts the build when the bake asks for the deployed pins (a wildcard base image resolved to a version included)', async () => {
    const inner = new RecordingBuilder();
    const yml = await deployed();
    const baseImage = yml.baseImage.endsWith('/x.x.x') ? yml.baseImage.replace('x.x.x', '2025.11.14') : yml.baseImage;
    await new DeployedRecipeImageBuilder(inner, catalog).start(await request({ baseImage }));
    expect(inner.started).toHaveLength(1);
  });

  it('refuses a build of other pins than the pipeline was deployed with, saying what differs and what to do', async () => {
    // Prepare: a scheduled bake found Node.js 22.99.0.
    const inner = new RecordingBuilder();
    const wanted = await request({ parameters: { NodeVersion: '22.99.0', NodeSha256: 'ab'.repeat(32) } });

    // Act
    const error = await rejection(new DeployedRecipeImageBuilder(inner, catalog).start(wanted));

    // Assess
    expect(error).toBeInstanceOf(RecipeError);
    expect(error.message).toContain(`NodeVersion 22.99.0 (deployed: ${(await deployed()).parameters.NodeVersion})`);
    expect((error as RecipeError).hint).toContain('layers/node22/recipe.yml');
    expect(inner.started).toEqual([]);

    const otherImage = await rejection(new DeployedRecipeImageBuilder(inner, catalog).start(await request({ baseImage: 'ubuntu/x.x.x' })));
    expect(otherImage.message).toContain('baseImage ubuntu/x.x.x');
  });
});
