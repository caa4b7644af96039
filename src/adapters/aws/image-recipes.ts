import { createHash } from 'node:crypto';
import type { ComponentConfiguration, CreateImageRecipeCommandInput, ImageRecipe } from '@aws-sdk/client-imagebuilder';
import { RecipeError } from '../../errors.ts';
import type { ResolvedRecipe } from '../../state.ts';

/** A UUID-shaped slice of a SHA-256 (Image Builder's client tokens take 1 to 36 characters). */
export function clientToken(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/**
 * The semantic version of the recipe of a bake key: `1.<a>.<b>`, where `a` and `b` are
 * the first two 28-bit slices (7 hex digits each) of the key. Image Builder takes each
 * part up to 2^30 - 1, so 56 bits of the key fit; two keys sharing them would meet as a
 * recipe whose `bakery:bakeKey` tag is another key, which is refused, never reused.
 */
export function recipeVersion(bakeKey: string): string {
  if (!/^[0-9a-f]{64}$/.test(bakeKey)) throw new RecipeError(`not a bake key: ${bakeKey}`);
  return `1.${Number.parseInt(bakeKey.slice(0, 7), 16)}.${Number.parseInt(bakeKey.slice(7, 14), 16)}`;
}

/** The name of the per-key recipes of a deployed recipe: `<deployed name>-by-key`. */
export const keyedRecipeName = (deployedName: string): string => `${deployedName}-by-key`;

/** `arn:…:image-recipe/<name>/<version>` → its parts. */
export function splitRecipeArn(arn: string): { prefix: string; name: string; version: string } {
  const m = /^(arn:[\w-]+:imagebuilder:[\w-]+:\d{12}:image-recipe)\/([^/]+)\/([^/]+)$/.exec(arn);
  if (!m?.[1] || !m[2] || !m[3]) throw new RecipeError(`not an image recipe ARN: ${arn}`);
  return { prefix: m[1], name: m[2], version: m[3] };
}

/** The parent image of a bake: its resolved base image, as an Amazon-managed image ARN of the recipe's region. */
export function parentImageArn(baseImage: string | undefined, deployed: ImageRecipe): string {
  const fallback = deployed.parentImage;
  if (baseImage === undefined) {
    if (!fallback) throw new RecipeError(`the deployed recipe ${deployed.arn ?? ''} has no parent image`);
    return fallback;
  }
  if (baseImage.startsWith('arn:')) return baseImage;
  const [, partition, , region] = (deployed.arn ?? '').split(':');
  return `arn:${partition}:imagebuilder:${region}:aws:image/${baseImage}`;
}

const paramMap = (component: ComponentConfiguration): Map<string, string> =>
  new Map((component.parameters ?? []).map((p) => [p.name ?? '', (p.value ?? []).join(',')]));

/**
 * The components of the deployed recipe with the bake's pins as their parameters. Each
 * of the bake's parameters must be one a deployed component is given (a value the
 * component never reads cannot be honoured: RecipeError). A parameter the bake does not
 * pin keeps its deployed value, except that a deployed value naming a pin that moved
 * follows it: a source location such as `…/v22.23.3/node-v22.23.3-linux-x64.tar.xz`
 * names NodeVersion, so a bake of 22.23.4 fetches `…/v22.23.4/node-v22.23.4-…`. What the
 * build fetched is still checked against the pinned SHA-256 on the instance.
 */
export function pinnedComponents(deployed: ImageRecipe, parameters: Record<string, string>): ComponentConfiguration[] {
  const components = deployed.components ?? [];
  const deployedValues = new Map<string, string>();
  for (const component of components) for (const [name, value] of paramMap(component)) deployedValues.set(name, value);
  const unknown = Object.keys(parameters).filter((name) => !deployedValues.has(name));
  if (unknown.length) {
    throw new RecipeError(
      `the deployed image recipe ${deployed.arn ?? ''} gives its components no parameter ${unknown.sort().join(', ')}, so this bake's value for it cannot be honoured`,
      {
        hint: 'Declare the parameter in the component document and give it a value in the recipe (layers/<recipe>/recipe.yml), then deploy.',
      },
    );
  }
  // Only values long enough to be unambiguous are followed in other parameters.
  const moved = Object.entries(parameters)
    .map(([name, value]) => [deployedValues.get(name) ?? '', value] as const)
    .filter(([from, to]) => from !== to && from.length >= 5);
  return components.map((component) => {
    if (!component.parameters?.length) return { componentArn: component.componentArn };
    return {
      componentArn: component.componentArn,
      parameters: component.parameters.map((p) => {
        const name = p.name ?? '';
        let value = (p.value ?? []).join(',');
        if (Object.hasOwn(parameters, name)) value = parameters[name] ?? value;
        else for (const [from, to] of moved) value = value.replaceAll(from, to);
        return { name, value: [value] };
      }),
    };
  });
}

/**
 * The CreateImageRecipe input of a bake key: the deployed recipe (same components,
 * block devices, working directory) with the bake's resolved inputs, tagged with the key.
 */
export function keyedRecipeInput(deployed: ImageRecipe, recipe: ResolvedRecipe, bakeKey: string): CreateImageRecipeCommandInput {
  const { name } = splitRecipeArn(deployed.arn ?? '');
  return {
    name: keyedRecipeName(name),
    semanticVersion: recipeVersion(bakeKey),
    description: `bakery recipe ${recipe.name} for bake key ${bakeKey}`,
    parentImage: parentImageArn(recipe.baseImage, deployed),
    components: pinnedComponents(deployed, recipe.parameters),
    ...(deployed.blockDeviceMappings ? { blockDeviceMappings: deployed.blockDeviceMappings } : {}),
    ...(deployed.workingDirectory ? { workingDirectory: deployed.workingDirectory } : {}),
    ...(deployed.additionalInstanceConfiguration ? { additionalInstanceConfiguration: deployed.additionalInstanceConfiguration } : {}),
    tags: { 'bakery:bakeKey': bakeKey, 'bakery:recipe': recipe.name },
    clientToken: clientToken(`bakery/recipe/${bakeKey}`),
  };
}

/** How an existing recipe version differs from the one a bake key needs; empty when it is the same. */
export function recipeDifferences(existing: ImageRecipe, wanted: CreateImageRecipeCommandInput): string[] {
  const out: string[] = [];
  const key = wanted.tags?.['bakery:bakeKey'];
  const theirs = existing.tags?.['bakery:bakeKey'];
  if (theirs !== key) out.push(`it is tagged bakery:bakeKey ${theirs ?? '(none)'}, this bake's key is ${key}`);
  if (existing.parentImage !== wanted.parentImage) {
    out.push(`parent image ${existing.parentImage ?? '(none)'} (this bake: ${wanted.parentImage})`);
  }
  const have = existing.components ?? [];
  const want = wanted.components ?? [];
  if (have.length !== want.length) out.push(`${have.length} components (this bake: ${want.length})`);
  for (let i = 0; i < Math.min(have.length, want.length); i++) {
    const a = have[i] as ComponentConfiguration;
    const b = want[i] as ComponentConfiguration;
    if (a.componentArn !== b.componentArn) out.push(`component ${i + 1} ${a.componentArn} (this bake: ${b.componentArn})`);
    const pa = paramMap(a);
    const pb = paramMap(b);
    for (const name of [...new Set([...pa.keys(), ...pb.keys()])].sort()) {
      if (pa.get(name) !== pb.get(name)) {
        out.push(`parameter ${name} ${pa.get(name) ?? '(unset)'} (this bake: ${pb.get(name) ?? '(unset)'})`);
      }
    }
  }
  return out;
}
