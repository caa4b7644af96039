import { accessSync, constants, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This checkout's CLI entry point. */
export const BAKERY_BIN = fileURLToPath(new URL('../../bin/bakery.mjs', import.meta.url));

const quote = (value: string): string => (/^[\w@%+=:,./-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`);

function realpath(file: string): string | null {
  try {
    return realpathSync(file);
  } catch {
    return null;
  }
}

/** Whether a `bakery` on PATH is this checkout's (`npm link`, `npm install -g .`), not some other package. */
function onPath(env: NodeJS.ProcessEnv, bin: string): boolean {
  const target = realpath(bin);
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, 'bakery');
    try {
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    // The first executable `bakery` on PATH is the one a shell runs.
    return target !== null && realpath(candidate) === target;
  }
  return false;
}

/**
 * The command line that runs this bakery from where the user stands, for hints such as
 * "decide from another terminal". Not `npx bakery`: outside this repo npx resolves an
 * unrelated registry package of that name. `bakery` when PATH has this checkout's;
 * otherwise `node <path to bin/bakery.mjs>`, relative when that is below the working
 * directory. `BAKERY_HOME` comes along when it is set, so the other terminal sees the
 * same state directory.
 */
export function bakeryCommand(options: { env?: NodeJS.ProcessEnv; cwd?: string; bin?: string } = {}): string {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const bin = options.bin ?? BAKERY_BIN;
  const relative = path.relative(cwd, bin);
  const runner = onPath(env, bin) ? 'bakery' : `node ${quote(relative.startsWith('..') || path.isAbsolute(relative) ? bin : relative)}`;
  return env.BAKERY_HOME ? `BAKERY_HOME=${quote(path.resolve(cwd, env.BAKERY_HOME))} ${runner}` : runner;
}
