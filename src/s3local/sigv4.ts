import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import type { Checksum, HttpRequest, SourceData } from '@smithy/types';
import { S3Error } from '../errors.ts';

/** The key pair (and region) the local bucket accepts. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/** Node's hash behind the signer's Checksum interface (what @smithy/hash-node does; not installed here on its own). */
class NodeSha256 implements Checksum {
  private hash;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', toBuffer(secret));
  }
  update(data: Uint8Array): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    throw new Error('not used by the signer');
  }
}

function toBuffer(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data as ArrayBuffer);
}

/** Requests older or newer than this are refused, as S3 does. */
const MAX_SKEW_MS = 15 * 60 * 1000;

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/]+)\/s3\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/** `20261201T223000Z` → Date. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  return new Date(Date.UTC(y, mo - 1, d, h, mi, s));
}

/** The request as the server received it: method, the raw target (path and query, still encoded), headers. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
}

/**
 * Check an S3 request's AWS Signature V4 (Authorization header) against `credentials`:
 * the request is re-signed with the SDK's own signer (@smithy/signature-v4, S3 mode: no
 * double-encoded path) over exactly the headers the client signed, at the time it
 * claims, and the signatures compared in constant time. The payload hash is the one in
 * `x-amz-content-sha256`; the caller checks the body against it. Throws S3Error 403.
 */
export async function verifySignature(req: ReceivedRequest, credentials: S3Credentials, now: Date = new Date()): Promise<void> {
  const auth = req.headers.authorization;
  if (auth === undefined) {
    throw new S3Error(403, 'AccessDenied', 'Anonymous access is not allowed: sign requests with the key pair in serve.json');
  }
  const match = AUTHORIZATION.exec(auth);
  if (!match) throw new S3Error(403, 'AccessDenied', 'Only AWS Signature Version 4 in the Authorization header is supported');
  const [, accessKeyId, shortDate, region, signedList, signature] = match as unknown as [string, string, string, string, string, string];
  if (accessKeyId !== credentials.accessKeyId) {
    throw new S3Error(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  if (region !== credentials.region) {
    throw new S3Error(403, 'AuthorizationHeaderMalformed', `the region '${region}' is wrong; expecting '${credentials.region}'`);
  }
  const amzDate = typeof req.headers['x-amz-date'] === 'string' ? req.headers['x-amz-date'] : '';
  const signingDate = parseAmzDate(amzDate);
  if (!signingDate || !amzDate.startsWith(shortDate))
    throw new S3Error(403, 'AccessDenied', 'x-amz-date is missing or does not match the credential scope');
  if (Math.abs(now.getTime() - signingDate.getTime()) > MAX_SKEW_MS) {
    throw new S3Error(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
  }
  const signed = signedList.split(';');
  if (!signed.includes('host') || !signed.includes('x-amz-content-sha256')) {
    throw new S3Error(403, 'AccessDenied', 'host and x-amz-content-sha256 must be signed');
  }

  const target = new URL(req.url, 'http://local');
  const query: Record<string, string | string[]> = {};
  for (const [name, value] of target.searchParams) {
    const had = query[name];
    query[name] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const value = req.headers[name];
    if (value === undefined) throw new S3Error(403, 'AccessDenied', `signed header ${name} is missing`);
    headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const host = headers.host ?? '';
  const request: HttpRequest = {
    method: req.method,
    protocol: 'http:',
    hostname: host.replace(/:\d+$/, ''),
    path: req.url.split('?')[0] ?? '/',
    query,
    headers,
  };
  const signer = new SignatureV4({ credentials, region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
  const resigned = await signer.sign(request, { signingDate, signableHeaders: new Set(signed) });
  const expected = /Signature=([0-9a-f]{64})$/.exec(String(resigned.headers.authorization ?? ''))?.[1] ?? '';
  const expectedList = /SignedHeaders=([^,]+),/.exec(String(resigned.headers.authorization ?? ''))?.[1];
  if (expectedList !== signedList || !timingSafeEqual(Buffer.from(expected), Buffer.from(signature))) {
    throw new S3Error(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  }
}
