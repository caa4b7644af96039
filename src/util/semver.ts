/**
 * Node.js version pins, shared by the patch core and the patch resolvers of both
 * backends (which may not import from cores).
 */
import type { ResolvedRecipe } from '../state.ts';

/** `22.23.3` → [22, 23, 3]; undefined when not a plain `major.minor.patch`. */
export function semver(version: string): [number, number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** Order of two `major.minor.patch` versions (negative: `a` is older). */
export function compareSemver(a: [number, number, number], b: [number, number, number]): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/**
 * What a Node.js recipe pins (`NodeVersion` and `NodeSha256`, the SHA-256 of the node
 * binary): its release line is the major version. Undefined for a recipe that pins no
 * Node.js, which a Node.js patch resolver then leaves alone.
 */
export function nodePins(
  recipe: ResolvedRecipe,
): { version: [number, number, number]; sha256: string; platform: 'linux-x64' | 'linux-arm64' } | undefined {
  const version = semver(recipe.parameters.NodeVersion ?? '');
  const sha256 = recipe.parameters.NodeSha256;
  if (!version || sha256 === undefined) return undefined;
  return { version, sha256, platform: recipe.architecture === 'arm64' ? 'linux-arm64' : 'linux-x64' };
}
