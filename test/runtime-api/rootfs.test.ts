/**
 * The minimal base of every private root: built once per host into the user's cache
 * directory and reused by every root of every process, never by a directory this user
 * does not own alone.
 */
import { execFile } from 'node:child_process';
import { chmod, lstat, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';

const run = promisify(execFile);
const ROOTFS = path.join(PROJECT_ROOT, 'src', 'runtime-api', 'rootfs.ts');
const uid = process.getuid?.() ?? 0;

let tmp: string;
beforeEach(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'bakery-rootfs-test-'));
  vi.stubEnv('TMPDIR', tmp);
  vi.resetModules();
});
afterEach(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A fresh copy of the module (its once-per-process memo empty), as a new process has. */
const rootfs = async () => (await import('../../src/runtime-api/rootfs.ts')) as typeof import('../../src/runtime-api/rootfs.ts');

describe('the base tree', () => {
  it('is built once into <tmpdir>/bakery-base-<uid>, 0700, and a second process reuses it as it is', async () => {
    const tree = await (await rootfs()).baseTree();
    const cache = path.join(tmp, `bakery-base-${uid}`);
    expect(path.dirname(tree)).toBe(cache);
    expect((await stat(cache)).mode & 0o777).toBe(0o700);
    expect((await lstat(path.join(tree, 'usr', 'bin', 'sh'))).isFile()).toBe(true);
    expect((await readdir(path.join(tree, 'usr', 'lib64'))).some((name) => name.startsWith('libc.so'))).toBe(true);
    const before = await stat(path.join(tree, 'usr', 'bin', 'sh'));

    // Another process, same host: the same tree, not rebuilt (same inode), and no build left aside.
    const { stdout } = await run(
      process.execPath,
      ['--input-type=module', '-e', `import { baseTree } from ${JSON.stringify(ROOTFS)}; console.log(await baseTree());`],
      { env: { ...process.env, TMPDIR: tmp } },
    );
    expect(stdout.trim()).toBe(tree);
    expect((await stat(path.join(tree, 'usr', 'bin', 'sh'))).ino).toBe(before.ino);
    expect((await readdir(cache)).filter((name) => name.startsWith('.build-'))).toEqual([]);
  });

  it('lends every private root the same tree, bound read-only over the root’s own empty /usr', async () => {
    const { baseTree, buildRoot } = await rootfs();
    const [first, second] = await Promise.all([
      buildRoot(await mkdtemp(path.join(tmp, 'root-'))),
      buildRoot(await mkdtemp(path.join(tmp, 'root-'))),
    ]);
    const tree = await baseTree();
    for (const root of [first, second]) {
      expect(root.binds).toEqual([{ from: path.join(tree, 'usr'), to: path.join(root.root, 'usr') }]);
      expect(await readdir(path.join(root.root, 'usr'))).toEqual([]);
      expect(await readFile(path.join(root.root, 'etc', 'passwd'), 'utf8')).toContain('sbx_user1051:x:993:990');
    }
  });

  it('is not trusted from a cache directory others may write: a private one is used instead', async () => {
    const cache = path.join(tmp, `bakery-base-${uid}`);
    await (await rootfs()).baseTree();
    await chmod(cache, 0o777);
    vi.resetModules();
    const tree = await (await rootfs()).baseTree();
    expect(path.dirname(tree)).not.toBe(cache);
    expect(path.basename(path.dirname(tree))).toMatch(/^bakery-base-(?!\d+$)/);
    expect((await lstat(path.join(tree, 'usr', 'bin', 'sh'))).isFile()).toBe(true);
  });
});
