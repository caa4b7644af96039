import { execFile } from 'node:child_process';
import path from 'node:path';
import { makeProgram } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bakery <args>` in-process, through makeProgram, with its output captured. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const { run } = makeProgram({
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
    env,
    cwd,
  });
  const code = await run(args);
  return { code, stdout, stderr };
}

/** The real CLI entry point, and the example spec it bakes. */
export const BIN = path.join(PROJECT_ROOT, 'bin', 'bakery.mjs');
export const EXAMPLE_SPEC = path.join(PROJECT_ROOT, 'examples', 'hello', 'bake.json');

/**
 * The environment of a `bin/bakery.mjs` child on the local backend under `home`: the
 * AWS backend's settings of the test's own environment are dropped unless `extraEnv`
 * sets them.
 */
export function binEnv(home: string, extraEnv: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, BAKERY_HOME: home, BAKERY_USER: 'tester', ...extraEnv };
  for (const name of ['ARTEFACTS_BUCKET', 'TABLE_NAME', 'BAKERY_BACKEND']) if (!(name in extraEnv)) delete env[name];
  return env;
}

/** `node [nodeArgs] bin/bakery.mjs <args>` in a process of its own, run to its end. */
export function runBin(args: string[], home: string, extraEnv: Record<string, string> = {}, nodeArgs: string[] = []): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...nodeArgs, BIN, ...args],
      { cwd: PROJECT_ROOT, env: binEnv(home, extraEnv), maxBuffer: 10 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}
