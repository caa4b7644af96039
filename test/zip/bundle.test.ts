import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnsafeSourceBundleError } from '../../src/errors.ts';
import { extractBundle, MAX_BUNDLE_UNZIPPED_BYTES, unsafeEntryName } from '../../src/zip/bundle.ts';
import { type RawEntry, rawZip } from '../helpers/raw-zip.ts';

describe('extractBundle (an untrusted source zip)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-bundle-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const extract = async (entries: RawEntry[]) => {
    const file = path.join(dir, 'bundle.zip');
    await writeFile(file, rawZip(entries));
    return extractBundle(file, path.join(dir, 'out', 'bundle'), 's3://src/bakes/evil.zip');
  };

  it('extracts a plain bundle and returns its bake.json', async () => {
    const spec = await extract([
      { name: 'bake.json', data: '{}' },
      { name: 'src/', mode: 0o040755 },
      { name: 'src/index.mjs', data: 'x' },
    ]);
    expect(await readFile(spec, 'utf8')).toBe('{}');
  });

  it.each([
    ['a ".." entry (zip slip)', '../../outside.txt', /"\.\." path segment/],
    ['a nested ".." entry', 'src/../../outside.txt', /"\.\." path segment/],
    ['an absolute path', '/tmp/outside.txt', /absolute path/],
    ['a drive path', 'C:/outside.txt', /absolute path/],
    ['a backslash path', '..\\outside.txt', /backslash/],
  ])('refuses %s by name, before extracting anything', async (_what, name, why) => {
    const error = await extract([
      { name: 'bake.json', data: '{}' },
      { name, data: 'pwned' },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeSourceBundleError);
    expect((error as Error).name).toBe('UnsafeSourceBundleError');
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toContain('s3://src/bakes/evil.zip');
    expect(await readdir(dir)).toEqual(['bundle.zip']);
  });

  it('refuses a symbolic link entry', async () => {
    const error = await extract([
      { name: 'bake.json', data: '{}' },
      { name: 'src/link', data: '/etc/passwd', mode: 0o120777 },
    ]).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'UnsafeSourceBundleError', message: expect.stringMatching(/symbolic link/) });
    expect(await readdir(dir)).toEqual(['bundle.zip']);
  });

  it("refuses a bundle whose entries declare more than Lambda's 250 MiB unzipped", async () => {
    const error = await extract([
      { name: 'bake.json', data: '{}' },
      { name: 'big.bin', data: 'x', declaredSize: MAX_BUNDLE_UNZIPPED_BYTES },
    ]).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'UnsafeSourceBundleError', message: expect.stringMatching(/250 MiB/) });
    expect(await readdir(dir)).toEqual(['bundle.zip']);
  });

  it('names what is wrong with a path', () => {
    expect(unsafeEntryName('src/index.mjs')).toBeUndefined();
    expect(unsafeEntryName('src/')).toBeUndefined();
    expect(unsafeEntryName('a//b')).toMatch(/empty/);
    expect(unsafeEntryName('./a')).toMatch(/"\."/);
  });
});
