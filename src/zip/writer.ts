import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, mkdir, open, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { LayerPackagingError } from '../errors.ts';
import { BLOCK_SIZE, blockCount, type DeflatedBlock, deflateBlock, fileBlocks, inOrder } from './deflate.ts';
import type { ZipResult } from './deterministic.ts';
import {
  centralHeader,
  dataDescriptor,
  type EntryRecord,
  endOfCentralDirectory,
  localHeader,
  METHOD_DEFLATED,
  METHOD_STORED,
} from './format.ts';
import type { ZipEntry } from './tree.ts';

const FILE_MODE = 0o100644;
const EXEC_MODE = 0o100755;
const DIR_MODE = 0o040755;

/** Small files in flight at once: enough to hide the latency of open/read/close and of the thread pool. */
const MAX_FILES_IN_FLIGHT = 64;
/** Written output is handed to the file system in batches of about this size. */
const WRITE_BATCH = 1024 * 1024;

export interface WriteZipOptions {
  /**
   * Full-size blocks read and deflated at once (small files count by their size, up to
   * 64 files at once). Never changes the bytes. Default: {@link defaultConcurrency}.
   */
  concurrency?: number;
  /** Use the ZIP64 records everywhere, even where the values fit (to test readers on them). Changes the bytes. */
  forceZip64?: boolean;
}

/**
 * Write `entries` (already in archive order) as a zip at `outFile`. The bytes depend only
 * on the entries' names, kinds, exec bits and contents. The archive is written under a
 * temporary name and renamed when complete.
 */
export async function writeZip(entries: readonly ZipEntry[], outFile: string, options: WriteZipOptions = {}): Promise<ZipResult> {
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? defaultConcurrency()));
  const forceZip64 = options.forceZip64 ?? false;
  await mkdir(path.dirname(outFile), { recursive: true });
  const temp = `${outFile}.${process.pid}.${(tempCounter++).toString(36)}.partial`;
  const handle = await open(temp, 'w');
  const out = new Output(handle);
  const blocks = inOrder(allBlocks(entries), deflateBlock, {
    maxBytes: concurrency * BLOCK_SIZE,
    maxTasks: MAX_FILES_IN_FLIGHT,
    weight: (block) => block.end - block.start,
  });
  const nextBlock = async (): Promise<DeflatedBlock> => {
    const next = await blocks.next();
    if (next.done) throw new Error('zip writer: fewer blocks than planned');
    return next.value;
  };
  let unzippedSize = 0;
  try {
    const records: EntryRecord[] = [];
    for (const entry of entries) {
      const record: EntryRecord = {
        name: Buffer.from(entry.name, 'utf8'),
        method: METHOD_STORED,
        mode: entry.kind === 'dir' ? DIR_MODE : entry.executable ? EXEC_MODE : FILE_MODE,
        crc32: 0,
        compressedSize: 0,
        uncompressedSize: 0,
        offset: out.position,
        dataDescriptor: false,
        zip64Sizes: forceZip64,
        forceZip64,
      };
      if (record.name.length > 0xffff) throw new LayerPackagingError(`path too long for a zip entry: ${entry.name.slice(0, 80)}…`);
      records.push(record);
      const count = entry.kind === 'file' ? blockCount(entry.size) : 0;
      if (count === 0) {
        // Directories and empty files: stored, nothing follows the header.
        out.push(localHeader(record));
      } else if (count === 1) {
        // A small file is whole in memory: its header can carry the CRC and sizes, and
        // it is stored as is when deflate does not make it smaller (as zip does).
        const { data, deflated } = await nextBlock();
        const store = deflated.length >= data.length;
        record.method = store ? METHOD_STORED : METHOD_DEFLATED;
        record.crc32 = zlib.crc32(data);
        record.uncompressedSize = data.length;
        record.compressedSize = store ? data.length : deflated.length;
        out.push(localHeader(record));
        out.push(store ? data : deflated);
      } else {
        // A large file streams through: its CRC and sizes follow the data in a descriptor.
        record.method = METHOD_DEFLATED;
        record.dataDescriptor = true;
        record.zip64Sizes ||= mayExceed32Bits(entry.size, count);
        out.push(localHeader(record));
        for (let i = 0; i < count; i++) {
          const { data, deflated } = await nextBlock();
          record.crc32 = zlib.crc32(data, record.crc32);
          record.uncompressedSize += data.length;
          record.compressedSize += deflated.length;
          out.push(deflated);
          await out.flush(WRITE_BATCH);
        }
        if (!record.zip64Sizes && record.compressedSize >= 0xffffffff) {
          throw new Error(`zip writer: ${entry.name} compressed past 4 GiB without ZIP64`);
        }
        out.push(dataDescriptor(record));
      }
      unzippedSize += record.uncompressedSize;
      await out.flush(WRITE_BATCH);
    }
    const centralOffset = out.position;
    for (const record of records) out.push(centralHeader(record));
    const centralSize = out.position - centralOffset;
    out.push(endOfCentralDirectory({ entries: records.length, centralSize, centralOffset, forceZip64 }));
    await out.flush(0);
    await handle.close();
    await rename(temp, outFile);
  } catch (error) {
    await blocks.return(undefined);
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  const digest = out.hash.digest();
  return {
    file: outFile,
    sha256Hex: digest.toString('hex'),
    sha256Base64: digest.toString('base64'),
    size: out.position,
    unzippedSize,
    entries: entries.length,
  };
}

