import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LayerPackagingError } from '../errors.ts';
import type { LayerRegistry } from '../ports/lambda.ts';
import type { ResolvedBake } from '../state.ts';

/** Lambda's quota: function code plus all its layers, unzipped (250 MiB, as Lambda counts it). */
export const MAX_UNZIPPED_BYTES = 250 * 1024 * 1024;

/** Lambda's quota: layers per function. */
export const MAX_LAYERS_PER_FUNCTION = 5;

/** What the limits need to know of one layer of a function. */
export interface LayerFacts {
  /** The version's ARN, or a label for the layer this bake is about to publish. */
  label: string;
  /** Bytes once extracted; null when not known (the check is then left to PublishLayer). */
  unzippedSize: number | null;
  /** Empty: the layer declares no constraint. */
  compatibleRuntimes: string[];
  architectures: string[];
}

/** One function as the limits see it: its code, and its layers in the order Lambda gets them. */
export interface FunctionFacts {
  name: string;
  /** Where its extra layers are listed in the spec (`functions[0].layers`), for the fix. */
  where: string;
  codeUnzippedSize: number | null;
  layers: LayerFacts[];
}

const mib = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
const count = (bytes: number) => `${bytes.toLocaleString('en-US')} bytes`;

/**
 * Every way `fn` breaks Lambda's limits for a function of `runtime` on `architecture`,
 * as readable sentences that name the numbers and the fix; empty when it fits.
 */
export function limitViolations(fn: FunctionFacts, target: { runtime: string; architecture: string }): string[] {
  const problems: string[] = [];
  if (fn.layers.length > MAX_LAYERS_PER_FUNCTION) {
    const extra = fn.layers.length - MAX_LAYERS_PER_FUNCTION;
    problems.push(
      `${fn.name} would have ${fn.layers.length} layers (the runtime layer and ${fn.layers.length - 1} from ${fn.where}); ` +
        `Lambda allows at most ${MAX_LAYERS_PER_FUNCTION} per function. Remove ${extra} from ${fn.where}.`,
    );
  }
  const sizes = [fn.codeUnzippedSize, ...fn.layers.map((l) => l.unzippedSize)];
  if (sizes.every((s): s is number => s !== null)) {
    const total = sizes.reduce((a, b) => a + b, 0);
    if (total > MAX_UNZIPPED_BYTES) {
      const parts = [`code ${count(fn.codeUnzippedSize ?? 0)}`, ...fn.layers.map((l) => `${l.label} ${count(l.unzippedSize ?? 0)}`)];
      problems.push(
        `${fn.name} is ${count(total)} (${mib(total)}) unzipped with its layers (${parts.join(', ')}); ` +
          `Lambda allows at most ${count(MAX_UNZIPPED_BYTES)} (250 MiB) for the code and all layers together. ` +
          `Make the runtime tree or the code smaller, or drop a layer from ${fn.where}.`,
      );
    }
  }
  for (const layer of fn.layers) {
    if (layer.compatibleRuntimes.length > 0 && !layer.compatibleRuntimes.includes(target.runtime)) {
      problems.push(
        `${fn.name} runs on ${target.runtime}, but layer ${layer.label} is compatible with ${layer.compatibleRuntimes.join(', ')} only. ` +
          `Use a version published for ${target.runtime}, or remove it from ${fn.where}.`,
      );
    }
    if (layer.architectures.length > 0 && !layer.architectures.includes(target.architecture)) {
      problems.push(
        `${fn.name} runs on ${target.architecture}, but layer ${layer.label} is built for ${layer.architectures.join(', ')} only. ` +
          `Use a version published for ${target.architecture}, or remove it from ${fn.where}.`,
      );
    }
  }
  return problems;
}

/**
 * Throw one LayerPackagingError listing every violation of every function (and any
 * `unreadable` layer the spec names); nothing when all fit.
 */
