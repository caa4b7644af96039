/**
 * ZIP records (PKWARE APPNOTE 6.3), written by hand rather than through a zip library:
 * the parallel deflate in ./deflate.ts produces one entry's data as many independently
 * compressed blocks, and no Node zip library accepts precompressed data. Owning the
 * container also keeps every byte decided here: no extra fields (no owner ids, no "UT"
 * timestamp carrying the time zone), one fixed DOS time, Unix modes.
 */

/** 1980-01-01 00:00:00, the earliest DOS time, as its two stored 16-bit words. No `Date` is involved, so the time zone cannot leak in. */
export const DOS_TIME = 0;
export const DOS_DATE = (0 << 9) | (1 << 5) | 1;

export const METHOD_STORED = 0;
export const METHOD_DEFLATED = 8;

const FLAG_DATA_DESCRIPTOR = 1 << 3;
const FLAG_UTF8 = 1 << 11;
/** "Version made by": 3 = Unix (so readers take the mode from the external attributes), spec 4.5. */
const VERSION_MADE_BY = (3 << 8) | 45;
const VERSION_NEEDED = 20;
const VERSION_NEEDED_ZIP64 = 45;
/** MS-DOS directory attribute, for readers that ignore the Unix mode. */
const DOS_DIRECTORY = 0x10;

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const ZIP64_EXTRA_ID = 0x0001;

export interface EntryRecord {
  /** UTF-8 name inside the archive ('/'-separated, directories end with '/'). */
  name: Buffer;
  method: typeof METHOD_STORED | typeof METHOD_DEFLATED;
  /** Unix mode including the file type bits. */
  mode: number;
  crc32: number;
  compressedSize: number;
  uncompressedSize: number;
  /** Offset of the local header from the start of the archive. */
  offset: number;
  /** The sizes follow the data in a data descriptor (they were unknown when the local header was written). */
  dataDescriptor: boolean;
  /** Sizes are ZIP64 (8-byte) in the local header and data descriptor. Decided before the data is written. */
  zip64Sizes: boolean;
  /** Put every size and the offset in the central ZIP64 field, even when they fit (tests of ZIP64 readers). */
  forceZip64: boolean;
}

function flags(entry: EntryRecord): number {
  return FLAG_UTF8 | (entry.dataDescriptor ? FLAG_DATA_DESCRIPTOR : 0);
}

/** Local file header. With a data descriptor the CRC and sizes are zero here (ZIP64: 0xffffffff with zeros in the ZIP64 field). */
export function localHeader(entry: EntryRecord): Buffer {
  const known = !entry.dataDescriptor;
  const extra = entry.zip64Sizes ? Buffer.alloc(20) : Buffer.alloc(0);
  if (entry.zip64Sizes) {
    extra.writeUInt16LE(ZIP64_EXTRA_ID, 0);
    extra.writeUInt16LE(16, 2);
    extra.writeBigUInt64LE(BigInt(known ? entry.uncompressedSize : 0), 4);
    extra.writeBigUInt64LE(BigInt(known ? entry.compressedSize : 0), 12);
  }
  const header = Buffer.alloc(30);
  header.writeUInt32LE(0x04034b50, 0);
  header.writeUInt16LE(entry.zip64Sizes ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 4);
  header.writeUInt16LE(flags(entry), 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt16LE(DOS_TIME, 10);
  header.writeUInt16LE(DOS_DATE, 12);
  header.writeUInt32LE(known ? entry.crc32 : 0, 14);
  header.writeUInt32LE(entry.zip64Sizes ? U32_MAX : known ? u32(entry.compressedSize) : 0, 18);
  header.writeUInt32LE(entry.zip64Sizes ? U32_MAX : known ? u32(entry.uncompressedSize) : 0, 22);
  header.writeUInt16LE(entry.name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, entry.name, extra]);
}

/** Data descriptor, with its optional signature (some readers require it); 8-byte sizes for ZIP64 entries. */
export function dataDescriptor(entry: EntryRecord): Buffer {
  if (entry.zip64Sizes) {
    const out = Buffer.alloc(24);
    out.writeUInt32LE(0x08074b50, 0);
    out.writeUInt32LE(entry.crc32, 4);
    out.writeBigUInt64LE(BigInt(entry.compressedSize), 8);
    out.writeBigUInt64LE(BigInt(entry.uncompressedSize), 16);
    return out;
  }
  const out = Buffer.alloc(16);
  out.writeUInt32LE(0x08074b50, 0);
  out.writeUInt32LE(entry.crc32, 4);
  out.writeUInt32LE(u32(entry.compressedSize), 8);
  out.writeUInt32LE(u32(entry.uncompressedSize), 12);
  return out;
}

