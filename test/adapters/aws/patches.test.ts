import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetImageCommand, ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AwsPatchResolver } from '../../../src/adapters/aws/patches.ts';
import { BakeryError, TransientBackendError } from '../../../src/errors.ts';
import type { ResolvedRecipe } from '../../../src/state.ts';
import { resolvedBake } from '../../helpers/fixtures.ts';
import { rejection } from '../../helpers/rejection.ts';
import { awsError } from './fixtures.ts';

const run = promisify(execFile);
const imageBuilder = mockClient(ImagebuilderClient);

const DIST = 'https://nodejs.example/dist';
const PIPELINE = 'arn:aws:imagebuilder:eu-west-1:123456789012:image-pipeline/bakery-dev-node22';
const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

const recipe = (overrides: Partial<ResolvedRecipe> = {}): ResolvedRecipe => ({ ...resolvedBake().recipe, ...overrides });

const INDEX = [
  { version: 'v24.1.0', files: ['linux-x64', 'linux-arm64'] },
  { version: 'v22.24.0', files: ['linux-x64', 'linux-arm64', 'win-x64-zip'] },
  { version: 'v22.23.3', files: ['linux-x64', 'linux-arm64'] },
  { version: 'v22.9.0', files: ['linux-x64'] },
  { version: 'v20.19.5', files: ['linux-x64', 'linux-arm64'] },
];

/** A stand-in for nodejs.org: what it serves, and every URL asked for. */
function fakeDist(files: Record<string, Uint8Array | string | number>) {
  const asked: string[] = [];
  const fetch = async (url: string) => {
    asked.push(url);
    const body = files[url];
    if (body === undefined) return new Response('not found', { status: 404 });
    if (typeof body === 'number') return new Response('error', { status: body });
    return new Response(body);
  };
  return { fetch, asked };
}

let work: string;
let tarball: Buffer;
const BINARY = 'not really node, but the bytes the pin is of\n'.repeat(5000);

beforeAll(async () => {
  // A release tarball shaped like the official one: node-v<version>-linux-x64/{bin/node,...}.
  work = await mkdtemp(path.join(os.tmpdir(), 'bakery-patches-test-'));
  const root = path.join(work, 'node-v22.24.0-linux-x64');
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'include', 'node'), { recursive: true });
  await writeFile(path.join(root, 'README.md'), 'Node.js\n');
  await writeFile(path.join(root, 'include', 'node', 'node.h'), '/* header */\n');
  await writeFile(path.join(root, 'bin', 'node'), BINARY);
  await run('tar', ['-czf', path.join(work, 'node.tar.gz'), '-C', work, 'node-v22.24.0-linux-x64']);
  tarball = await readFile(path.join(work, 'node.tar.gz'));
});

afterAll(async () => {
  imageBuilder.restore();
  await rm(work, { recursive: true, force: true });
});

afterEach(() => {
  imageBuilder.reset();
});

const tarballName = 'node-v22.24.0-linux-x64.tar.gz';
const served = (overrides: Record<string, Uint8Array | string | number> = {}) => ({
  [`${DIST}/index.json`]: JSON.stringify(INDEX),
  [`${DIST}/v22.24.0/SHASUMS256.txt`]: `${'0'.repeat(64)}  node-v22.24.0.tar.gz\n${sha256(tarball)}  ${tarballName}\n`,
  [`${DIST}/v22.24.0/${tarballName}`]: tarball,
  ...overrides,
});

