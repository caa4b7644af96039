/**
 * Packages the service with osls (offline, no AWS credentials), as `npm run package` does.
 *
 * osls always builds in `<service>/.serverless` (wiped first, even with `--package`)
 * and serverless-esbuild in `<service>/.esbuild`, so packaging runs in a temporary
 * service directory that links to the repo's files: `npm run package` at the same time
 * cannot clobber it, nor it `npm run package`.
 *
 * The default packaging is the same for every deploy test file, so `sharedDefaultPackage()`
 * makes it once per `vitest run` (test/global-setup.ts) and hands every file the same one.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { readJsonIfExists, writeJsonAtomic } from '../../src/util/fsx.ts';
import { currentOwner, ownerLiveness, type ProcessOwner } from '../../src/util/owner.ts';
import { SHARED_PACKAGE_DIR } from '../global-setup.ts';

const run = promisify(execFile);

/** Build outputs and local state that must not leak into the temporary service. */
const NOT_LINKED = new Set(['.git', '.serverless', '.esbuild', '.bakery', 'coverage', 'serverless.yml']);

export interface PackagedService {
  /** The temporary service directory (links to the repo's files). */
  serviceDir: string;
  /** Its `.serverless` directory: the template and the function zips. */
  outDir: string;
  /** `cloudformation-template-update-stack.json`, parsed. */
  template: unknown;
  seconds: number;
  /** Removes the temporary service (the links, never what they point to). */
  remove(): Promise<void>;
}

/** `osls package` refused: its output says why. */
export class PackagingFailed extends Error {
  readonly output: string;

  constructor(message: string, output: string, options: { cause?: unknown } = {}) {
    super(`${message}\n${output}`, options);
    this.name = 'PackagingFailed';
    this.output = output;
  }
}

const TEMPLATE = 'cloudformation-template-update-stack.json';

/**
 * Package the service with `args` (e.g. `['--stage', 'prod', '--param=x=y']`), in a new
 * service directory under `options.under` (the OS tmpdir by default).
 */
