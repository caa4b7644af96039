import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { AliasConflictError, InputError, NotFoundError } from '../../errors.ts';
import type {
  AliasInfo,
  FunctionRegistry,
  FunctionVersionInfo,
  FunctionVersionInput,
  LayerPublishInput,
  LayerRegistry,
  LayerVersionDetails,
} from '../../ports/lambda.ts';
import type { LayerVersionInfo } from '../../state.ts';
import { createJsonExclusive, readJsonIfExists, sha256File, writeJsonAtomic } from '../../util/fsx.ts';
import { canonicalJson } from '../../util/json.ts';
import type { LocalHome } from './home.ts';
import { withFileLock } from './lock.ts';
import { copyFileAtomic } from './stores.ts';

/**
 * A deleted version leaves `<version>.deleted` (its record, renamed): the rename is the
 * one step that makes it invisible, so a crash leaves it either whole or gone, never
 * half-deleted; its bytes are removed after. The tombstone stays so that its number is
 * never given out again, as Lambda never reuses a version number.
 */
const TOMBSTONE = '.deleted';

const ACCOUNT = '000000000000';
const REGION = 'local';

export const localLayerArn = (name: string, version?: number): string =>
  `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:${name}${version === undefined ? '' : `:${version}`}`;

export function parseLayerArn(arn: string): { name: string; version: number } | undefined {
  const match = /^arn:aws:lambda:[^:]+:\d{12}:layer:([A-Za-z0-9_-]+):(\d+)$/.exec(arn);
  return match ? { name: match[1] as string, version: Number(match[2]) } : undefined;
}

