import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { StateDamagedError } from '../errors.ts';

/**
 * Small durable-file helpers for the local backend. Node has no atomic-write API and
 * the libraries that offer one (write-file-atomic) lack the exclusive-create variant
 * the decide-once rule needs, so both are written here on the classic POSIX recipe:
 * write a temp file in the same directory, fsync it, then rename (replace) or link
 * (create-if-absent) it into place, and fsync the directory.
 */

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function writeTemp(target: string, data: string | Uint8Array): Promise<string> {
  const dir = path.dirname(target);
  await mkdir(dir, { recursive: true });
  const temp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

/** Replace `target` with `data` atomically: readers see the old or the new file, never a torn one. */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  const temp = await writeTemp(target, data);
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDir(path.dirname(target));
}

/**
 * Create `target` with `data` only if it does not exist yet: the local equivalent of a
 * conditional put. Returns false (and writes nothing) when it already exists.
 */
export async function createFileExclusive(target: string, data: string | Uint8Array): Promise<boolean> {
  const temp = await writeTemp(target, data);
  try {
    await link(temp, target);
    await fsyncDir(path.dirname(target));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(temp, { force: true });
  }
}

export async function writeJsonAtomic(target: string, value: unknown): Promise<void> {
  await writeFileAtomic(target, `${JSON.stringify(value, null, 2)}\n`);
}

export async function createJsonExclusive(target: string, value: unknown): Promise<boolean> {
  return createFileExclusive(target, `${JSON.stringify(value, null, 2)}\n`);
}

/** What to do about a damaged file of the state directory. */
export const DAMAGED_HINT =
  'bakery writes its files whole (write, fsync, rename), so this one was changed outside bakery or the disk is damaged: restore it from a backup, or move it away and run the command again.';

/** Read a JSON file; `undefined` when it does not exist; a StateDamagedError naming it when it is not JSON. */
export async function readJsonIfExists<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new StateDamagedError(`${file} is damaged: ${text.length === 0 ? 'it is empty' : `not JSON (${(cause as Error).message})`}`, {
      cause,
      hint: DAMAGED_HINT,
    });
  }
}

/**
 * Append one line and fsync before returning, so an acknowledged entry survives a crash.
 * The line goes out in one write on an O_APPEND descriptor, so concurrent appenders
 * never interleave. If the file does not end with a newline (a writer was killed
 * mid-line), the line starts on a new one: the torn fragment stays a line of its own,
 * never glued to the next entry.
 */
export async function appendLineDurable(file: string, line: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'a+', 0o644);
  try {
    const { size } = await handle.stat();
    let lead = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) lead = '\n';
    }
    await handle.write(`${lead}${line}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** SHA-256 of a file, streamed. */
export async function sha256File(file: string): Promise<{ hex: string; base64: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  const digest = hash.digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64'), size };
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