export function checkLimits(
  functions: FunctionFacts[],
  target: { runtime: string; architecture: string },
  unreadable: Array<{ arn: string; where: string }> = [],
): void {
  const problems = [
    ...unreadable.map((u) => `layer ${u.arn} (${u.where}) does not exist or cannot be read by this account. Check its ARN and version.`),
    ...functions.flatMap((fn) => limitViolations(fn, target)),
  ];
  if (problems.length === 0) return;
  throw new LayerPackagingError(
    `the bake does not fit Lambda's limits; nothing was published:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    {
      hint: 'Fix the spec (or the recipe) and bake again.',
    },
  );
}

/** Whether a layer version may be attached to a function of `target` (an empty list declares no constraint). */
export function isCompatible(
  layer: { compatibleRuntimes: string[]; architectures: string[] },
  target: { runtime: string; architecture: string },
): boolean {
  return (
    (layer.compatibleRuntimes.length === 0 || layer.compatibleRuntimes.includes(target.runtime)) &&
    (layer.architectures.length === 0 || layer.architectures.includes(target.architecture))
  );
}

/** The extra layer versions the spec lists for `name` (none in specs written before the field). */
export function extraLayers(bake: ResolvedBake, name: string): { arns: string[]; where: string } {
  const index = bake.spec.functions.findIndex((f) => f.name === name);
  const where = index >= 0 ? `functions[${index}].layers` : `the layers of ${name} in the spec`;
  return { arns: bake.spec.functions[index]?.layers ?? [], where };
}

/**
 * The facts of every extra layer the spec names, by ARN. A version that does not exist
 * (or cannot be read) is a violation of its own. With `sizes`, each one is downloaded
 * to measure it unzipped (Lambda reports only the zipped size).
 */
export async function extraLayerFacts(
  bake: ResolvedBake,
  deps: { layers: LayerRegistry },
  options: { sizes: boolean },
): Promise<{ facts: Map<string, LayerFacts>; missing: string[] }> {
  const arns = [...new Set(bake.functions.flatMap((fn) => extraLayers(bake, fn.name).arns))];
  const facts = new Map<string, LayerFacts>();
  const missing: string[] = [];
  if (arns.length === 0) return { facts, missing };
  const work = await mkdtemp(path.join(os.tmpdir(), 'bakery-limits-'));
  try {
    for (const [index, arn] of arns.entries()) {
      const details = await deps.layers.describe(arn);
      if (!details) {
        missing.push(arn);
        continue;
      }
      let unzippedSize: number | null = null;
      if (options.sizes) {
        const file = path.join(work, `${index}.zip`);
        if (!(await deps.layers.download(arn, file))) {
          missing.push(arn);
          continue;
        }
        // The zip reader loads only here: the pre-checks, which read this module, measure nothing.
        const { unzippedSizeOf } = await import('../zip/inspect.ts');
        unzippedSize = await unzippedSizeOf(file);
        await rm(file, { force: true });
      }
      facts.set(arn, { label: arn, unzippedSize, compatibleRuntimes: details.compatibleRuntimes, architectures: details.architectures });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return { facts, missing };
}

/**
 * The limits' view of every function of the bake: its code (the zipped size stands in
 * for bakes resolved before the unzipped size was recorded), then `runtime` (the baked
 * layer), then its extra layers. Extra layers not in `facts` count, with nothing known.
 */
export function functionFacts(bake: ResolvedBake, runtime: LayerFacts, facts: Map<string, LayerFacts> = new Map()): FunctionFacts[] {
  return bake.functions.map((fn) => {
    const extra = extraLayers(bake, fn.name);
    return {
      name: fn.name,
      where: extra.where,
      codeUnzippedSize: runtime.unzippedSize === null ? null : (fn.code.unzippedSize ?? fn.code.size),
      layers: [
        runtime,
        ...extra.arns.map((arn) => facts.get(arn) ?? { label: arn, unzippedSize: null, compatibleRuntimes: [], architectures: [] }),
      ],
    };
  });
}

/** Where each unreadable layer is named in the spec. */
export function whereNamed(bake: ResolvedBake, arns: string[]): Array<{ arn: string; where: string }> {
  return bake.functions.flatMap((fn) => {
    const extra = extraLayers(bake, fn.name);
    return extra.arns.filter((arn) => arns.includes(arn)).map((arn) => ({ arn, where: extra.where }));
  });
}
