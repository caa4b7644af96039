import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { StateDirError } from '../errors.ts';

/**
 * The marker that makes a directory a bakery home: `<BAKERY_HOME>/.bakery-home` holding
 * `{"format":1}`. Bakery writes its state only into a directory that carries it (or that
 * it creates, or an older home it recognises by its layout), never among another tool's files.
 */
export const HOME_MARKER = '.bakery-home';
/** The layout version of the state directory; a home of a newer format is not touched. */
export const HOME_FORMAT = 1;

/** What bakery itself keeps at the top of its home (src/adapters/local, src/local, src/serve). */
const LAYOUT = new Set([
  'alarms',
  'approvals',
  'artefacts',
  'builds',
  'executions',
  'functions',
  'layers',
  'ledger.ends',
  'ledger.jsonl',
  'serve',
  'serve.json',
  'tokens',
]);

/** A top-level entry bakery could have made: a layout name, or a lock or temporary file beside one. */
function isBakerys(entry: string): boolean {
  if (LAYOUT.has(entry)) return true;
  const base = entry.replace(/^\./, '').replace(/\.(lock|tmp)$|\.[0-9a-f]{6,}\.tmp$/, '');
  return LAYOUT.has(base);
}

const HINT = `Point BAKERY_HOME at an empty or new directory (bakery creates it), or at an existing bakery home.`;

/**
 * Check that `root` (an existing directory) is bakery's own before anything is written
 * there: a marker of a known format, an empty directory, or an unmarked older home whose
 * every top-level entry is bakery's. With `write`, an empty or older home gets the
 * marker (adopted); without it nothing is written, so read commands work on a read-only
 * home. Anything else is refused with a StateDirError naming the directory.
 */
export async function claimHome(root: string, options: { write: boolean }): Promise<void> {
  const markerFile = path.join(root, HOME_MARKER);
  const marker = await readFile(markerFile, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new StateDirError(`cannot read ${markerFile}: ${error.message}`, { cause: error, hint: HINT });
  });
  if (marker !== undefined) {
    let format: unknown;
    try {
      format = (JSON.parse(marker) as { format?: unknown }).format;
    } catch {
      format = undefined;
    }
    if (format === HOME_FORMAT) return;
    throw new StateDirError(
      typeof format === 'number'
        ? `state directory ${root} has format ${format}; this bakery reads format ${HOME_FORMAT}`
        : `${markerFile} is not a bakery home marker (expected {"format":${HOME_FORMAT}})`,
      { hint: typeof format === 'number' ? 'Use the bakery version that wrote it, or another BAKERY_HOME.' : HINT },
    );
  }
  const entries = await readdir(root);
  const foreign = entries.filter((entry) => !isBakerys(entry));
  if (foreign.length > 0) {
    const shown = foreign.sort().slice(0, 5).join(', ');
    throw new StateDirError(
      `${root} is not a bakery home: it has no ${HOME_MARKER} and holds files bakery did not write (${shown}${foreign.length > 5 ? `, … ${foreign.length} in all` : ''}); nothing was written there`,
      { hint: HINT },
    );
  }
  if (options.write) await writeFile(markerFile, `${JSON.stringify({ format: HOME_FORMAT })}\n`, { flag: 'wx' }).catch(ignoreExists);
}

function ignoreExists(error: NodeJS.ErrnoException): void {
  // Another bakery process adopted the home at the same moment: the marker is there.
  if (error.code !== 'EEXIST') throw error;
}
