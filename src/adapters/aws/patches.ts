import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { createGunzip } from 'node:zlib';
import { GetImageCommand, type ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { BakeryError, TransientBackendError } from '../../errors.ts';
import type { PatchResolver, RuntimePatch } from '../../ports/patches.ts';
import type { ResolvedRecipe } from '../../state.ts';
import { compareSemver, nodePins, semver } from '../../util/semver.ts';
import { readTarEntry } from '../../util/tar.ts';
import { imageBuilderClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';

/** The official Node.js release directory. */
export const NODE_DIST = 'https://nodejs.org/dist';

type Fetch = (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;

interface IndexRelease {
  version: string;
  files: string[];
}

/**
 * The newest patch of a recipe's Node.js line from the official release index, and the
 * newest Amazon-managed base image from Image Builder.
 *
 * Node.js: `index.json` names the newest release of the pinned major line that has a
 * Linux build for the recipe's architecture. The pin is the SHA-256 of the node binary
 * (what the component checks after unpacking), which no index lists, so for a release
 * other than the pinned one the official tarball is streamed once: its SHA-256 must
 * match the release's SHASUMS256.txt, and `bin/node` is hashed on the way. Trust rests
 * on TLS to nodejs.org (SHASUMS256.txt's signature is not checked here). When the
 * pinned release is still the newest, nothing is downloaded.
 */
export class AwsPatchResolver implements PatchResolver {
  private readonly fetch: Fetch;
  private readonly dist: string;
  private readonly client: ImagebuilderClient;
  /** Any ARN of this stack's region and partition (the image pipeline's), where base images are looked up. */
  private readonly regionArn: Setting;
  private readonly timeoutMs: number;

  constructor(options: { regionArn: Setting; fetch?: Fetch; dist?: string; client?: ImagebuilderClient; timeoutMs?: number }) {
    this.fetch = options.fetch ?? ((url, init) => fetch(url, init));
    this.dist = options.dist ?? NODE_DIST;
    this.client = options.client ?? imageBuilderClient;
    this.regionArn = options.regionArn;
    this.timeoutMs = options.timeoutMs ?? 120_000;
  }

  private async get(url: string): Promise<Response> {
    let response: Response;
    try {
      response = await this.fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (error) {
      throw new TransientBackendError(`GET ${url} failed (${(error as Error).message})`, { cause: error });
    }
    if (response.status >= 500 || response.status === 429) {
      throw new TransientBackendError(`GET ${url} answered ${response.status}`);
    }
    if (!response.ok) throw new BakeryError(`GET ${url} answered ${response.status}`);
    return response;
  }

  async runtime(recipe: ResolvedRecipe): Promise<RuntimePatch | null> {
    const pins = nodePins(recipe);
    if (!pins) return null;
    const indexUrl = `${this.dist}/index.json`;
    const index = (await (await this.get(indexUrl)).json()) as IndexRelease[];
    let newest: [number, number, number] | undefined;
    for (const release of index) {
      const v = semver(release.version);
      if (!v || v[0] !== pins.version[0] || !release.files?.includes(pins.platform)) continue;
      if (!newest || compareSemver(v, newest) > 0) newest = v;
    }
    if (!newest) throw new BakeryError(`${indexUrl} lists no Node.js ${pins.version[0]}.x release for ${pins.platform}`);
    // Never move back: a pin newer than the index (a stale mirror) stays.
    if (compareSemver(newest, pins.version) <= 0) {
      return { parameters: { NodeVersion: pins.version.join('.'), NodeSha256: pins.sha256 }, source: indexUrl };
    }
    const version = newest.join('.');
    const tarball = `node-v${version}-${pins.platform}.tar.gz`;
    const sumsUrl = `${this.dist}/v${version}/SHASUMS256.txt`;
    const sums = await (await this.get(sumsUrl)).text();
    const listed = sums
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find(([, file]) => file === tarball)?.[0];
    if (!listed || !/^[0-9a-f]{64}$/.test(listed)) throw new BakeryError(`${sumsUrl} lists no SHA-256 for ${tarball}`);

    const tarballUrl = `${this.dist}/v${version}/${tarball}`;
    const body = (await this.get(tarballUrl)).body;
    if (!body) throw new BakeryError(`GET ${tarballUrl} returned no body`);
    const archive = createHash('sha256');
    const binary = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        archive.update(chunk);
        done(null, chunk);
      },
    });
    const entry = `node-v${version}-${pins.platform}/bin/node`;
    let found = false;
    try {
      await pipeline(
        Readable.fromWeb(body as WebReadableStream<Uint8Array>),
        tap,
        createGunzip(),
        async (source: AsyncIterable<Buffer>) => {
          found = await readTarEntry(source, entry, (chunk) => binary.update(chunk));
        },
      );
    } catch (error) {
      throw new TransientBackendError(`downloading ${tarballUrl} failed (${(error as Error).message})`, { cause: error });
    }
    const actual = archive.digest('hex');
    if (actual !== listed) {
      throw new BakeryError(`${tarballUrl} has SHA-256 ${actual}, but ${sumsUrl} lists ${listed}: not the official release`);
    }
    if (!found) throw new BakeryError(`${tarballUrl} holds no ${entry}`);
    return {
      parameters: { NodeVersion: version, NodeSha256: binary.digest('hex') },
      source: `${tarballUrl} (SHA-256 ${listed}, as ${sumsUrl} lists)`,
    };
  }

  async baseImage(pattern: string): Promise<string | null> {
    const [, partition, , region] = resolveSetting(this.regionArn).split(':');
    const arn = `arn:${partition}:imagebuilder:${region}:aws:image/${pattern}`;
    // A wildcard version ARN resolves to the newest AVAILABLE build that matches it.
    let version: string | undefined;
    try {
      const out = await callAws(`GetImage ${arn}`, () => this.client.send(new GetImageCommand({ imageBuildVersionArn: arn })));
      version = out.image?.version;
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException'))
        throw new BakeryError(`no Amazon-managed image matches ${pattern}`, { cause: error });
      throw error;
    }
    const name = pattern.slice(0, pattern.lastIndexOf('/'));
    if (!version) throw new BakeryError(`GetImage ${arn} returned no version`);
    return `${name}/${version}`;
  }
}
