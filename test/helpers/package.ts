/**
 * Packages the service with osls (offline, no AWS credentials), as `npm run package` does.
 *
 * osls always builds in `<service>/.serverless` (wiped first, even with `--package`)
 * and serverless-esbuild in `<service>/.esbuild`, so packaging runs in a temporary
 * service directory that links to the repo's files: `npm run package` at the same time
 * cannot clobber it, nor it `npm run package`.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../src/local/asl.ts';

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

/** Package the service with `args` (e.g. `['--stage', 'prod', '--param=x=y']`). */
export async function packageService(args: readonly string[] = []): Promise<PackagedService> {
  const serviceDir = await mkdtemp(path.join(os.tmpdir(), 'bakery-service-'));
  const remove = () => rm(serviceDir, { recursive: true, force: true });
  try {
    for (const entry of await readdir(PROJECT_ROOT)) {
      if (!NOT_LINKED.has(entry)) await symlink(path.join(PROJECT_ROOT, entry), path.join(serviceDir, entry));
    }
    // osls only accepts a regular file as the service file.
    await copyFile(path.join(PROJECT_ROOT, 'serverless.yml'), path.join(serviceDir, 'serverless.yml'));
    const outDir = path.join(serviceDir, '.serverless');

    const env: NodeJS.ProcessEnv = { ...process.env, SLS_TELEMETRY_DISABLED: '1' };
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
    const template: unknown = JSON.parse(await readFile(path.join(outDir, 'cloudformation-template-update-stack.json'), 'utf8'));
    return { serviceDir, outDir, template, seconds, remove };
  } catch (error) {
    await remove();
    throw error;
  }
}
