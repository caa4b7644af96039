import { stat } from 'node:fs/promises';
import path from 'node:path';
import yauzl from 'yauzl';
import { BakeSpecError, UnsafeSourceBundleError } from '../errors.ts';
import { unzipTo } from './deterministic.ts';

/** Lambda's quota on function code and its layers, unzipped: a bundle cannot usefully hold more. */
export const MAX_BUNDLE_UNZIPPED_BYTES = 250 * 1024 * 1024;
/** Far more files than any bake source has; a bound on the work a hostile archive can ask for. */
export const MAX_BUNDLE_ENTRIES = 50_000;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

/** Why an entry name cannot be extracted safely, or undefined when it can. */
export function unsafeEntryName(name: string): string | undefined {
  if (name.length === 0) return 'an empty name';
  if (name.includes('\0')) return 'a NUL byte in its name';
  if (name.includes('\\')) return 'a backslash in its name (not a portable path)';
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) return 'an absolute path';
  const parts = name.replace(/\/$/, '').split('/');
  if (parts.some((p) => p === '..')) return 'a ".." path segment (it would land outside the bundle)';
  if (parts.some((p) => p === '' || p === '.')) return 'an empty or "." path segment';
  return undefined;
}

interface Scanned {
  entries: number;
  unzippedBytes: number;
}

/**
 * Read the central directory of an untrusted zip without extracting anything, and
 * refuse it (UnsafeSourceBundleError) for an entry name that could escape the target
 * directory, a symlink or other non-regular entry, or declared sizes over Lambda's
 * limit (yauzl then checks while extracting that no entry inflates past its declared size).
 */
export function scanUntrustedZip(zipFile: string, named: string): Promise<Scanned> {
  return new Promise((resolve, reject) => {
    // decodeStrings off: yauzl would reject bad names with a generic error; they are checked here, by name.
    yauzl.open(zipFile, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true }, (error, zip) => {
      if (error || !zip) {
        reject(new BakeSpecError(`bake bundle ${named} is not a usable zip: ${error?.message ?? 'unreadable'}`, { cause: error }));
        return;
      }
      let entries = 0;
      let unzippedBytes = 0;
      const refuse = (why: string) => {
        zip.close();
        reject(
          new UnsafeSourceBundleError(`bake bundle ${named} is refused: ${why}`, {
            hint: 'Zip the bundle from inside the directory holding bake.json, with plain files and directories only (zip -r ../bundle.zip .).',
          }),
        );
      };
      zip.on('error', (cause: Error) => reject(new BakeSpecError(`bake bundle ${named} is not a usable zip: ${cause.message}`, { cause })));
      zip.on('end', () => resolve({ entries, unzippedBytes }));
      zip.on('entry', (entry: yauzl.Entry) => {
        const raw = entry.fileName as unknown as Buffer;
        const name = raw.toString((entry.generalPurposeBitFlag & 0x800) !== 0 ? 'utf8' : 'latin1');
        const shown = JSON.stringify(name.slice(0, 200));
        const bad = unsafeEntryName(name);
        if (bad) return refuse(`entry ${shown} has ${bad}`);
        const type = (entry.externalFileAttributes >>> 16) & S_IFMT;
        // Unix mode 0 means "not recorded" (zips made on Windows): a plain entry.
        if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) {
          return refuse(`entry ${shown} is a ${type === 0o120000 ? 'symbolic link' : 'special file'}, not a file or directory`);
        }
        entries++;
        unzippedBytes += entry.uncompressedSize;
        if (entries > MAX_BUNDLE_ENTRIES) return refuse(`it has more than ${MAX_BUNDLE_ENTRIES} entries`);
        if (unzippedBytes > MAX_BUNDLE_UNZIPPED_BYTES) {
          return refuse(
            `it unzips to more than ${MAX_BUNDLE_UNZIPPED_BYTES} bytes (250 MiB), Lambda's limit for function code and layers together`,
          );
        }
        zip.readEntry();
      });
      zip.readEntry();
    });
  });
}

/**
 * Extract an untrusted bake bundle into `root` after {@link scanUntrustedZip} accepted it,
 * and return its `bake.json`. Shared by every backend's source reader (S3 in AWS, the
 * local bucket of `bakery serve`).
 */
export async function extractBundle(zipFile: string, root: string, named: string): Promise<string> {
  await scanUntrustedZip(zipFile, named);
  try {
    await unzipTo(zipFile, root);
  } catch (cause) {
    throw new BakeSpecError(`bake bundle ${named} is not a usable zip: ${(cause as Error).message}`, { cause });
  }
  const specFile = path.join(root, 'bake.json');
  const info = await stat(specFile).catch(() => undefined);
  if (!info?.isFile()) {
    throw new BakeSpecError(`bake bundle ${named} has no bake.json at its root`, {
      hint: 'Zip the directory holding bake.json from inside it, so bake.json is not under a folder.',
    });
  }
  return specFile;
}
