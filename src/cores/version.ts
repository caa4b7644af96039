import { PublishVersionError } from '../errors.ts';
import type { FunctionRegistry } from '../ports/lambda.ts';
import type { ArtefactStore } from '../ports/storage.ts';
import type { PublishedFunctionVersion, PublishedLayer, PublishedVersions, ResolvedBake } from '../state.ts';
import { checkLimits, extraLayers, functionFacts } from './limits.ts';

/**
 * PublishVersion: one immutable function version per function, on the pinned layer and
 * the extra layers its spec lists. The layer count is checked again before the first
 * version is published (PublishLayer checked every limit against the same bake).
 */
export async function publishVersions(
  input: { bake: ResolvedBake; layer: PublishedLayer },
  deps: { artefacts: ArtefactStore; functions: FunctionRegistry },
): Promise<PublishedVersions> {
  const { bake, layer } = input;
  const runtime = { label: layer.arn, unzippedSize: null, compatibleRuntimes: [], architectures: [] };
  checkLimits(functionFacts(bake, runtime), { runtime: bake.recipe.runtime, architecture: bake.recipe.architecture });
  const published: PublishedFunctionVersion[] = [];
  for (const fn of bake.functions) {
    const layers = [layer.arn, ...extraLayers(bake, fn.name).arns];
    const codeFile = await deps.artefacts.fetchFile(fn.code);
    const version = await deps.functions.publishVersion({
      name: fn.name,
      description: `bake ${bake.bakeId}`,
      codeFile,
      codeSha256: fn.code.sha256Base64,
      handler: fn.handler,
      runtime: bake.recipe.runtime,
      architecture: bake.recipe.architecture,
      memorySize: fn.memorySize,
      timeout: fn.timeout,
      environment: fn.environment,
      layers,
    });
    if (version.codeSha256 !== fn.code.sha256Base64) {
      throw new PublishVersionError(
        `${fn.name} version ${version.version} has CodeSha256 ${version.codeSha256}, expected ${fn.code.sha256Base64}`,
      );
    }
    if (!version.layers.includes(layer.arn)) {
      throw new PublishVersionError(`${fn.name} version ${version.version} is not on layer ${layer.arn}`);
    }
    if (version.layers.join(' ') !== layers.join(' ')) {
      throw new PublishVersionError(
        `${fn.name} version ${version.version} has layers ${version.layers.join(', ')}, expected ${layers.join(', ')}`,
      );
    }
    published.push({ name: fn.name, version: version.version, codeSha256: version.codeSha256, alias: fn.alias });
  }
  return { functions: published };
}
