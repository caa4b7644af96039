import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';

/**
 * Read a (decompressed) tar stream to its end, handing the bytes of the regular file
 * `name` to `sink` as they pass: a file of hundreds of MB is never held in memory.
 * tar-stream reads the headers (ustar prefixes, pax `path` records, GNU long names).
 * Returns whether the file was there. The whole stream is always consumed, so a hash of
 * the archive computed upstream covers all of it.
 */
export async function readTarEntry(source: AsyncIterable<Buffer>, name: string, sink: (chunk: Buffer) => void): Promise<boolean> {
  const entries = extract();
  let found = false;
  const take = async () => {
    for await (const entry of entries) {
      const wanted = entry.header.type === 'file' && entry.header.name.replace(/^\.\//, '') === name;
      if (wanted) found = true;
      // Every entry's body must be read (or drained) before tar-stream moves to the next.
      for await (const chunk of entry) if (wanted) sink(chunk as Buffer);
    }
  };
  await Promise.all([pipeline(Readable.from(source), entries), take()]);
  return found;
}
