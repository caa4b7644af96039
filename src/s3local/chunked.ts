import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import { S3Error } from '../errors.ts';

/** Lines of the aws-chunked framing (a chunk size, a trailer) are short; longer is not aws-chunked. */
const MAX_LINE = 4096;

/**
 * Decodes a `content-encoding: aws-chunked` body (what the AWS SDKs send with flexible
 * checksums: `x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER`) into the object's
 * bytes, and collects the trailing headers (`x-amz-checksum-crc32: ...`). Each chunk is
 * `<hex size>[;extensions]\r\n<bytes>\r\n`; a zero-size chunk is followed by the trailer
 * lines and an empty line. Hand-written: no maintained library decodes this framing
 * (s3rver stores it undecoded); it is the documented format, nothing more.
 */
export class AwsChunkedDecoder extends Transform {
  readonly trailers = new Map<string, string>();
  private buffer: Buffer = Buffer.alloc(0);
  private state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'size';
  private remaining = 0;
  decoded = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    try {
      this.drain();
      done();
    } catch (error) {
      done(error as Error);
    }
  }

  override _flush(done: TransformCallback): void {
    if (this.state !== 'done' || this.buffer.length > 0) {
      done(new S3Error(400, 'IncompleteBody', 'the aws-chunked body ended before its final chunk and trailer'));
      return;
    }
    done();
  }

  private line(): string | undefined {
    const end = this.buffer.indexOf('\r\n');
    if (end < 0) {
      if (this.buffer.length > MAX_LINE) throw new S3Error(400, 'InvalidRequest', 'malformed aws-chunked body');
      return undefined;
    }
    const line = this.buffer.subarray(0, end).toString('latin1');
    this.buffer = this.buffer.subarray(end + 2);
    return line;
  }

  private drain(): void {
    for (;;) {
      if (this.state === 'size') {
        const line = this.line();
        if (line === undefined) return;
        const size = /^([0-9a-fA-F]{1,16})(;.*)?$/.exec(line);
        if (!size) throw new S3Error(400, 'InvalidRequest', `malformed aws-chunked chunk header: ${line.slice(0, 80)}`);
        this.remaining = Number.parseInt(size[1] as string, 16);
        this.state = this.remaining === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data') {
        if (this.buffer.length === 0) return;
        const take = Math.min(this.remaining, this.buffer.length);
        this.push(this.buffer.subarray(0, take));
        this.decoded += take;
        this.buffer = this.buffer.subarray(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.state = 'data-end';
      } else if (this.state === 'data-end') {
        if (this.buffer.length < 2) return;
        if (this.buffer[0] !== 13 || this.buffer[1] !== 10)
          throw new S3Error(400, 'InvalidRequest', 'aws-chunked chunk not followed by CRLF');
        this.buffer = this.buffer.subarray(2);
        this.state = 'size';
      } else if (this.state === 'trailer') {
        const line = this.line();
        if (line === undefined) return;
        if (line === '') {
          this.state = 'done';
          continue;
        }
        const colon = line.indexOf(':');
        if (colon < 1) throw new S3Error(400, 'InvalidRequest', `malformed aws-chunked trailer: ${line.slice(0, 80)}`);
        this.trailers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      } else {
        if (this.buffer.length > 0) throw new S3Error(400, 'InvalidRequest', 'bytes after the aws-chunked trailer');
        return;
      }
    }
  }
}

/** The flexible-checksum algorithms the local bucket checks (CRC32C and CRC64NVME need code Node does not ship). */
export const CHECKSUMS = ['crc32', 'sha1', 'sha256'] as const;
export type ChecksumName = (typeof CHECKSUMS)[number];

/** Computes every supported checksum of the bytes passing through, as S3 reports them (base64). */
export class ChecksumTap extends Transform {
  private crc = 0;
  private readonly sha1 = createHash('sha1');
  private readonly sha256 = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.crc = zlib.crc32(chunk, this.crc);
    this.sha1.update(chunk);
    this.sha256.update(chunk);
    done(null, chunk);
  }

  /** After the stream ended: each checksum in base64. */
  digests(): Record<ChecksumName, string> {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(this.crc >>> 0);
    return { crc32: crc.toString('base64'), sha1: this.sha1.digest('base64'), sha256: this.sha256.digest('base64') };
  }
}