export async function packageService(args: readonly string[] = [], options: { under?: string } = {}): Promise<PackagedService> {
  const serviceDir = await mkdtemp(path.join(options.under ?? os.tmpdir(), 'bakery-service-'));
  const remove = () => rm(serviceDir, { recursive: true, force: true });
  try {
    for (const entry of await readdir(PROJECT_ROOT)) {
      if (!NOT_LINKED.has(entry)) await symlink(path.join(PROJECT_ROOT, entry), path.join(serviceDir, entry));
    }
    // osls only accepts a regular file as the service file.
    await copyFile(path.join(PROJECT_ROOT, 'serverless.yml'), path.join(serviceDir, 'serverless.yml'));
    const outDir = path.join(serviceDir, '.serverless');

    // serverless-esbuild stages each function's zip in a directory of the OS tmpdir that it
    // leaves behind (16 a packaging, up to 6 MB each): give it one inside the service, which goes with it.
    const tmp = path.join(serviceDir, '.tmp');
    await mkdir(tmp);
    const env: NodeJS.ProcessEnv = { ...process.env, SLS_TELEMETRY_DISABLED: '1', TMPDIR: tmp };
    // Packaging must not depend on any AWS identity.
    for (const name of ['AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) {
      delete env[name];
    }
    const started = Date.now();
    await run(process.execPath, [path.join(PROJECT_ROOT, 'node_modules', 'osls', 'bin', 'serverless.js'), 'package', ...args], {
      cwd: serviceDir,
      env,
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    }).catch((error: Error & { stdout?: string; stderr?: string }) => {
      throw new PackagingFailed(`osls package failed: ${error.message}`, `${error.stdout ?? ''}\n${error.stderr ?? ''}`, { cause: error });
    });
    const seconds = (Date.now() - started) / 1000;
    const template: unknown = JSON.parse(await readFile(path.join(outDir, TEMPLATE), 'utf8'));
    return { serviceDir, outDir, template, seconds, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}

// ---------------------------------------------------------------- one default packaging per run

/** What the process that packaged tells the others, in `done.json`. */
export interface SharedPackaging {
  serviceDir: string;
  outDir: string;
  seconds: number;
}

/** Waiting for another process's packaging took too long, or that process died before it finished. */
export class SharedPackageWaitFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SharedPackageWaitFailed';
  }
}

/**
 * `produce()` once across the processes sharing `dir`: the first caller takes `<dir>/lock`
 * (mkdir is atomic), produces, and writes `<dir>/done.json` or `<dir>/failed.json`; every
 * other caller polls for one of them (every `pollMs`, for at most `waitMs`) and returns the
 * same result or throws a PackagingFailed with the first caller's output.
 */
export async function shareOnce(
  dir: string,
  produce: () => Promise<SharedPackaging>,
  { pollMs = 200, waitMs = 270_000 }: { pollMs?: number; waitMs?: number } = {},
): Promise<SharedPackaging> {
  const lock = path.join(dir, 'lock');
  const done = path.join(dir, 'done.json');
  const failed = path.join(dir, 'failed.json');
  const ownerFile = path.join(lock, 'owner.json');
  const taken = await mkdir(lock).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === 'EEXIST') return false;
      throw error;
    },
  );
  // Another process may read any of these files at any moment: each is written whole (fsx).
  if (taken) {
    await writeJsonAtomic(ownerFile, currentOwner());
    try {
      const result = await produce();
      await writeJsonAtomic(done, result);
      return result;
    } catch (error) {
      const output = error instanceof PackagingFailed ? error.output : '';
      await writeJsonAtomic(failed, { message: error instanceof Error ? error.message : String(error), output });
      throw error;
    }
  }

  const deadline = Date.now() + waitMs;
  for (;;) {
    const result = await readJsonIfExists<SharedPackaging>(done);
    if (result) return result;
    const failure = await readJsonIfExists<{ message: string; output: string }>(failed);
    if (failure) throw new PackagingFailed(`the shared packaging failed in another process: ${failure.message}`, failure.output);
    // The owner file is written just after the lock: until then, keep waiting.
    const owner = await readJsonIfExists<ProcessOwner>(ownerFile);
    if (owner && ownerLiveness(owner) === 'dead') {
      // It may have written its result just before it exited.
      if ((await readJsonIfExists(done)) || (await readJsonIfExists(failed))) continue;
      throw new SharedPackageWaitFailed(`process ${owner.pid}, which took ${lock}, ended without writing ${done} or ${failed}`);
    }
    if (Date.now() >= deadline) {
      throw new SharedPackageWaitFailed(
        `waited ${waitMs / 1000} s for ${done} or ${failed} from process ${owner?.pid ?? '(unknown)'}, which took ${lock}`,
      );
    }
    await sleep(pollMs);
  }
}

/** The run's shared directory from test/global-setup.ts, or undefined outside a vitest worker. */
function sharedDir(): string | undefined {
  try {
    return inject(SHARED_PACKAGE_DIR);
  } catch {
    // inject throws outside a vitest worker (a script importing this helper).
    return undefined;
  }
}

/**
 * The default packaging (`packageService()` with no args) of this `vitest run`, made by
 * whichever test file asks first (each file runs in a worker process of its own) and shared
 * by the others: treat its directories as read-only. Its `remove()` does nothing: the global
 * teardown of test/global-setup.ts removes the shared directory. Outside vitest (no shared
 * directory provided) it is a private `packageService()`, whose `remove()` removes it.
 *
 * Waiting for another file's packaging is bounded (270 s, below the 300 s the deploy files
 * give their beforeAll, above osls's own 240 s timeout), then throws SharedPackageWaitFailed.
 */
export async function sharedDefaultPackage(): Promise<PackagedService> {
  const dir = sharedDir();
  if (dir === undefined) return packageService();
  const { serviceDir, outDir, seconds } = await shareOnce(dir, async () => {
    const packaged = await packageService([], { under: dir });
    return { serviceDir: packaged.serviceDir, outDir: packaged.outDir, seconds: packaged.seconds };
  });
  // Each caller its own copy: no test file can change what another reads.
  const template: unknown = JSON.parse(await readFile(path.join(outDir, TEMPLATE), 'utf8'));
  return { serviceDir, outDir, template, seconds, remove: async () => {} };
}
