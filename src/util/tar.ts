const BLOCK = 512;

function field(header: Buffer, start: number, length: number): string {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

function octal(header: Buffer, start: number, length: number): number {
  const text = field(header, start, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new Error(`tar: bad octal field "${text}"`);
  return text ? Number.parseInt(text, 8) : 0;
}

/** The `path` record of a pax extended header, if any. */
function paxPath(data: Buffer): string | undefined {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    if (record.startsWith('path=')) return record.slice('path='.length);
    at += length;
  }
  return undefined;
}

/**
 * Read a (decompressed) tar stream to its end, handing the bytes of the regular file
 * `name` to `sink` as they pass: a file of hundreds of MB is never held in memory.
 * Understands ustar prefixes, pax `path` records and GNU long names. Returns whether
 * the file was there. The whole stream is always consumed, so a hash of the archive
 * computed upstream covers all of it.
 */
export async function readTarEntry(source: AsyncIterable<Buffer>, name: string, sink: (chunk: Buffer) => void): Promise<boolean> {
  let header = Buffer.alloc(0);
  let remaining = 0;
  let padding = 0;
  let mode: 'skip' | 'take' | 'meta' = 'skip';
  let meta: Buffer[] = [];
  let metaType = '';
  let nextName: string | undefined;
  let found = false;
  let ended = false;

  for await (const chunk of source) {
    let data = chunk;
    while (data.length && !ended) {
      if (remaining > 0) {
        const n = Math.min(remaining, data.length);
        const part = data.subarray(0, n);
        if (mode === 'take') sink(part);
        else if (mode === 'meta') meta.push(part);
        remaining -= n;
        data = data.subarray(n);
        if (remaining === 0 && mode === 'meta') {
          const body = Buffer.concat(meta);
          nextName = metaType === 'x' ? (paxPath(body) ?? nextName) : field(body, 0, body.length);
          meta = [];
        }
        continue;
      }
      if (padding > 0) {
        const n = Math.min(padding, data.length);
        padding -= n;
        data = data.subarray(n);
        continue;
      }
      const need = BLOCK - header.length;
      header = Buffer.concat([header, data.subarray(0, need)]);
      data = data.subarray(need);
      if (header.length < BLOCK) continue;
      const block = header;
      header = Buffer.alloc(0);
      if (block.every((b) => b === 0)) {
        // End of archive (two zero blocks); what follows is padding to the record size.
        ended = true;
        break;
      }
      const type = String.fromCharCode(block[156] ?? 0);
      const size = octal(block, 124, 12);
      const prefix = field(block, 257, 6) === 'ustar' ? field(block, 345, 155) : '';
      const own = field(block, 0, 100);
      const entryName = nextName ?? (prefix ? `${prefix}/${own}` : own);
      remaining = size;
      padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (type === 'x' || type === 'L') {
        mode = 'meta';
        metaType = type;
        continue;
      }
      nextName = undefined;
      const isFile = type === '0' || type === '\0';
      mode = isFile && entryName.replace(/^\.\//, '') === name ? 'take' : 'skip';
      if (mode === 'take') found = true;
    }
  }
  return found;
}
