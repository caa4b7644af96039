import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalFunctionRegistry, LocalLayerRegistry, localLayerArn } from '../../../src/adapters/local/registries.ts';
import { AliasConflictError, InputError } from '../../../src/errors.ts';
import type { FunctionVersionInput } from '../../../src/ports/lambda.ts';
import { exists, sha256File } from '../../../src/util/fsx.ts';
import { rejection } from '../../helpers/rejection.ts';

describe('local registries: reading back, listing and deleting versions', () => {
  let dir: string;
  let home: LocalHome;
  let layers: LocalLayerRegistry;
  let functions: LocalFunctionRegistry;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-registries-'));
    home = new LocalHome(path.join(dir, 'home'));
    await home.ensure();
    layers = new LocalLayerRegistry(home);
    functions = new LocalFunctionRegistry(home);
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function publishLayer(content: string) {
    const file = path.join(dir, `${content}.zip`);
    await writeFile(file, content);
    const { base64, size } = await sha256File(file);
    return layers.publish({
      name: 'rt',
      description: content,
      zipFile: file,
      sha256Base64: base64,
      size,
      compatibleRuntimes: ['provided.al2023'],
      architectures: ['arm64'],
    });
  }

  async function publishVersion(code: string, extra: Partial<FunctionVersionInput> = {}) {
    const file = path.join(dir, `code-${code}.zip`);
    await writeFile(file, code);
    return functions.publishVersion({
      name: 'hello',
      description: code,
      codeFile: file,
      codeSha256: (await sha256File(file)).base64,
      handler: 'index.handler',
      runtime: 'provided.al2023',
      architecture: 'x86_64',
      memorySize: 128,
      timeout: 3,
      environment: {},
      layers: [],
      ...extra,
    });
  }

  describe('layers', () => {
    it('describes a version with what it was published for, and downloads its bytes', async () => {
      // Prepare
      const published = await publishLayer('one');
      const target = path.join(dir, 'out', 'layer.zip');

      // Act
      const details = await layers.describe(published.arn);
      const downloaded = await layers.download(published.arn, target);
      const missing = await layers.download(localLayerArn('rt', 9), path.join(dir, 'none.zip'));

      // Assess
      expect(details).toEqual({ ...published, compatibleRuntimes: ['provided.al2023'], architectures: ['arm64'] });
      expect(downloaded).toBe(true);
      expect(await readFile(target, 'utf8')).toBe('one');
      expect(missing).toBe(false);
      expect(await exists(path.join(dir, 'none.zip'))).toBe(false);
    });

    it('hands back the existing version for the same bytes, saying it reused it (a bake that lost a publish race)', async () => {
      // Act
      const [a, b] = await Promise.all([publishLayer('same'), publishLayer('same')]);
      const other = await publishLayer('other');

      // Assess
      expect(a.version).toBe(b.version);
      expect([a.reused === true, b.reused === true].sort()).toEqual([false, true]);
      expect(other).toMatchObject({ version: 2 });
      expect(other.reused).toBeUndefined();
    });

    it('deletes a version: gone from every read, its zip removed, its number never given out again', async () => {
      // Prepare
      await publishLayer('one');
      const second = await publishLayer('two');
      const zip = (await layers.getStored(second.arn))?.zipPath ?? '';

      // Act
      await layers.deleteVersion(second.arn);
      const third = await publishLayer('three');

      // Assess
      expect(await layers.get(second.arn)).toBeUndefined();
      expect((await layers.listVersions('rt')).map((l) => l.version)).toEqual([1, 3]);
      expect(await exists(zip)).toBe(false);
      expect(third.version).toBe(3);
      // Deleting it again is fine.
      await layers.deleteVersion(second.arn);
    });

    it('a deletion cut short after its one visible step leaves no half-deleted version, and the next one finishes it', async () => {
      // Prepare: what a crash right after the rename leaves behind.
      const first = await publishLayer('one');
      const second = await publishLayer('two');
      const zip = (await layers.getStored(first.arn))?.zipPath ?? '';
      await rename(home.path('layers', 'rt', '1.json'), home.path('layers', 'rt', '1.deleted'));

      // Act
      const seen = { get: await layers.get(first.arn), list: await layers.listVersions('rt'), zipLeft: await exists(zip) };
      await layers.deleteVersion(second.arn);

      // Assess
      expect(seen).toEqual({ get: undefined, list: [{ name: 'rt', arn: second.arn, version: 2 }], zipLeft: true });
      expect(await exists(zip)).toBe(false);
      expect(await readdir(home.path('layers', 'rt', 'blobs'))).toEqual([]);
    });
  });

  describe('functions', () => {
    it('lists versions and aliases, and downloads the code of a version', async () => {
      // Prepare
      await publishVersion('one');
      await publishVersion('two');
      await functions.setAlias('hello', 'live', '2', null);
      await functions.setAlias('hello', 'old', '1', null);
      const target = path.join(dir, 'code-out.zip');

      // Act
      const versions = await functions.listVersions('hello');
      const aliases = await functions.listAliases('hello');
      const downloaded = await functions.downloadCode('hello', '1', target);

      // Assess
      expect(versions.map((v) => v.version)).toEqual(['1', '2']);
      expect(aliases.map((a) => `${a.alias}→${a.version}`)).toEqual(['live→2', 'old→1']);
      expect(downloaded).toBe(true);
      expect(await readFile(target, 'utf8')).toBe('one');
      expect(await functions.downloadCode('hello', '7', target)).toBe(false);
      expect(await functions.listAliases('nobody')).toEqual([]);
    });

    it('refuses to delete a version an alias points at, as Lambda does', async () => {
      // Prepare
      await publishVersion('one');
      await functions.setAlias('hello', 'live', '1', null);

      // Act
      const error = await rejection(functions.deleteVersion('hello', '1'));

      // Assess
      expect(error).toBeInstanceOf(AliasConflictError);
      expect(error.message).toBe('hello:1 is in use by alias live; it was not deleted');
      expect(await functions.getVersion('hello', '1')).toBeDefined();
    });

    it('refuses anything but a numbered version', async () => {
      // Act
      const error = await rejection(functions.deleteVersion('hello', '$LATEST'));

      // Assess
      expect(error).toBeInstanceOf(InputError);
      expect(error.message).toContain('only numbered versions can be deleted');
    });

    it('deletes a version and its code; the number is not reused', async () => {
      // Prepare
      await publishVersion('one');
      const code = (await functions.getStored('hello', '1'))?.codePath ?? '';

      // Act
      await functions.deleteVersion('hello', '1');
      const next = await publishVersion('two');

      // Assess
      expect(await functions.getVersion('hello', '1')).toBeUndefined();
      expect(await exists(code)).toBe(false);
      expect(next.version).toBe('2');
    });

    it('keeps a code zip that another version still uses (versions stored before each had its own)', async () => {
      // Prepare: two versions sharing one content-addressed zip, as older state directories have.
      await publishVersion('same');
      await publishVersion('same', { memorySize: 256 });
      const shared = path.join('code', 'shared.zip');
      await mkdir(home.path('functions', 'hello', 'code'), { recursive: true });
      await writeFile(home.path('functions', 'hello', shared), 'same');
      for (const v of ['1', '2']) {
        const file = home.path('functions', 'hello', 'versions', `${v}.json`);
        await writeFile(file, JSON.stringify({ ...JSON.parse(await readFile(file, 'utf8')), code: shared }));
      }

      // Act
      await functions.deleteVersion('hello', '1');

      // Assess
      expect(await exists(home.path('functions', 'hello', shared))).toBe(true);
      await functions.deleteVersion('hello', '2');
      expect(await exists(home.path('functions', 'hello', shared))).toBe(false);
    });
  });
});
