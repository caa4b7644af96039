import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTarEntry } from '../../src/util/tar.ts';

const run = promisify(execFile);

let work: string;
const LONG_DIR = `${'deeply-nested-directory/'.repeat(6)}bin`;
const CONTENT = Buffer.alloc(70_000, 'n');

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'bakery-tar-test-'));
  await mkdir(path.join(work, 'tree', LONG_DIR), { recursive: true });
  await writeFile(path.join(work, 'tree', LONG_DIR, 'node'), CONTENT);
  await writeFile(path.join(work, 'tree', 'small.txt'), 'small\n');
  await mkdir(path.join(work, 'tree', 'empty-dir'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Reads in small, unaligned chunks, as a network stream would deliver them. */
async function* chunked(file: string): AsyncIterable<Buffer> {
  for await (const chunk of createReadStream(file, { highWaterMark: 777 })) yield chunk as Buffer;
}

describe('readTarEntry', () => {
  // GNU tar writes long names as ././@LongLink entries, pax as extended headers, ustar with a prefix field.
  it.each(['gnu', 'pax', 'ustar'])('finds a file with a path over 100 characters in a %s archive, and streams it whole', async (format) => {
    // Prepare
    const archive = path.join(work, `${format}.tar`);
    await run('tar', [`--format=${format}`, '-cf', archive, '-C', path.join(work, 'tree'), '.']);
    const parts: Buffer[] = [];

    // Act
    const found = await readTarEntry(chunked(archive), `${LONG_DIR}/node`, (chunk) => parts.push(Buffer.from(chunk)));

    // Assess
    expect(found).toBe(true);
    expect(Buffer.concat(parts).equals(CONTENT)).toBe(true);
  });

  it('says when the file is not there, having read everything', async () => {
    const archive = path.join(work, 'plain.tar');
    await run('tar', ['-cf', archive, '-C', path.join(work, 'tree'), 'small.txt']);
    let bytes = 0;
    expect(await readTarEntry(chunked(archive), 'bin/node', (chunk) => (bytes += chunk.length))).toBe(false);
    expect(bytes).toBe(0);
    expect(await readTarEntry(chunked(archive), 'small.txt', (chunk) => (bytes += chunk.length))).toBe(true);
    expect(bytes).toBe(6);
  });

  it('reads the stream to its end (record padding included), so a hash taken upstream covers the whole archive', async () => {
    // Prepare: the entry comes first; tar pads the archive to its 10 KiB record size after it.
    const archive = path.join(work, 'padded.tar');
    await run('tar', ['-cf', archive, '-C', path.join(work, 'tree'), 'small.txt']);
    let pulled = 0;
    async function* counted(): AsyncIterable<Buffer> {
      for await (const chunk of chunked(archive)) {
        pulled += chunk.length;
        yield chunk;
      }
    }

    // Act
    const found = await readTarEntry(counted(), 'small.txt', () => {});

    // Assess
    expect(found).toBe(true);
    expect(pulled).toBe((await stat(archive)).size);
    expect(pulled).toBeGreaterThanOrEqual(10_240);
  });
});
