/**
 * Hostile zips for the bundle checks: entries with any name and Unix mode, stored (not
 * deflated), written with the project's own ZIP record writers, since zip libraries
 * (yazl included) refuse to write `..` or absolute names at all.
 */
import zlib from 'node:zlib';
import { centralHeader, type EntryRecord, endOfCentralDirectory, localHeader, METHOD_STORED } from '../../src/zip/format.ts';

export interface RawEntry {
  name: string;
  data?: string | Buffer;
  /** Unix mode with type bits (default a regular file, 0o100644). */
  mode?: number;
  /** Declare this uncompressed size instead of the real one (a lying header). */
  declaredSize?: number;
}

export function rawZip(entries: RawEntry[]): Buffer {
  const chunks: Buffer[] = [];
  const records: EntryRecord[] = [];
  let offset = 0;
  for (const entry of entries) {
    const data = Buffer.from(entry.data ?? '');
    const record: EntryRecord = {
      name: Buffer.from(entry.name),
      method: METHOD_STORED,
      mode: entry.mode ?? 0o100644,
      crc32: zlib.crc32(data),
      compressedSize: entry.declaredSize ?? data.length,
      uncompressedSize: entry.declaredSize ?? data.length,
      offset,
      dataDescriptor: false,
      zip64Sizes: false,
      forceZip64: false,
    };
    const header = localHeader(record);
    chunks.push(header, data);
    offset += header.length + data.length;
    records.push(record);
  }
  const central = Buffer.concat(records.map((r) => centralHeader(r)));
  chunks.push(
    central,
    endOfCentralDirectory({ entries: records.length, centralSize: central.length, centralOffset: offset, forceZip64: false }),
  );
  return Buffer.concat(chunks);
}