describe('AwsPatchResolver.runtime', () => {
  it('finds the newest patch of the pinned major line and pins the SHA-256 of its node binary', async () => {
    // Prepare
    const dist = fakeDist(served());
    const resolver = new AwsPatchResolver({ regionArn: PIPELINE, fetch: dist.fetch, dist: DIST });

    // Act
    const patch = await resolver.runtime(recipe());

    // Assess
    expect(patch?.parameters).toEqual({ NodeVersion: '22.24.0', NodeSha256: sha256(BINARY) });
    expect(patch?.source).toContain(`${DIST}/v22.24.0/${tarballName}`);
    expect(dist.asked).toEqual([`${DIST}/index.json`, `${DIST}/v22.24.0/SHASUMS256.txt`, `${DIST}/v22.24.0/${tarballName}`]);
  });

  it('downloads nothing but the index when the pinned release is still the newest (or newer)', async () => {
    const dist = fakeDist(served());
    const resolver = new AwsPatchResolver({ regionArn: PIPELINE, fetch: dist.fetch, dist: DIST });
    const pinned = { NodeVersion: '22.24.0', NodeSha256: 'ab'.repeat(32) };

    await expect(resolver.runtime(recipe({ parameters: pinned }))).resolves.toEqual({ parameters: pinned, source: `${DIST}/index.json` });
    const ahead = { NodeVersion: '22.30.1', NodeSha256: 'cd'.repeat(32) };
    await expect(resolver.runtime(recipe({ parameters: ahead }))).resolves.toMatchObject({ parameters: ahead });
    expect(dist.asked).toEqual([`${DIST}/index.json`, `${DIST}/index.json`]);
  });

  it('refuses a tarball whose SHA-256 is not the one SHASUMS256.txt lists', async () => {
    // Prepare: a well-formed tarball with another binary in it, served under the official name.
    const root = path.join(work, 'forged', 'node-v22.24.0-linux-x64');
    await mkdir(path.join(root, 'bin'), { recursive: true });
    await writeFile(path.join(root, 'bin', 'node'), 'a binary nobody released\n');
    await run('tar', ['-czf', path.join(work, 'forged.tar.gz'), '-C', path.dirname(root), 'node-v22.24.0-linux-x64']);
    const dist = fakeDist(served({ [`${DIST}/v22.24.0/${tarballName}`]: await readFile(path.join(work, 'forged.tar.gz')) }));

    // Act
    const error = await rejection(new AwsPatchResolver({ regionArn: PIPELINE, fetch: dist.fetch, dist: DIST }).runtime(recipe()));

    // Assess
    expect(error).toBeInstanceOf(BakeryError);
    expect(error).not.toBeInstanceOf(TransientBackendError);
    expect(error.message).toMatch(/not the official release/);
  });

  it('fails when SHASUMS256.txt lists no such tarball, or the tarball holds no bin/node', async () => {
    const noSum = fakeDist(served({ [`${DIST}/v22.24.0/SHASUMS256.txt`]: `${'0'.repeat(64)}  other.tar.gz\n` }));
    await expect(new AwsPatchResolver({ regionArn: PIPELINE, fetch: noSum.fetch, dist: DIST }).runtime(recipe())).rejects.toThrow(
      /lists no SHA-256 for node-v22.24.0-linux-x64.tar.gz/,
    );

    const empty = path.join(work, 'empty');
    await mkdir(path.join(empty, 'node-v22.24.0-linux-x64'), { recursive: true });
    await run('tar', ['-czf', path.join(work, 'empty.tar.gz'), '-C', empty, 'node-v22.24.0-linux-x64']);
    const other = await readFile(path.join(work, 'empty.tar.gz'));
    const noBinary = fakeDist(
      served({
        [`${DIST}/v22.24.0/${tarballName}`]: other,
        [`${DIST}/v22.24.0/SHASUMS256.txt`]: `${sha256(other)}  ${tarballName}\n`,
      }),
    );
    await expect(new AwsPatchResolver({ regionArn: PIPELINE, fetch: noBinary.fetch, dist: DIST }).runtime(recipe())).rejects.toThrow(
      /holds no node-v22.24.0-linux-x64\/bin\/node/,
    );
  });

  it('says a 5xx or an unreachable nodejs.org is transient, and other answers are not', async () => {
    const down = fakeDist(served({ [`${DIST}/index.json`]: 503 }));
    expect(await rejection(new AwsPatchResolver({ regionArn: PIPELINE, fetch: down.fetch, dist: DIST }).runtime(recipe()))).toBeInstanceOf(
      TransientBackendError,
    );
    const offline = async () => {
      throw new TypeError('fetch failed');
    };
    expect(await rejection(new AwsPatchResolver({ regionArn: PIPELINE, fetch: offline, dist: DIST }).runtime(recipe()))).toBeInstanceOf(
      TransientBackendError,
    );
    const gone = fakeDist(served({ [`${DIST}/index.json`]: 404 }));
    const error = await rejection(new AwsPatchResolver({ regionArn: PIPELINE, fetch: gone.fetch, dist: DIST }).runtime(recipe()));
    expect(error).toBeInstanceOf(BakeryError);
    expect(error).not.toBeInstanceOf(TransientBackendError);
  });

  it('leaves a recipe that pins no Node.js alone, and looks for the arm64 build of an arm64 recipe', async () => {
    const dist = fakeDist(served());
    const resolver = new AwsPatchResolver({ regionArn: PIPELINE, fetch: dist.fetch, dist: DIST });
    await expect(resolver.runtime(recipe({ parameters: { Other: '1' } }))).resolves.toBeNull();
    expect(dist.asked).toEqual([]);

    // The index has no arm64 build of 22.9.0 or 22.24.0's tarball here: it asks for the arm64 one.
    await rejection(resolver.runtime(recipe({ architecture: 'arm64' })));
    expect(dist.asked.at(-1)).toBe(`${DIST}/v22.24.0/SHASUMS256.txt`);
  });
});

describe('AwsPatchResolver.baseImage', () => {
  it("resolves a wildcard to the newest Amazon-managed image in the pipeline's region and partition", async () => {
    // Prepare
    imageBuilder.on(GetImageCommand).resolves({
      image: {
        arn: 'arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/2025.11.14/1',
        name: 'Amazon Linux 2023 x86',
        version: '2025.11.14',
      },
    });
    const resolver = new AwsPatchResolver({ regionArn: PIPELINE, client: new ImagebuilderClient({}), fetch: fakeDist({}).fetch });

    // Act
    const newest = await resolver.baseImage('amazon-linux-2023-x86/x.x.x');

    // Assess
    expect(newest).toBe('amazon-linux-2023-x86/2025.11.14');
    expect(imageBuilder).toHaveReceivedCommandWith(GetImageCommand, {
      imageBuildVersionArn: 'arn:aws:imagebuilder:eu-west-1:aws:image/amazon-linux-2023-x86/x.x.x',
    });
  });

  it('fails clearly when no managed image matches', async () => {
    imageBuilder.on(GetImageCommand).rejects(awsError('ResourceNotFoundException'));
    const resolver = new AwsPatchResolver({ regionArn: PIPELINE, client: new ImagebuilderClient({}) });
    await expect(resolver.baseImage('no-such-image/x.x.x')).rejects.toThrow(/no Amazon-managed image matches no-such-image\/x.x.x/);
  });
});
