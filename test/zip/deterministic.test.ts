import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LayerPackagingError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { unzipTo, zipTree } from '../../src/zip/deterministic.ts';
import { listTree } from '../../src/zip/tree.ts';

const run = promisify(execFile);
const MODULE = path.join(PROJECT_ROOT, 'src', 'zip', 'deterministic.ts');

/**
 * Build the same tree in a separate process under a given umask, creation order and
 * mtime, then zip it there under a given time zone, and return the zip's SHA-256.
 */
async function zipInChild(dir: string, options: { tz: string; umask: string; reverse: boolean; mtime: number }): Promise<string> {
  const script = `
    import { mkdirSync, writeFileSync, chmodSync, utimesSync } from 'node:fs';
    import path from 'node:path';
    const { zipTree } = await import(${JSON.stringify(MODULE)});
    const root = process.argv[1];
    const files = [['bin/tool', 'echo hi\\n', true], ['a.txt', 'alpha\\n', false], ['lib/z/deep.txt', 'deep\\n', false], ['B.txt', 'beta\\n', false]];
    if (${options.reverse}) files.reverse();
    for (const [name, text, exec] of files) {
      mkdirSync(path.join(root, 'tree', path.dirname(name)), { recursive: true });
      writeFileSync(path.join(root, 'tree', name), text);
      if (exec) chmodSync(path.join(root, 'tree', name), 0o755 & ~process.umask());
      utimesSync(path.join(root, 'tree', name), ${options.mtime}, ${options.mtime});
    }
    mkdirSync(path.join(root, 'tree', 'empty'), { recursive: true });
    const result = await zipTree(path.join(root, 'tree'), path.join(root, 'out.zip'));
    console.log(result.sha256Hex);
  `;
  const { stdout } = await run(
    'bash',
    ['-c', `umask ${options.umask} && exec "$0" --input-type=module -e "$1" "$2"`, process.execPath, script, dir],
    {
      env: { ...process.env, TZ: options.tz },
    },
  );
  return stdout.trim();
}

describe('zipTree', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-zip-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives identical bytes whatever the time zone, umask, creation order and mtimes', async () => {
    const a = await zipInChild(path.join(dir, 'a'), { tz: 'UTC', umask: '022', reverse: false, mtime: 1_000_000_000 });
    const b = await zipInChild(path.join(dir, 'b'), { tz: 'Asia/Tokyo', umask: '077', reverse: true, mtime: 1_700_000_000 });
    const c = await zipInChild(path.join(dir, 'c'), { tz: 'America/Los_Angeles', umask: '002', reverse: false, mtime: 1_234_567_890 });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(b).toBe(a);
    expect(c).toBe(a);
  });

  it('writes an archive that standard tools accept, with sorted entries and the exec bit kept', async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await writeFile(path.join(tree, 'bin', 'run'), '#!/bin/sh\necho ok\n', { mode: 0o755 });
    await writeFile(path.join(tree, 'zeta.txt'), 'z');
    await writeFile(path.join(tree, 'Alpha.txt'), 'a');
    const result = await zipTree(tree, path.join(dir, 'out.zip'));

    const test = execFileSync('unzip', ['-t', result.file]).toString();
    expect(test).toContain('No errors detected');
    const listing = execFileSync('zipinfo', ['-1', result.file]).toString().trim().split('\n');
    expect(listing).toEqual(['Alpha.txt', 'bin/run', 'zeta.txt']);
    const long = execFileSync('zipinfo', [result.file]).toString();
    expect(long).toMatch(/-rwxr-xr-x.*bin\/run/);
    expect(long).toMatch(/-rw-r--r--.*zeta\.txt/);
    expect(long).toContain('80-Jan-01 00:00');

    const bytes = await readFile(result.file);
    expect(result.size).toBe(bytes.length);
    expect(result.unzippedSize).toBe('#!/bin/sh\necho ok\n'.length + 2);
  });

  it('does not depend on mtimes of the files', async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(tree);
    await writeFile(path.join(tree, 'f'), 'same');
    const one = await zipTree(tree, path.join(dir, '1.zip'));
    await utimes(path.join(tree, 'f'), 5, 5);
    const two = await zipTree(tree, path.join(dir, '2.zip'));
    expect(two.sha256Hex).toBe(one.sha256Hex);
    expect(two.sha256Base64).toBe(Buffer.from(one.sha256Hex, 'hex').toString('base64'));
  });

  it('rejects a symlink instead of following it out of the tree', async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(tree);
    await symlink('/etc/passwd', path.join(tree, 'escape'));
    await expect(listTree(tree)).rejects.toThrow(LayerPackagingError);
    await expect(zipTree(tree, path.join(dir, 'out.zip'))).rejects.toThrow('symlink in the artefact tree: escape');
    await expect(stat(path.join(dir, 'out.zip'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('round-trips through unzipTo with contents and modes intact', async () => {
    const tree = path.join(dir, 'tree');
    await mkdir(path.join(tree, 'bin'), { recursive: true });
    await mkdir(path.join(tree, 'empty'));
    await writeFile(path.join(tree, 'bin', 'run'), 'exec', { mode: 0o755 });
    await writeFile(path.join(tree, 'data.json'), '{"a":1}');
    const result = await zipTree(tree, path.join(dir, 'out.zip'));
    const out = path.join(dir, 'out');
    await unzipTo(result.file, out);
    expect(await readFile(path.join(out, 'data.json'), 'utf8')).toBe('{"a":1}');
    expect((await stat(path.join(out, 'bin', 'run'))).mode & 0o777).toBe(0o755);
    expect((await stat(path.join(out, 'data.json'))).mode & 0o777).toBe(0o644);
    expect((await stat(path.join(out, 'empty'))).isDirectory()).toBe(true);
  });
});