async function numberedJson(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .map((n) => /^(\d+)\.json$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** Version numbers of deleted versions (their tombstones). */
async function tombstones(dir: string): Promise<number[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .map((n) => /^(\d+)\.deleted$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .map(Number);
}

/** Make version `version` in `dir` invisible in one rename; false when it was not there. */
async function entomb(dir: string, version: number): Promise<boolean> {
  try {
    await rename(path.join(dir, `${version}.json`), path.join(dir, `${version}${TOMBSTONE}`));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * Claim the next version number in `dir` with an exclusive create, so two
 * concurrent publishers never get the same number (Lambda's own guarantee).
 * Numbers of deleted versions count as taken.
 */
async function claimNext(dir: string, record: (version: number) => unknown): Promise<number> {
  await mkdir(dir, { recursive: true });
  for (;;) {
    const taken = [...(await numberedJson(dir)), ...(await tombstones(dir))];
    const next = Math.max(0, ...taken) + 1;
    if (await createJsonExclusive(path.join(dir, `${next}.json`), record(next))) return next;
  }
}

interface StoredLayer extends LayerVersionInfo {
  sha256Hex: string;
  description: string;
  compatibleRuntimes: string[];
  architectures: string[];
  zip: string;
  createdAt: string;
}

/** Layer versions under `<home>/layers/<name>/<version>.json` with the zip beside it. */
export class LocalLayerRegistry implements LayerRegistry {
  private readonly home: LocalHome;
  private readonly onLockTakeover: (message: string) => void;

  constructor(home: LocalHome, options: { onLockTakeover?: (message: string) => void } = {}) {
    this.home = home;
    this.onLockTakeover = options.onLockTakeover ?? (() => {});
  }

  private dir(name: string): string {
    return this.home.path('layers', name);
  }

  async list(name: string): Promise<StoredLayer[]> {
    const out: StoredLayer[] = [];
    for (const version of await numberedJson(this.dir(name))) {
      const stored = await readJsonIfExists<StoredLayer>(path.join(this.dir(name), `${version}.json`));
      if (stored) out.push(stored);
    }
    return out;
  }

  /**
   * The version with these bytes. Looked up under the publish lock: a bake that reuses
   * what it finds here cannot race `bakery prune` deleting it (prune re-checks, under the
   * same lock, what executions in flight hold, and a bake journals that it entered
   * PublishLayer before it looks).
   */
  async findByCodeSha256(name: string, codeSha256: string): Promise<LayerVersionInfo | undefined> {
    return this.withPublishLock(name, () => this.findUnlocked(name, codeSha256));
  }

  private async findUnlocked(name: string, codeSha256: string): Promise<LayerVersionInfo | undefined> {
    const match = (await this.list(name)).find((l) => l.codeSha256 === codeSha256);
    return match ? strip(match) : undefined;
  }

  /**
   * Publish a layer version, or hand back the one with the same bytes: under the layer's
   * publish lock the existing versions are checked again, so two bakes racing with the
   * same content make one version (the loser reuses the winner's).
   */
  async publish(input: LayerPublishInput): Promise<LayerVersionInfo & { reused?: boolean }> {
    const dir = this.dir(input.name);
    // The bytes go in first under a unique name; the version record that makes
    // them visible is created last, so a crash leaves no half-published version.
    const blob = path.join(dir, 'blobs', `${randomBytes(8).toString('hex')}.zip`);
    await copyFileAtomic(input.zipFile, blob);
    // Like Lambda, report the hash of what was stored, not of what we meant to store.
    const stored = await sha256File(blob);
    return this.withPublishLock(input.name, async () => {
      const same = await this.findUnlocked(input.name, stored.base64);
      if (same) {
        await rm(blob, { force: true });
        return { ...same, reused: true };
      }
      return this.publishStored(input, dir, blob, stored);
    });
  }

  /**
   * Run `fn` under the lock that publishing a version of layer `name` takes
   * (`<home>/layers/<name>/publish.lock`): a deletion that re-checks under it cannot
   * race a publish that is about to reuse a version.
   */
  withPublishLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(path.join(this.dir(name), 'publish'), fn, { onTakeover: this.onLockTakeover });
  }

  private async publishStored(
    input: LayerPublishInput,
    dir: string,
    blob: string,
    stored: { hex: string; base64: string; size: number },
  ): Promise<LayerVersionInfo> {
    const version = await claimNext(dir, (v) => ({
      name: input.name,
      arn: localLayerArn(input.name, v),
      version: v,
      codeSha256: stored.base64,
      sha256Hex: stored.hex,
      size: stored.size,
      description: input.description,
      compatibleRuntimes: input.compatibleRuntimes,
      architectures: input.architectures,
      zip: path.relative(dir, blob),
      createdAt: new Date().toISOString(),
    }));
    return { name: input.name, arn: localLayerArn(input.name, version), version, codeSha256: stored.base64, size: stored.size };
  }

  async get(arn: string): Promise<LayerVersionInfo | undefined> {
    const stored = await this.getStored(arn);
    return stored ? strip(stored) : undefined;
  }

  async getStored(arn: string): Promise<(StoredLayer & { zipPath: string }) | undefined> {
    const parsed = parseLayerArn(arn);
    if (!parsed) return undefined;
    const stored = await readJsonIfExists<StoredLayer>(path.join(this.dir(parsed.name), `${parsed.version}.json`));
    return stored ? { ...stored, zipPath: path.join(this.dir(parsed.name), stored.zip) } : undefined;
  }

  async describe(arn: string): Promise<LayerVersionDetails | undefined> {
    const stored = await this.getStored(arn);
    return stored ? { ...strip(stored), compatibleRuntimes: stored.compatibleRuntimes, architectures: stored.architectures } : undefined;
  }

  async download(arn: string, file: string): Promise<boolean> {
    const stored = await this.getStored(arn);
    if (!stored) return false;
    await copyFileAtomic(stored.zipPath, file);
    return true;
  }

  async listVersions(name: string): Promise<Array<{ name: string; arn: string; version: number }>> {
    return (await this.list(name)).map((l) => ({ name: l.name, arn: l.arn, version: l.version }));
  }

  async deleteVersion(arn: string): Promise<void> {
    const parsed = parseLayerArn(arn);
    if (!parsed) throw new NotFoundError(`not a layer version ARN: ${arn}`);
    const dir = this.dir(parsed.name);
    await entomb(dir, parsed.version);
    // Each publish stores its zip under a name of its own, so a tombstone's zip is no
    // one else's; this also removes the zips of deletions a crash cut short.
    for (const version of await tombstones(dir)) {
      const dead = await readJsonIfExists<StoredLayer>(path.join(dir, `${version}${TOMBSTONE}`));
      if (dead) await rm(path.join(dir, dead.zip), { force: true });
    }
  }
}

function strip(stored: StoredLayer): LayerVersionInfo {
  return { name: stored.name, arn: stored.arn, version: stored.version, codeSha256: stored.codeSha256, size: stored.size };
}

export interface StoredVersion extends FunctionVersionInfo {
  description: string;
  architecture: string;
  memorySize: number;
  timeout: number;
  code: string;
  createdAt: string;
}

const configOf = (v: Omit<StoredVersion, 'version' | 'code' | 'createdAt' | 'description' | 'name'>) =>
  canonicalJson({
    codeSha256: v.codeSha256,
    handler: v.handler,
    runtime: v.runtime,
    architecture: v.architecture,
    memorySize: v.memorySize,
    timeout: v.timeout,
    environment: v.environment,
    layers: v.layers,
  });

/**
 * Functions under `<home>/functions/<name>/`: numbered immutable versions with their
 * code zip, and aliases that carry a revision id for compare-and-swap moves.
 */
export class LocalFunctionRegistry implements FunctionRegistry {
  private readonly home: LocalHome;
  private readonly onLockTakeover: (message: string) => void;

  constructor(home: LocalHome, options: { onLockTakeover?: (message: string) => void } = {}) {
    this.home = home;
    this.onLockTakeover = options.onLockTakeover ?? (() => {});
  }

  private dir(name: string, ...rest: string[]): string {
    return this.home.path('functions', name, ...rest);
  }

  async listVersions(name: string): Promise<StoredVersion[]> {
    const out: StoredVersion[] = [];
    for (const v of await numberedJson(this.dir(name, 'versions'))) {
      const stored = await readJsonIfExists<StoredVersion>(this.dir(name, 'versions', `${v}.json`));
      if (stored) out.push(stored);
    }
    return out;
  }

  async publishVersion(input: FunctionVersionInput): Promise<FunctionVersionInfo> {
    const stored = await sha256File(input.codeFile);
    const candidate = {
      codeSha256: stored.base64,
      handler: input.handler,
      runtime: input.runtime,
      architecture: input.architecture,
      memorySize: input.memorySize,
      timeout: input.timeout,
      environment: input.environment,
      layers: input.layers,
    };
    // Under the function's publish lock, so that two bakes racing with the same code and
    // configuration see each other's version: one version per (code, configuration).
    return this.withPublishLock(input.name, async () => {
      // Lambda's PublishVersion returns the latest version when neither code nor configuration changed.
      const latest = (await this.listVersions(input.name)).at(-1);
      if (latest && configOf(latest) === configOf(candidate)) return info(latest);
      // A name of its own per version: deleting a version can then remove its code
      // without ever racing a publish that is about to use the same bytes.
      const code = path.join('code', `${stored.hex}.${randomBytes(4).toString('hex')}.zip`);
      await copyFileAtomic(input.codeFile, this.dir(input.name, code));
      const version = await claimNext(this.dir(input.name, 'versions'), (v) => ({
        name: input.name,
        version: String(v),
        description: input.description,
        ...candidate,
        code,
        createdAt: new Date().toISOString(),
      }));
      return info((await this.getStored(input.name, String(version))) as StoredVersion);
    });
  }

  /**
   * Run `fn` under the lock publishing a version of function `name` takes
   * (`<home>/functions/<name>/publish.lock`); prune deletes a version under it.
   */
  withPublishLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return withFileLock(this.dir(name, 'publish'), fn, { onTakeover: this.onLockTakeover });
  }

  async getStored(name: string, version: string): Promise<(StoredVersion & { codePath: string }) | undefined> {
    if (!/^\d+$/.test(version)) return undefined;
    const stored = await readJsonIfExists<StoredVersion>(this.dir(name, 'versions', `${version}.json`));
    return stored ? { ...stored, codePath: this.dir(name, stored.code) } : undefined;
  }

  async getVersion(name: string, version: string): Promise<FunctionVersionInfo | undefined> {
    const stored = await this.getStored(name, version);
    return stored ? info(stored) : undefined;
  }

  async getAlias(name: string, alias: string): Promise<AliasInfo | undefined> {
    const stored = await readJsonIfExists<AliasInfo>(this.dir(name, 'aliases', `${alias}.json`));
    // Aliases written before routing weights were stored have none.
    return stored ? { ...stored, weights: stored.weights ?? {} } : undefined;
  }

  /** Run `change` on the alias file under an exclusive lock: the local compare-and-swap. */
  private async withAliasLock<T>(
    name: string,
    alias: string,
    change: (file: string, current: AliasInfo | undefined) => Promise<T>,
  ): Promise<T> {
    const file = this.dir(name, 'aliases', `${alias}.json`);
    await mkdir(path.dirname(file), { recursive: true });
    // A dead holder's lock is taken over; a live one is waited for, then refused as a conflict.
    return withFileLock(file, async () => change(file, await readJsonIfExists<AliasInfo>(file)), {
      onTakeover: this.onLockTakeover,
      onTimeout: (message) => new AliasConflictError(`alias ${name}:${alias} is locked by another process: ${message}`),
    });
  }

  async setAlias(
    name: string,
    alias: string,
    version: string,
    expectedRevisionId: string | null,
    weights: Record<string, number> = {},
  ): Promise<AliasInfo> {
    if (!(await this.getStored(name, version))) throw new NotFoundError(`${name} has no version ${version}`);
    checkWeights(name, version, weights);
    for (const other of Object.keys(weights)) {
      if (!(await this.getStored(name, other))) throw new NotFoundError(`${name} has no version ${other}`);
    }
    return this.withAliasLock(name, alias, async (file, current) => {
      if ((current?.revisionId ?? null) !== expectedRevisionId) {
        throw new AliasConflictError(
          `alias ${name}:${alias} changed while we were releasing (now on version ${current?.version ?? 'none'})`,
          { hint: 'Someone else moved it; check `bakery status` and bake again.' },
        );
      }
      const next: AliasInfo = { name, alias, version, revisionId: randomBytes(8).toString('hex'), weights: { ...weights } };
      await writeJsonAtomic(file, next);
      return next;
    });
  }

  async deleteAlias(name: string, alias: string, expectedRevisionId: string): Promise<void> {
    await this.withAliasLock(name, alias, async (file, current) => {
      if (!current) return;
      if (current.revisionId !== expectedRevisionId) {
        throw new AliasConflictError(`alias ${name}:${alias} changed since bakery created it; it was left in place`);
      }
      await rm(file);
    });
  }

  async listAliases(name: string): Promise<AliasInfo[]> {
    const names = await readdir(this.dir(name, 'aliases')).catch(() => [] as string[]);
    const out: AliasInfo[] = [];
    for (const file of names.filter((n) => n.endsWith('.json')).sort()) {
      const found = await this.getAlias(name, file.slice(0, -'.json'.length));
      if (found) out.push(found);
    }
    return out;
  }

  async downloadCode(name: string, version: string, file: string): Promise<boolean> {
    const stored = await this.getStored(name, version);
    if (!stored) return false;
    await copyFileAtomic(stored.codePath, file);
    return true;
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    if (!/^\d+$/.test(version)) throw new InputError(`${name}: only numbered versions can be deleted, not ${version}`);
    const dir = this.dir(name, 'versions');
    const pointing = (aliases: AliasInfo[]) =>
      aliases.filter((a) => a.version === version || Object.hasOwn(a.weights ?? {}, version)).map((a) => a.alias);
    const before = pointing(await this.listAliases(name));
    if (before.length) throw new AliasConflictError(`${name}:${version} is in use by alias ${before.join(', ')}; it was not deleted`);
    if (!(await entomb(dir, Number(version)))) return;
    // An alias moved onto it while it was being deleted: put it back, as Lambda would refuse.
    const after = pointing(await this.listAliases(name));
    if (after.length) {
      await rename(path.join(dir, `${version}${TOMBSTONE}`), path.join(dir, `${version}.json`));
      throw new AliasConflictError(`${name}:${version} came into use by alias ${after.join(', ')}; it was not deleted`);
    }
    // Versions published before code got a name of its own per version may share a zip.
    const live = new Set((await this.listVersions(name)).map((v) => v.code));
    for (const dead of await tombstones(dir)) {
      const stored = await readJsonIfExists<StoredVersion>(path.join(dir, `${dead}${TOMBSTONE}`));
      if (stored && !live.has(stored.code)) await rm(this.dir(name, stored.code), { force: true });
    }
  }
}

/** The rules Lambda applies to AdditionalVersionWeights, so the local backend refuses what AWS would. */
function checkWeights(name: string, version: string, weights: Record<string, number>): void {
  const entries = Object.entries(weights);
  if (entries.length > 1) throw new InputError(`${name}: an alias routes to at most one additional version`);
  for (const [other, weight] of entries) {
    if (other === version) throw new InputError(`${name}: version ${other} is the alias's primary version and cannot carry a weight`);
    if (!(weight > 0 && weight < 1)) throw new InputError(`${name}: weight ${weight} of version ${other} is not between 0 and 1`);
  }
}

function info(v: StoredVersion): FunctionVersionInfo {
  return {
    name: v.name,
    version: v.version,
    codeSha256: v.codeSha256,
    handler: v.handler,
    runtime: v.runtime,
    layers: v.layers,
    environment: v.environment,
    memorySize: v.memorySize,
    timeout: v.timeout,
  };
}