let tempCounter = 0;

/**
 * Blocks in flight by default: one more than the CPUs, and at least two more than libuv's
 * thread pool (UV_THREADPOOL_SIZE, default 4), where the blocks deflate. Blocks are taken
 * in archive order, so a block that is slow to finish holds back the ones after it; with a
 * few queued behind the running ones, no thread of the pool waits for it. On 2 CPUs (6 rather
 * than 3) this took the ~125 MB runtime tree from 1.31 s to 1.24 s (median of 5); the bytes
 * are the same.
 */
export function defaultConcurrency(): number {
  const pool = Number.parseInt(process.env.UV_THREADPOOL_SIZE ?? '', 10);
  return Math.max(os.availableParallelism() + 1, (Number.isInteger(pool) && pool > 0 ? pool : 4) + 2);
}

function* allBlocks(entries: readonly ZipEntry[]): Generator<Parameters<typeof deflateBlock>[0]> {
  for (const entry of entries) {
    if (entry.kind === 'file') yield* fileBlocks(entry.source, entry.name, entry.size);
  }
}

/**
 * Whether a streamed entry needs 8-byte sizes, decided before its data is written:
 * deflate can grow incompressible data by a little (zlib's bound is under 0.1%, plus
 * 5 bytes per sync-flushed block), so ZIP64 starts slightly below 4 GiB.
 */
function mayExceed32Bits(size: number, blocks: number): boolean {
  return size + Math.ceil(size / 1024) + 16 * blocks + 1024 >= 0xffffffff;
}

/** The archive as it is written: position, running SHA-256, batched writes. */
class Output {
  readonly hash: Hash = createHash('sha256');
  position = 0;
  private readonly handle: FileHandle;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.hash.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    this.position += chunk.length;
  }

  /** Write what is pending once it reaches `atLeast` bytes. */
  async flush(atLeast: number): Promise<void> {
    if (this.pendingBytes === 0 || this.pendingBytes < atLeast) return;
    let chunks = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    while (chunks.length > 0) {
      const { bytesWritten } = await this.handle.writev(chunks);
      chunks = rest(chunks, bytesWritten);
    }
  }
}

/** What remains of `chunks` after its first `written` bytes. */
function rest(chunks: Buffer[], written: number): Buffer[] {
  let skip = written;
  let i = 0;
  for (const chunk of chunks) {
    if (skip < chunk.length) break;
    skip -= chunk.length;
    i++;
  }
  const remaining = chunks.slice(i);
  const first = remaining[0];
  if (first !== undefined && skip > 0) remaining[0] = first.subarray(skip);
  return remaining;
}
