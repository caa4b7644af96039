/**
 * Two bakes of the same spec at once on one state directory, as a loop of concurrent
 * pairs: one layer version per SHA-256, one function version per (code, configuration),
 * and no build deletes a tree the other is packaging.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalImageBuilder, treeSha256 } from '../../../src/adapters/local/image-builder.ts';
import { bakeKey } from '../../../src/cores/image.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import type { TaskCallbacks } from '../../../src/ports/callbacks.ts';
import { DirectoryRecipeCatalog, resolveRecipe } from '../../../src/recipes/recipe.ts';
import type { BuiltImage } from '../../../src/state.ts';
import { CACHED_START, makeWorkspace, NODE22, type Workspace } from '../../helpers/local-bake.ts';

const CHILD = path.join(PROJECT_ROOT, 'test', 'helpers', 'bake-child.ts');
const PAIRS = 3;

let cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.map((c) => c()));
  cleanups = [];
});

/** A recipe whose build takes a moment and writes a few files (enough to interleave two builds). */
async function writeSlowRecipe(layers: string): Promise<void> {
  const dir = path.join(layers, 'slow');
  await mkdir(path.join(dir, 'components'), { recursive: true });
  await writeFile(
    path.join(dir, 'recipe.yml'),
    'name: slow\nbaseImage: test-base/1.0.0\nruntime: provided.al2023\narchitecture: x86_64\ncomponents: [components/slow.yml]\nparameters: {}\nsources: { local: {}, aws: {} }\n',
  );
  await writeFile(
    path.join(dir, 'components', 'slow.yml'),
    `name: slow
schemaVersion: 1.0
parameters:
  - LayerRoot: { type: string, default: /opt/layer }
phases:
  - name: build
    steps:
      - name: Write
        action: ExecuteBash
        inputs:
          commands:
            - "mkdir -p '{{ LayerRoot }}/bin' && for i in $(seq 1 40); do echo $i > '{{ LayerRoot }}/bin/f'$i; done && sleep 0.2"
`,
  );
}

const noCallbacks: TaskCallbacks = { succeed: async () => {}, fail: async () => {} };

describe('concurrent bakes on one state directory', () => {
  it(`two cold builds of the same bake key never replace the tree the other handed back (${PAIRS} pairs)`, async () => {
    for (let pair = 0; pair < PAIRS; pair++) {
      // Prepare: two builders on one home, as two `bakery bake` processes would have.
      const dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-race-build-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      await writeSlowRecipe(path.join(dir, 'layers'));
      const home = new LocalHome(path.join(dir, 'home'));
      await home.ensure();
      const recipes = new DirectoryRecipeCatalog(path.join(dir, 'layers'));
      const recipe = await resolveRecipe(recipes, 'slow', {});
      const key = bakeKey(recipe);
      const builder = () => new LocalImageBuilder({ home, recipes, callbacks: noCallbacks, projectRoot: dir });
      // The tree each build handed back, as its PublishLayer would open it right away.
      const handedBack: Array<{ image: BuiltImage; ino: number }> = [];
      const build = async () => {
        const image = await builder().build({ bakeKey: key, rebuild: false, recipe });
        handedBack.push({ image, ino: (await stat(fileURLToPath(image.runtime.uri))).ino });
        return image;
      };

      // Act
      const images = await Promise.all([build(), build()]);

      // Assess
      const tree = fileURLToPath(images[0].runtime.uri);
      expect(images[1].runtime).toEqual(images[0].runtime);
      expect((await treeSha256(tree)).hex).toBe(images[0].runtime.sha256Hex);
      const final = (await stat(tree)).ino;
      expect(handedBack.map((h) => h.ino)).toEqual([final, final]);
      expect(images.filter((i) => i.cacheHit)).toHaveLength(1);
    }
  });

  it(`two \`bake\` processes of one spec make one layer version and one function version; the loser reuses them and releases unchanged or fails stale (${PAIRS} pairs)`, {
    timeout: 240_000,
  }, async () => {
    for (let pair = 0; pair < PAIRS; pair++) {
      // Prepare
      const ws: Workspace = await makeWorkspace();
      cleanups.push(() => ws.cleanup());
      const bake = (bakeId: string) =>
        new Promise<{ code: number | null; output: string }>((resolve) => {
          const child = spawn(NODE22, [...CACHED_START, CHILD, ws.dir, bakeId, '-', 'auto'], { cwd: PROJECT_ROOT });
          let output = '';
          child.stdout.on('data', (c: Buffer) => {
            output += c.toString();
          });
          child.stderr.on('data', (c: Buffer) => {
            output += c.toString();
          });
          child.on('close', (code) => resolve({ code, output }));
        });

      // Act
      const results = await Promise.all([bake(`race-${pair}-a`), bake(`race-${pair}-b`)]);

      // Assess
      // Both read "live (none)" and are approved to move it from there; the second to
      // reach Release finds the alias moved by the first and, since an approval binds
      // the live state it was shown, fails stale with nothing moved (#11.1). A bake that
      // started after the first released sees version 1 live and succeeds unchanged.
      const failed = results.filter((r) => r.code !== 0);
      expect(failed.length, results.map((r) => r.output).join('\n')).toBeLessThan(2);
      for (const r of failed) expect(r.output).toMatch(/✗ Release .*AliasConflictError/);
      // The loser says it reused the winner's layer, whether it found it first or lost the publish race.
      expect(results.filter((r) => /✓ PublishLayer .* hello-node22:1 published/.test(r.output))).toHaveLength(1);
      const layers = await ws.deps.layers.list('hello-node22');
      expect(new Set(layers.map((l) => l.codeSha256)).size).toBe(layers.length);
      expect(layers).toHaveLength(1);
      expect((await ws.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1']);
      const entries = await ws.deps.ledger.list();
      expect(entries.map((e) => e.type).sort()).toEqual(failed.length ? ['failed', 'released'] : ['released', 'released']);
      expect(await ws.deps.functions.getAlias('hello', 'live')).toMatchObject({ version: '1' });
    }
  });
});
