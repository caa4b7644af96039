/**
 * bin/ts-cache.mjs: the type-stripped source of bakery's modules is kept beside Node's
 * compile cache and handed to Node as plain JavaScript. It must be byte for byte what Node
 * itself compiles, follow a changed source at once, trust only this user's own entries,
 * and stay off with the compile cache (NODE_DISABLE_COMPILE_CACHE=1).
 */
import { execFile } from 'node:child_process';
import { link, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { BIN } from '../helpers/cli.ts';
import { NODE22 } from '../helpers/local-bake.ts';

const run = promisify(execFile);
const TS_CACHE = path.join(PROJECT_ROOT, 'bin', 'ts-cache.mjs');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-ts-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `bakery <args>` with its compile cache (and so the stripped sources) under `cache`. */
const bakery = (args: string[], cache: string, env: NodeJS.ProcessEnv = {}) =>
  run(NODE22, [BIN, ...args], { cwd: PROJECT_ROOT, env: { ...process.env, NODE_COMPILE_CACHE: cache, ...env } });

/** The stripped-source entries under a compile cache directory (one per module and source). */
async function entries(cache: string): Promise<string[]> {
  const [versioned] = await readdir(cache).catch(() => [] as string[]);
  if (!versioned) return [];
  const files = await readdir(path.join(cache, versioned, 'bakery-ts')).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('.js')).map((f) => path.join(cache, versioned, 'bakery-ts', f));
}

/** A child that enables the compile cache under `cache`, installs the hook and imports `module`, printing what it exports as `out`. */
const importWithCache = (cache: string, module: string) =>
  run(
    NODE22,
    [
      '--input-type=module',
      '-e',
      `const m = await import('node:module'); m.enableCompileCache(${JSON.stringify(cache)});
       (await import(${JSON.stringify(TS_CACHE)})).cacheTypeStripping();
       console.log((await import(${JSON.stringify(module)})).out);`,
    ],
    { cwd: dir },
  );

describe('the cache of type-stripped sources', { timeout: 60_000 }, () => {
  it("strips every module of src/ byte for byte as Node's own loader does", async () => {
    const { stdout } = await run(
      NODE22,
      [
        '--expose-internals',
        '--input-type=module',
        '-e',
        `import { readFileSync, readdirSync } from 'node:fs';
         import { createRequire } from 'node:module';
         import path from 'node:path';
         import { pathToFileURL } from 'node:url';
         const { stripAsNodeDoes } = await import(${JSON.stringify(TS_CACHE)});
         const internal = createRequire(import.meta.url)('internal/modules/typescript');
         const files = readdirSync(${JSON.stringify(path.join(PROJECT_ROOT, 'src'))}, { recursive: true, withFileTypes: true })
           .filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => path.join(e.parentPath, e.name));
         const differ = files.filter((file) => {
           const source = readFileSync(file, 'utf8');
           const url = pathToFileURL(file).href;
           return stripAsNodeDoes(source, url) !== internal.stripTypeScriptModuleTypes(source, url);
         });
         console.log(JSON.stringify({ files: files.length, differ }));`,
      ],
      { cwd: PROJECT_ROOT },
    );
    const result = JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as { files: number; differ: string[] };
    expect(result.files).toBeGreaterThan(100);
    expect(result.differ).toEqual([]);
  });

  it('keeps each module once, private to this user, and a later command runs from it with the same output', async () => {
    const cache = path.join(dir, 'cli');
    const first = await bakery(['--help'], cache);
    const kept = await entries(cache);
    const second = await bakery(['--help'], cache);
    expect(first.stderr).toBe('');
    expect(second.stdout).toBe(first.stdout);
    expect(second.stderr).toBe('');
    expect(kept.length).toBeGreaterThan(5);
    expect((await entries(cache)).sort()).toEqual([...kept].sort());
    expect((await stat(path.dirname(kept[0] as string))).mode & 0o777).toBe(0o700);
    expect((await stat(kept[0] as string)).mode & 0o777).toBe(0o600);
  });

  it('follows a changed source at once, runs from its entry, and trusts no entry with a second link', async () => {
    const cache = path.join(dir, 'fixture-cache');
    const module = path.join(dir, 'fixture.ts');
    await writeFile(module, "export const out: string = 'one';\n");
    expect((await importWithCache(cache, module)).stdout.trim()).toBe('one');
    const [one] = await entries(cache);
    expect(await readFile(one as string, 'utf8')).toContain("export const out         = 'one';");

    // Changed: a new entry, never the old one.
    await writeFile(module, "export const out: string = 'two';\n");
    expect((await importWithCache(cache, module)).stdout.trim()).toBe('two');
    const [two, ...more] = (await entries(cache)).filter((f) => f !== one);
    expect(more).toEqual([]);

    // The entry is what runs: this user's own file, one link.
    await writeFile(two as string, "export const out = 'from the cache';\n");
    expect((await importWithCache(cache, module)).stdout.trim()).toBe('from the cache');

    // Linked elsewhere too, it is not read: Node strips the source itself.
    await link(two as string, path.join(dir, 'second-link.js'));
    expect((await importWithCache(cache, module)).stdout.trim()).toBe('two');
  });

  it('stays off with the compile cache: NODE_DISABLE_COMPILE_CACHE=1 writes nothing', async () => {
    const cache = path.join(dir, 'disabled');
    const { stdout } = await bakery(['--version'], cache, { NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(await readdir(cache).catch(() => [])).toEqual([]);
  });
});
