import fs from 'node:fs';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { LayerPackagingError } from '../errors.ts';

/**
 * Parallel deflate of one file, pigz's way: the file is cut into fixed-size blocks,
 * each block is deflated on its own with the previous 32 KiB of the file as its preset
 * dictionary, every block but the last ends with a sync flush (byte-aligned, not final)
 * and the last with a finish, so the concatenation is one valid raw deflate stream.
 * Each block's bytes depend only on its input, the dictionary, the level and the block
 * size, so the output is the same however many blocks run at once and in which order
 * they finish.
 *
 * The parallelism comes from Node's asynchronous zlib, which runs in libuv's thread
 * pool (4 threads unless UV_THREADPOOL_SIZE says otherwise): no worker threads to start,
 * no block copied between isolates, and nothing to load from a separate worker file
 * (which a bundled Lambda would not have).
 */

/** Block size; part of the byte format (changing it changes every multi-block entry). */
export const BLOCK_SIZE = 1024 * 1024;
/** Deflate level; part of the byte format. 6 is zlib's and zip's default. */
export const LEVEL = 6;
/** Deflate's window: the most a match can reach back, so all a block needs from before it. */
const WINDOW = 32 * 1024;

const deflateRaw = promisify(zlib.deflateRaw);
// The callback forms: lighter than FileHandle objects when there are thousands of small files.
const openFile = promisify(fs.open);
const readAt = promisify(fs.read);
const closeFile = promisify(fs.close);

/** One block of one file: bytes [start, end) of `source`. */
export interface BlockTask {
  source: string;
  /** Path inside the archive, for errors. */
  name: string;
  start: number;
  end: number;
  last: boolean;
}

export interface DeflatedBlock {
  /** The block's uncompressed bytes (for the CRC, and for storing a small file that does not compress). */
  data: Buffer;
  deflated: Buffer;
}

/** Number of blocks a file of `size` bytes is cut into (0 for an empty file). */
export function blockCount(size: number): number {
  return Math.ceil(size / BLOCK_SIZE);
}

/** The blocks of a file of `size` bytes, in order. */
export function* fileBlocks(source: string, name: string, size: number): Generator<BlockTask> {
  const count = blockCount(size);
  for (let i = 0; i < count; i++) {
    const start = i * BLOCK_SIZE;
    yield { source, name, start, end: Math.min(size, start + BLOCK_SIZE), last: i === count - 1 };
  }
}

/** Read the block (and the window before it) from disk and deflate it off the main thread. */
export async function deflateBlock(task: BlockTask): Promise<DeflatedBlock> {
  const from = Math.max(0, task.start - WINDOW);
  const wanted = task.end - from;
  // One byte more on the last block to notice a file that grew since it was listed.
  const buffer = Buffer.allocUnsafe(wanted + (task.last ? 1 : 0));
  let got = 0;
  const fd = await openFile(task.source, 'r');
  try {
    while (got < buffer.length) {
      const { bytesRead } = await readAt(fd, buffer, got, buffer.length - got, from + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
  } finally {
    await closeFile(fd);
  }
  if (got !== wanted) {
    throw new LayerPackagingError(`${task.name} changed size while it was being zipped`, {
      hint: 'Nothing may write to the artefact tree while it is packaged.',
    });
  }
  const data = buffer.subarray(task.start - from, wanted);
  const options: zlib.ZlibOptions = {
    level: LEVEL,
    // Room for the whole output in one buffer: one trip through the thread pool per block.
    chunkSize: data.length + (data.length >> 10) + 1024,
    finishFlush: task.last ? zlib.constants.Z_FINISH : zlib.constants.Z_SYNC_FLUSH,
  };
  if (from < task.start) options.dictionary = buffer.subarray(0, task.start - from);
  return { data, deflated: await deflateRaw(data, options) };
}

/**
 * Run `run` over `tasks`, yielding the results in task order, with at most `maxBytes`
 * of task weight (always at least one task) and `maxTasks` tasks in flight: memory stays
 * bounded whatever the size of the files, and many small files still keep every thread busy.
 */
export async function* inOrder<T, R>(
  tasks: Iterable<T>,
  run: (task: T) => Promise<R>,
  limits: { maxBytes: number; maxTasks: number; weight: (task: T) => number },
): AsyncGenerator<R> {
  const iterator = tasks[Symbol.iterator]();
  const running: Array<{ promise: Promise<R>; weight: number }> = [];
  let inFlight = 0;
  let next = iterator.next();
  const fill = (): void => {
    while (!next.done && running.length < limits.maxTasks) {
      const weight = limits.weight(next.value);
      if (running.length > 0 && inFlight + weight > limits.maxBytes) return;
      const promise = run(next.value);
      // Awaited below, in order; this only keeps a failure that comes before its turn from counting as unhandled.
      promise.catch(() => {});
      running.push({ promise, weight });
      inFlight += weight;
      next = iterator.next();
    }
  };
  fill();
  for (let head = running.shift(); head !== undefined; head = running.shift()) {
    const result = await head.promise;
    inFlight -= head.weight;
    fill();
    yield result;
  }
}
