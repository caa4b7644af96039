// A cache of type-stripped TypeScript beside Node's compile cache, for bin/bakery.mjs.
//
// Node 22 strips the types of every .ts module on every start (its compile cache keeps the
// V8 code made from the stripped source, not the stripped source itself; Node >= 23.8 caches
// that too). Stripping, with loading the stripper, is about half of what `bakery status` costs.
// This load hook keeps the stripped source of each module in
// <compile cache dir>/bakery-ts/<sha256 of URL and source>.js and hands it to Node as plain
// JavaScript: byte for byte what Node would have compiled (the same stripper, with Node's own
// `//# sourceURL` line), so nothing but the time changes. Each entry is used only when it is a
// regular file of this user with one link; anything unexpected (another user's entry, a
// failed write, a source Node would not strip this way) falls back to Node's own stripping.

import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import path from 'node:path';

const SUBDIR = 'bakery-ts';

/** The stripped source of `source` (a module at `url`), exactly as Node 22 strips a .ts module it loads. */
export function stripAsNodeDoes(source, url) {
  // module.stripTypeScriptTypes warns that it is experimental; the warning is not the command's to print.
  const emitWarning = process.emitWarning;
  process.emitWarning = (warning, ...rest) => {
    if (!String(warning?.message ?? warning).includes('stripTypeScriptTypes')) emitWarning.call(process, warning, ...rest);
  };
  try {
    return module.stripTypeScriptTypes(source, { mode: 'strip', sourceUrl: url });
  } finally {
    process.emitWarning = emitWarning;
  }
}

/** A cached entry, or undefined when there is none this process may trust. */
function readEntry(file) {
  let fd;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    const info = fstatSync(fd);
    if (!info.isFile() || info.nlink !== 1 || (typeof process.getuid === 'function' && info.uid !== process.getuid())) return undefined;
    return readFileSync(fd, 'utf8');
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Write an entry whole (temp file, rename), readable by this user only; a failure only means no entry. */
function writeEntry(dir, file, text) {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
    renameSync(temp, file);
  } catch {
    // Not cached this time; Node's own result is used all the same.
  }
}

/**
 * Cache type stripping under Node's compile cache directory (`module.getCompileCacheDir()`),
 * so NODE_COMPILE_CACHE moves it and NODE_DISABLE_COMPILE_CACHE=1 turns it off with the
 * compile cache. Returns the directory used, or undefined when it stays off: no compile cache,
 * a Node that caches stripped sources itself or has no synchronous load hooks, or a mode in
 * which Node strips otherwise (source maps, --experimental-transform-types).
 */
export function cacheTypeStripping() {
  const cacheDir = module.getCompileCacheDir?.();
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (
    !cacheDir ||
    typeof module.registerHooks !== 'function' ||
    typeof module.stripTypeScriptTypes !== 'function' ||
    major > 23 ||
    (major === 23 && minor >= 8) ||
    process.features.typescript !== 'strip' ||
    process.sourceMapsEnabled
  ) {
    return undefined;
  }
  const dir = path.join(cacheDir, SUBDIR);
  module.registerHooks({
    load(url, context, nextLoad) {
      const loaded = nextLoad(url, context);
      if (loaded.format !== 'module-typescript' || loaded.source == null || url.includes('/node_modules/')) return loaded;
      const source = typeof loaded.source === 'string' ? loaded.source : Buffer.from(loaded.source).toString('utf8');
      const file = path.join(dir, `${createHash('sha256').update(`${url}\0${source}`).digest('hex')}.js`);
      let stripped = readEntry(file);
      if (stripped === undefined) {
        try {
          stripped = stripAsNodeDoes(source, url);
        } catch {
          return loaded; // Node strips it itself, and reports what is wrong with it as it always does.
        }
        writeEntry(dir, file, stripped);
      }
      return { format: 'module', source: stripped, shortCircuit: true };
    },
  });
  return dir;
}

/**
 * The start-up caches of a bakery process, in the order they need: Node's compile cache, then
 * the type-stripping cache under its directory. For bin/bakery.mjs and, by --import, for the
 * tests' own child processes (test/helpers/cached-start.mjs). Never throws: a cache is only
 * ever a speed-up, without it the process runs as Node runs it.
 */
export function enableStartupCaches() {
  try {
    module.enableCompileCache?.();
    cacheTypeStripping();
  } catch {
    // Not cached this time.
  }
}