/** Central directory header. A value that does not fit in 32 bits is 0xffffffff and moves to the ZIP64 field, in the APPNOTE's order. */
export function centralHeader(entry: EntryRecord): Buffer {
  const sizesIn64 = entry.zip64Sizes || entry.forceZip64;
  const wide: bigint[] = [];
  if (sizesIn64 || entry.uncompressedSize >= U32_MAX) wide.push(BigInt(entry.uncompressedSize));
  if (sizesIn64 || entry.compressedSize >= U32_MAX) wide.push(BigInt(entry.compressedSize));
  const offsetIn64 = entry.forceZip64 || entry.offset >= U32_MAX;
  if (offsetIn64) wide.push(BigInt(entry.offset));
  const extra = wide.length > 0 ? Buffer.alloc(4 + 8 * wide.length) : Buffer.alloc(0);
  if (wide.length > 0) {
    extra.writeUInt16LE(ZIP64_EXTRA_ID, 0);
    extra.writeUInt16LE(8 * wide.length, 2);
    wide.forEach((value, i) => {
      extra.writeBigUInt64LE(value, 4 + 8 * i);
    });
  }
  const isDir = (entry.mode & 0o170000) === 0o040000;
  const header = Buffer.alloc(46);
  header.writeUInt32LE(0x02014b50, 0);
  header.writeUInt16LE(VERSION_MADE_BY, 4);
  header.writeUInt16LE(wide.length > 0 || entry.zip64Sizes ? VERSION_NEEDED_ZIP64 : VERSION_NEEDED, 6);
  header.writeUInt16LE(flags(entry), 8);
  header.writeUInt16LE(entry.method, 10);
  header.writeUInt16LE(DOS_TIME, 12);
  header.writeUInt16LE(DOS_DATE, 14);
  header.writeUInt32LE(entry.crc32, 16);
  header.writeUInt32LE(sizesIn64 || entry.compressedSize >= U32_MAX ? U32_MAX : entry.compressedSize, 20);
  header.writeUInt32LE(sizesIn64 || entry.uncompressedSize >= U32_MAX ? U32_MAX : entry.uncompressedSize, 24);
  header.writeUInt16LE(entry.name.length, 28);
  header.writeUInt16LE(extra.length, 30);
  header.writeUInt16LE(0, 32); // comment length
  header.writeUInt16LE(0, 34); // disk number start
  header.writeUInt16LE(0, 36); // internal attributes: no text/binary guess, it would depend on content sniffing
  header.writeUInt32LE(((entry.mode << 16) | (isDir ? DOS_DIRECTORY : 0)) >>> 0, 38);
  header.writeUInt32LE(offsetIn64 ? U32_MAX : entry.offset, 42);
  return Buffer.concat([header, entry.name, extra]);
}

/**
 * End of central directory; preceded by the ZIP64 end record and locator when a count,
 * size or offset does not fit (or when forced, in which case every EOCD field says "see ZIP64").
 */
export function endOfCentralDirectory(options: {
  entries: number;
  centralSize: number;
  centralOffset: number;
  forceZip64: boolean;
}): Buffer {
  const { entries, centralSize, centralOffset, forceZip64 } = options;
  const manyEntries = forceZip64 || entries >= U16_MAX;
  const bigSize = forceZip64 || centralSize >= U32_MAX;
  const bigOffset = forceZip64 || centralOffset >= U32_MAX;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(0, 4); // this disk
  eocd.writeUInt16LE(0, 6); // disk with the central directory
  eocd.writeUInt16LE(manyEntries ? U16_MAX : entries, 8);
  eocd.writeUInt16LE(manyEntries ? U16_MAX : entries, 10);
  eocd.writeUInt32LE(bigSize ? U32_MAX : centralSize, 12);
  eocd.writeUInt32LE(bigOffset ? U32_MAX : centralOffset, 16);
  eocd.writeUInt16LE(0, 20); // comment length
  if (!manyEntries && !bigSize && !bigOffset) return eocd;

  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(BigInt(56 - 12), 4);
  record.writeUInt16LE(VERSION_MADE_BY, 12);
  record.writeUInt16LE(VERSION_NEEDED_ZIP64, 14);
  record.writeUInt32LE(0, 16);
  record.writeUInt32LE(0, 20);
  record.writeBigUInt64LE(BigInt(entries), 24);
  record.writeBigUInt64LE(BigInt(entries), 32);
  record.writeBigUInt64LE(BigInt(centralSize), 40);
  record.writeBigUInt64LE(BigInt(centralOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeUInt32LE(0, 4);
  locator.writeBigUInt64LE(BigInt(centralOffset + centralSize), 8);
  locator.writeUInt32LE(1, 16); // total number of disks
  return Buffer.concat([record, locator, eocd]);
}

function u32(value: number): number {
  if (value >= U32_MAX) throw new RangeError(`ZIP field overflow: ${value} needs ZIP64`);
  return value;
}
