import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LayerPackagingError } from '../../src/errors.ts';
import { BLOCK_SIZE, blockCount, deflateBlock, fileBlocks, inOrder } from '../../src/zip/deflate.ts';

describe('inOrder', () => {
  it('yields results in task order whatever order they finish in, within the limits', async () => {
    // Prepare: later tasks finish first
    let running = 0;
    let most = 0;
    const task = async (n: number): Promise<number> => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, (10 - n) * 2));
      running--;
      return n * 10;
    };
    // Act
    const results: number[] = [];
    for await (const r of inOrder([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], task, { maxBytes: 3, maxTasks: 8, weight: () => 1 })) results.push(r);
    // Assess
    expect(results).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(most).toBe(3);
  });

  it('always lets one task run, even one heavier than the byte limit', async () => {
    const results: number[] = [];
    for await (const r of inOrder([5, 6], async (n) => n, { maxBytes: 1, maxTasks: 4, weight: (n) => n })) results.push(r);
    expect(results).toEqual([5, 6]);
  });

  it('rethrows a failure at its turn', async () => {
    const task = async (n: number): Promise<number> => {
      if (n === 2) throw new Error('boom');
      return n;
    };
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of inOrder([0, 1, 2, 3], task, { maxBytes: 10, maxTasks: 4, weight: () => 1 })) seen.push(r);
      })(),
    ).rejects.toThrow('boom');
    expect(seen).toEqual([0, 1]);
  });
});

describe('deflateBlock', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-deflate-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('produces blocks whose concatenation is one raw deflate stream of the file', async () => {
    // Prepare
    const data = Buffer.alloc(2 * BLOCK_SIZE + 5000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 12)) & 0xff;
    const file = path.join(dir, 'f');
    await writeFile(file, data);
    // Act
    const tasks = [...fileBlocks(file, 'f', data.length)];
    const blocks = await Promise.all(tasks.map(deflateBlock));
    // Assess
    expect(tasks.map((t) => [t.start, t.end, t.last])).toEqual([
      [0, BLOCK_SIZE, false],
      [BLOCK_SIZE, 2 * BLOCK_SIZE, false],
      [2 * BLOCK_SIZE, data.length, true],
    ]);
    const stream = Buffer.concat(blocks.map((b) => b.deflated));
    expect(zlib.inflateRawSync(stream).equals(data)).toBe(true);
    expect(Buffer.concat(blocks.map((b) => b.data)).equals(data)).toBe(true);
  });

  it('counts blocks with an exact multiple of the block size and with an empty file', () => {
    expect(blockCount(0)).toBe(0);
    expect(blockCount(1)).toBe(1);
    expect(blockCount(BLOCK_SIZE)).toBe(1);
    expect(blockCount(BLOCK_SIZE + 1)).toBe(2);
    expect(blockCount(2 * BLOCK_SIZE)).toBe(2);
  });

  it('refuses a file whose size changed since it was listed', async () => {
    const file = path.join(dir, 'f');
    await writeFile(file, 'grown since listing');
    await expect(deflateBlock({ source: file, name: 'f', start: 0, end: 5, last: true })).rejects.toThrow(LayerPackagingError);
    await expect(deflateBlock({ source: file, name: 'f', start: 0, end: 50, last: true })).rejects.toThrow('f changed size');
  });
});
