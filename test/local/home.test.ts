/**
 * BAKERY_HOME is bakery's own: a directory holding another tool's files is refused before
 * anything is written; an older home is recognised by its layout and adopted; a read-only
 * home still serves the read commands.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { ExitCodes } from '../../src/cli/program.ts';
import { StateDirError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { HOME_MARKER } from '../../src/local/home.ts';
import { runCli } from '../helpers/cli.ts';
import { type LocalBackend, localBackend, recordBake } from '../helpers/pins.ts';

const run = promisify(execFile);
const SPEC = path.join(PROJECT_ROOT, 'examples/hello/bake.json');

describe('the state directory', () => {
  let backend: LocalBackend;

  beforeEach(async () => {
    backend = await localBackend();
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  /** A directory as another tool left it. */
  async function foreignDir(): Promise<{ dir: string; before: string[] }> {
    const dir = path.join(backend.dir, 'other-tool');
    await mkdir(path.join(dir, 'cache'), { recursive: true });
    await writeFile(path.join(dir, 'config.toml'), 'x = 1\n');
    await writeFile(path.join(dir, 'ledger.jsonl'), '');
    return { dir, before: (await readdir(dir, { recursive: true })).sort() };
  }

  it('marks a home bakery creates with its format', async () => {
    expect(JSON.parse(await readFile(backend.home.path(HOME_MARKER), 'utf8'))).toEqual({ format: 1 });
  });

  it('refuses a non-empty directory that is not a bakery home, for a bake and for a read, writing nothing', async () => {
    const { dir, before } = await foreignDir();
    for (const args of [['bake', SPEC, '--approve'], ['status'], ['history']]) {
      const result = await runCli(args, { BAKERY_HOME: dir, BAKERY_USER: 'tester' });
      expect(result.code, args.join(' ')).toBe(ExitCodes.BadInput);
      expect(result.stderr).toContain(`StateDirError: ${dir} is not a bakery home`);
      expect(result.stderr).toContain('cache, config.toml');
      expect(result.stderr).not.toContain('internal error');
    }
    expect((await readdir(dir, { recursive: true })).sort()).toEqual(before);
  });

  it('refuses a marker it does not know: garbage, or a newer format', async () => {
    const dir = path.join(backend.dir, 'marked');
    await mkdir(dir);
    await writeFile(path.join(dir, HOME_MARKER), 'not json');
    await expect(new LocalHome(dir).ensure()).rejects.toThrow(StateDirError);
    await writeFile(path.join(dir, HOME_MARKER), '{"format":2}');
    await expect(new LocalHome(dir).ensure()).rejects.toThrow(`state directory ${dir} has format 2; this bakery reads format 1`);
    expect(await readdir(dir)).toEqual([HOME_MARKER]);
  });

  it("adopts an unmarked home with bakery's layout: read as it is, marked when next opened to write", async () => {
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    await rm(backend.home.path(HOME_MARKER));
    const status = await runCli(['status'], { BAKERY_HOME: backend.home.root });
    expect(status.code).toBe(ExitCodes.Success);
    await expect(readFile(backend.home.path(HOME_MARKER))).rejects.toMatchObject({ code: 'ENOENT' });
    await new LocalHome(backend.home.root).ensure({ create: true });
    expect(JSON.parse(await readFile(backend.home.path(HOME_MARKER), 'utf8'))).toEqual({ format: 1 });
  });

  it('takes an empty existing directory as a new home', async () => {
    const dir = path.join(backend.dir, 'empty');
    await mkdir(dir);
    await new LocalHome(dir).ensure();
    expect(await readdir(dir)).toEqual([HOME_MARKER]);
  });

  it('serves status, history, verify and drift from a read-only home', async () => {
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    const home = backend.home.root;
    const bakery = [process.execPath, path.join(PROJECT_ROOT, 'bin', 'bakery.mjs')];
    // Tests run as root here, which chmod does not stop: the home is bind-mounted
    // read-only in a private mount namespace instead (a write fails with EROFS).
    // Otherwise it is made read-only with chmod -R a-w.
    const asRoot = process.getuid?.() === 0;
    const readOnly = asRoot
      ? (args: string[]) =>
          run(
            'unshare',
            ['--mount', '--', 'sh', '-c', 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', home, ...bakery, ...args],
            {
              env: { ...process.env, BAKERY_HOME: home },
            },
          )
      : (args: string[]) => run(bakery[0] as string, [...bakery.slice(1), ...args], { env: { ...process.env, BAKERY_HOME: home } });
    if (!asRoot) await run('chmod', ['-R', 'a-w', home]);
    try {
      const probe = await run('unshare', [
        '--mount',
        '--',
        'sh',
        '-c',
        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && touch "$0/x"',
        home,
      ]).then(
        () => 'written',
        (error: { stderr?: string }) => error.stderr ?? '',
      );
      if (asRoot) expect(probe).toContain('Read-only file system');
      const commands = [['status'], ['history'], ['verify', 'bake-1'], ['drift']];
      const results = await Promise.all(
        commands.map((args) => readOnly(args).catch((error: { code?: number; stdout?: string; stderr?: string }) => error)),
      );
      for (const [i, result] of results.entries()) {
        const { stdout = '', stderr = '', code = 0 } = result as { stdout?: string; stderr?: string; code?: number };
        expect({ args: commands[i], code, stderr }).toEqual({ args: commands[i], code: 0, stderr: '' });
        expect(stdout).toContain(commands[i]?.[0] === 'drift' ? 'as released' : 'bake-1');
      }
    } finally {
      if (!asRoot) await run('chmod', ['-R', 'u+w', home]);
    }
  }, 120_000);
});
