import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Readable, Transform } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pipeline } from 'node:stream/promises';
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { S3Error } from '../errors.ts';
import { AwsChunkedDecoder, CHECKSUMS, ChecksumTap } from './chunked.ts';
import { type S3Credentials, verifySignature } from './sigv4.ts';
import type { BucketStore, ObjectVersion, StagedBody } from './store.ts';

/**
 * A local S3-compatible endpoint for the source bucket: the subset of S3 that awscli v2
 * and @aws-sdk/client-s3 send for a source (PutObject, multipart upload, GetObject,
 * HeadObject, ListObjectsV2, ListObjectVersions, DeleteObject, GetBucketVersioning,
 * HeadBucket), path-style, versioned, SigV4-authenticated.
 *
 * Written here rather than taken from s3rver@3.7.1 (the maintained-looking candidate),
 * which was tried against today's clients: it stores the SDK's aws-chunked body with its
 * framing and trailer (1000 bytes arrive as 1043), has no versioning (ListObjectVersions
 * answers MethodNotAllowed) and accepted a request signed with the wrong secret.
 */

/** S3's "Object Created" event as EventBridge delivers it. */
export interface ObjectCreatedEvent {
  version: '0';
  id: string;
  'detail-type': 'Object Created';
  source: 'aws.s3';
  account: string;
  time: string;
  region: string;
  resources: string[];
  detail: {
    version: '0';
    bucket: { name: string };
    object: { key: string; size: number; etag: string; 'version-id': string; sequencer: string };
    'request-id': string;
    requester: string;
    'source-ip-address': string;
    reason: 'PutObject' | 'CompleteMultipartUpload';
  };
}

/** The account id put in events and ARNs (there is no account locally). */
export const LOCAL_ACCOUNT = '000000000000';

/** S3's own limit for one PutObject or one part. */
const MAX_PUT_BYTES = 5 * 1024 ** 3;
const MAX_XML_BYTES = 1024 * 1024;
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ ignoreAttributes: false, suppressEmptyNode: false, processEntities: true });
const parser = new XMLParser({ ignoreAttributes: true, isArray: (name) => name === 'Part', parseTagValue: false });

function xml(root: string, body: Record<string, unknown>): string {
  // S3's error document has no namespace, and botocore reads no code out of one that has.
  const ns = root === 'Error' ? {} : { '@_xmlns': XMLNS };
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { ...ns, ...body } })}`;
}

export interface S3HandlerOptions {
  store: BucketStore;
  credentials: S3Credentials;
  /** Called once per new object version, after it is committed and before the client gets its answer. */
  onObjectCreated?: (event: ObjectCreatedEvent) => Promise<void>;
  /** Where failures of `onObjectCreated` go (the upload itself succeeded). */
  log?: (line: string) => void;
  now?: () => Date;
}

type Reply = { status: number; headers?: Record<string, string>; body?: string };

const httpDate = (iso: string) => new Date(iso).toUTCString();

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(',') : value;
}

/** A counter that refuses a body over `max` bytes before it fills the disk. */
function limit(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      seen += chunk.length;
      if (seen > max) done(new S3Error(400, 'EntityTooLarge', `Your proposed upload exceeds the maximum allowed size of ${max} bytes`));
      else done(null, chunk);
    },
  });
}

/**
 * Receive a request body into the store's staging area, checked against everything the
 * client said about it: `x-amz-content-sha256` (a hash, UNSIGNED-PAYLOAD, or the aws-chunked
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER with its trailing checksum), `Content-MD5` and any
 * `x-amz-checksum-*` header. A body that does not match is discarded: nothing is written.
 */
async function receive(req: http.IncomingMessage, store: BucketStore): Promise<StagedBody> {
  const payload = header(req, 'x-amz-content-sha256') ?? '';
  const taps = { checksums: new ChecksumTap() };
  let decoder: AwsChunkedDecoder | undefined;
  if (payload.startsWith('STREAMING-')) {
    if (payload !== 'STREAMING-UNSIGNED-PAYLOAD-TRAILER') {
      throw new S3Error(501, 'NotImplemented', `${payload} (signed aws-chunked payloads) is not supported by the local bucket`);
    }
    decoder = new AwsChunkedDecoder();
  } else if (payload !== 'UNSIGNED-PAYLOAD' && !/^[0-9a-f]{64}$/.test(payload)) {
    throw new S3Error(
      400,
      'InvalidArgument',
      'x-amz-content-sha256 must be a SHA-256, UNSIGNED-PAYLOAD or STREAMING-UNSIGNED-PAYLOAD-TRAILER',
    );
  }
  for (const name of Object.keys(req.headers)) {
    const alg = /^x-amz-checksum-(.+)$/.exec(name)?.[1];
    if (alg && alg !== 'mode' && alg !== 'type' && alg !== 'algorithm' && !(CHECKSUMS as readonly string[]).includes(alg)) {
      throw new S3Error(400, 'InvalidRequest', `checksum ${alg} is not supported by the local bucket (use CRC32, SHA1 or SHA256)`);
    }
  }
  const stages = [limit(MAX_PUT_BYTES), taps.checksums];
  const body = decoder ? pipelineOf(req, decoder, ...stages) : pipelineOf(req, ...stages);
  const staged = await store.stage(body);
  try {
    if (/^[0-9a-f]{64}$/.test(payload) && staged.sha256.toString('hex') !== payload) {
      throw new S3Error(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const md5 = header(req, 'content-md5');
    if (md5 !== undefined && md5 !== staged.md5.toString('base64')) {
      throw new S3Error(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
    }
    if (decoder) {
      const declared = header(req, 'x-amz-decoded-content-length');
      if (declared !== undefined && Number(declared) !== decoder.decoded) {
        throw new S3Error(
          400,
          'IncompleteBody',
          `x-amz-decoded-content-length is ${declared}, the body decoded to ${decoder.decoded} bytes`,
        );
      }
      const named = (header(req, 'x-amz-trailer') ?? '').toLowerCase();
      if (named && !decoder.trailers.has(named)) throw new S3Error(400, 'MalformedTrailerError', `the trailer ${named} is missing`);
    }
    const digests = taps.checksums.digests();
    for (const alg of CHECKSUMS) {
      const claimed = decoder?.trailers.get(`x-amz-checksum-${alg}`) ?? header(req, `x-amz-checksum-${alg}`);
      if (claimed !== undefined && claimed !== digests[alg]) {
        throw new S3Error(400, 'BadDigest', `The ${alg.toUpperCase()} you specified did not match the calculated checksum.`);
      }
    }
    return staged;
  } catch (error) {
    await store.discard(staged);
    throw error;
  }
}

/** `a | b | c` as one readable stream whose errors surface where it is read. */
function pipelineOf(source: Readable, ...stages: Transform[]): Transform {
  const last = stages[stages.length - 1] as Transform;
  let stream: Readable = source;
  for (const stage of stages) {
    // Any stage failing ends the last one with its error, where the store reads it.
    stream.once('error', (error) => last.destroy(error));
    stream = stream.pipe(stage);
  }
  return last;
}

function parseRange(value: string | undefined, size: number): { start: number; end: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === '' && m[2] === '')) throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable');
  let start: number;
  let end: number;
  if (m[1] === '') {
    start = Math.max(0, size - Number(m[2]));
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable');
  return { start, end };
}

function objectHeaders(v: ObjectVersion): Record<string, string> {
  return {
    'content-type': v.contentType || 'binary/octet-stream',
    etag: v.etag,
    'last-modified': httpDate(v.lastModified),
    'x-amz-version-id': v.versionId,
    'accept-ranges': 'bytes',
  };
}

/** S3 lists keys URL-encoded when asked (`encoding-type=url`, what awscli asks for). */
const encoder = (params: URLSearchParams) => (value: string) =>
  params.get('encoding-type') === 'url' ? encodeURIComponent(value).replace(/%2F/g, '/') : value;

/** The "Object Created" event of a new object version, in the shape EventBridge delivers S3's. */
export function objectCreatedEvent(
  v: ObjectVersion,
  at: { bucket: string; region: string; reason: ObjectCreatedEvent['detail']['reason']; sourceIp?: string },
): ObjectCreatedEvent {
  return {
    version: '0',
    id: randomUUID(),
    'detail-type': 'Object Created',
    source: 'aws.s3',
    account: LOCAL_ACCOUNT,
    time: v.lastModified.replace(/\.\d{3}Z$/, 'Z'),
    region: at.region,
    resources: [`arn:aws:s3:::${at.bucket}`],
    detail: {
      version: '0',
      bucket: { name: at.bucket },
      object: { key: v.key, size: v.size, etag: v.etag.replace(/"/g, ''), 'version-id': v.versionId, sequencer: v.sequencer },
      'request-id': randomBytes(8).toString('hex').toUpperCase(),
      requester: LOCAL_ACCOUNT,
      'source-ip-address': at.sourceIp ?? '127.0.0.1',
      reason: at.reason,
    },
  };
}

/** The HTTP listener of the local bucket. */
export function s3Handler(options: S3HandlerOptions): http.RequestListener {
  const { store, credentials } = options;
  const log = options.log ?? (() => {});
  const now = options.now ?? (() => new Date());

  async function created(req: http.IncomingMessage, v: ObjectVersion, reason: ObjectCreatedEvent['detail']['reason']): Promise<void> {
    if (!options.onObjectCreated) return;
    const event = objectCreatedEvent(v, {
      bucket: store.bucket,
      region: credentials.region,
      reason,
      sourceIp: (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, ''),
    });
    try {
      await options.onObjectCreated(event);
    } catch (error) {
      log(`s3: the "Object Created" event of ${v.key} (${v.versionId}) failed: ${(error as Error).message}`);
    }
  }

  async function route(
    req: http.IncomingMessage,
    res: http.ServerResponse,
  ): Promise<Reply | { version: ObjectVersion; status: number; headers: Record<string, string>; range?: { start: number; end: number } }> {
    const url = new URL(req.url ?? '/', 'http://local');
    const params = url.searchParams;
    const raw = (req.url ?? '/').split('?')[0] ?? '/';
    const slash = raw.indexOf('/', 1);
    const bucket = decodeURIComponent(slash < 0 ? raw.slice(1) : raw.slice(1, slash));
    const key = slash < 0 ? '' : decodeURIComponent(raw.slice(slash + 1));
    const method = req.method ?? 'GET';

    await verifySignature({ method, url: req.url ?? '/', headers: req.headers }, credentials, now());
    // Only a signed request is asked for its body (awscli waits for this before sending it).
    if (header(req, 'expect')?.toLowerCase() === '100-continue') res.writeContinue();
    if (bucket === '') throw new S3Error(501, 'NotImplemented', 'ListBuckets is not supported by the local bucket');
    if (bucket !== store.bucket) throw new S3Error(404, 'NoSuchBucket', `The specified bucket does not exist: ${bucket}`);

    if (key === '') {
      if (method === 'HEAD') return { status: 200, headers: { 'x-amz-bucket-region': credentials.region } };
      if (method !== 'GET') throw new S3Error(501, 'NotImplemented', `${method} on the bucket is not supported by the local bucket`);
      if (params.has('versioning')) return { status: 200, body: xml('VersioningConfiguration', { Status: 'Enabled' }) };
      if (params.has('location')) return { status: 200, body: xml('LocationConstraint', { '#text': credentials.region }) };
      if (params.has('versions')) return listVersions(params);
      if (params.get('list-type') === '2') return listV2(params);
      throw new S3Error(501, 'NotImplemented', 'only ListObjectsV2 (list-type=2) and ListObjectVersions list this bucket');
    }
    if (Buffer.byteLength(key) > 1024) throw new S3Error(400, 'KeyTooLongError', 'Your key is too long');

    const uploadId = params.get('uploadId');
    if (method === 'POST' && params.has('uploads')) {
      const id = await store.createUpload(key, header(req, 'content-type') ?? 'binary/octet-stream');
      return { status: 200, body: xml('InitiateMultipartUploadResult', { Bucket: store.bucket, Key: key, UploadId: id }) };
    }
    if (uploadId !== null) {
      const upload = await store.upload(uploadId);
      if (!upload || upload.key !== key) throw new S3Error(404, 'NoSuchUpload', 'The specified multipart upload does not exist.');
      if (method === 'PUT') {
        const partNumber = Number(params.get('partNumber'));
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000) {
          throw new S3Error(400, 'InvalidArgument', 'Part number must be an integer between 1 and 10000, inclusive');
        }
        const staged = await receive(req, store);
        return { status: 200, headers: { etag: await store.putPart(uploadId, partNumber, staged) } };
      }
      if (method === 'POST') {
        const body = await readSmall(req);
        let parts: Array<{ partNumber: number; etag: string }>;
        try {
          const doc = parser.parse(body) as { CompleteMultipartUpload?: { Part?: Array<{ PartNumber?: string; ETag?: string }> } };
          parts = (doc.CompleteMultipartUpload?.Part ?? []).map((p) => ({ partNumber: Number(p.PartNumber), etag: String(p.ETag ?? '') }));
        } catch {
          throw new S3Error(400, 'MalformedXML', 'The XML you provided was not well-formed');
        }
        let version: ObjectVersion;
        try {
          version = await store.completeUpload(uploadId, parts);
        } catch (error) {
          const code = (error as { code?: string }).code;
          if (code) throw new S3Error(400, code, (error as Error).message);
          throw error;
        }
        await created(req, version, 'CompleteMultipartUpload');
        return {
          status: 200,
          headers: { 'x-amz-version-id': version.versionId },
          body: xml('CompleteMultipartUploadResult', {
            Location: `/${store.bucket}/${key}`,
            Bucket: store.bucket,
            Key: key,
            ETag: version.etag,
          }),
        };
      }
      if (method === 'DELETE') {
        await store.abortUpload(uploadId);
        return { status: 204 };
      }
    }
    if (method === 'PUT') {
      if (req.headers['x-amz-copy-source'] !== undefined)
        throw new S3Error(501, 'NotImplemented', 'CopyObject is not supported by the local bucket');
      const staged = await receive(req, store);
      const version = await store.commit(key, staged, { contentType: header(req, 'content-type') ?? 'binary/octet-stream' });
      await created(req, version, 'PutObject');
      return { status: 200, headers: { etag: version.etag, 'x-amz-version-id': version.versionId } };
    }
    if (method === 'GET' || method === 'HEAD') {
      const versionId = params.get('versionId') ?? undefined;
      const version = await store.get(key, versionId);
      if (!version) {
        if (versionId !== undefined) throw new S3Error(404, 'NoSuchVersion', 'The specified version does not exist.');
        throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      }
      if (version.deleteMarker) {
        if (versionId !== undefined)
          throw new S3Error(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
        throw new S3Error(404, 'NoSuchKey', 'The specified key does not exist.');
      }
      const range = parseRange(header(req, 'range'), version.size);
      const headers = objectHeaders(version);
      if (range) {
        headers['content-range'] = `bytes ${range.start}-${range.end}/${version.size}`;
        headers['content-length'] = String(range.end - range.start + 1);
        return { version, status: 206, headers, range };
      }
      headers['content-length'] = String(version.size);
      return { version, status: 200, headers };
    }
    if (method === 'DELETE') {
      const out = await store.delete(key, params.get('versionId') ?? undefined);
      const headers: Record<string, string> = {};
      if (out.versionId) headers['x-amz-version-id'] = out.versionId;
      if (out.deleteMarker) headers['x-amz-delete-marker'] = 'true';
      return { status: 204, headers };
    }
    throw new S3Error(501, 'NotImplemented', `${method} ${params.toString() || 'object'} is not supported by the local bucket`);
  }

  async function listV2(params: URLSearchParams): Promise<Reply> {
    const prefix = params.get('prefix') ?? '';
    const delimiter = params.get('delimiter') ?? '';
    const maxKeys = Math.min(1000, Math.max(0, Number(params.get('max-keys') ?? 1000) || 0));
    const token = params.get('continuation-token');
    const after = token ? Buffer.from(token, 'base64url').toString() : (params.get('start-after') ?? '');
    const enc = encoder(params);
    const contents: unknown[] = [];
    const prefixes = new Set<string>();
    let last = '';
    let truncated = false;
    for (const v of await store.listLatest(prefix)) {
      if (after && Buffer.compare(Buffer.from(v.key), Buffer.from(after)) <= 0) continue;
      const rest = v.key.slice(prefix.length);
      const cut = delimiter ? rest.indexOf(delimiter) : -1;
      const common = cut >= 0 ? prefix + rest.slice(0, cut + delimiter.length) : undefined;
      if (common !== undefined && prefixes.has(common)) continue;
      if (contents.length + prefixes.size >= maxKeys) {
        truncated = true;
        break;
      }
      if (common !== undefined) prefixes.add(common);
      else contents.push({ Key: enc(v.key), LastModified: v.lastModified, ETag: v.etag, Size: v.size, StorageClass: 'STANDARD' });
      last = common ?? v.key;
    }
    return {
      status: 200,
      body: xml('ListBucketResult', {
        Name: store.bucket,
        Prefix: enc(prefix),
        ...(delimiter ? { Delimiter: enc(delimiter) } : {}),
        MaxKeys: maxKeys,
        KeyCount: contents.length + prefixes.size,
        IsTruncated: truncated,
        ...(token ? { ContinuationToken: token } : {}),
        ...(truncated ? { NextContinuationToken: Buffer.from(last).toString('base64url') } : {}),
        ...(params.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
        Contents: contents,
        CommonPrefixes: [...prefixes].map((p) => ({ Prefix: enc(p) })),
      }),
    };
  }

  async function listVersions(params: URLSearchParams): Promise<Reply> {
    const prefix = params.get('prefix') ?? '';
    const maxKeys = Math.min(1000, Math.max(0, Number(params.get('max-keys') ?? 1000) || 0));
    const keyMarker = params.get('key-marker') ?? '';
    const versionMarker = params.get('version-id-marker') ?? '';
    const enc = encoder(params);
    const all = await store.listVersions(prefix);
    let start = 0;
    if (keyMarker) {
      const at = versionMarker ? all.findIndex((v) => v.key === keyMarker && v.versionId === versionMarker) : -1;
      start = at >= 0 ? at + 1 : all.findIndex((v) => Buffer.compare(Buffer.from(v.key), Buffer.from(keyMarker)) > 0);
      if (start < 0) start = all.length;
    }
    const page = all.slice(start, start + maxKeys);
    const truncated = start + maxKeys < all.length;
    const lastOfPage = page[page.length - 1];
    return {
      status: 200,
      body: xml('ListVersionsResult', {
        Name: store.bucket,
        Prefix: enc(prefix),
        KeyMarker: enc(keyMarker),
        VersionIdMarker: versionMarker,
        MaxKeys: maxKeys,
        IsTruncated: truncated,
        ...(truncated && lastOfPage ? { NextKeyMarker: enc(lastOfPage.key), NextVersionIdMarker: lastOfPage.versionId } : {}),
        ...(params.get('encoding-type') === 'url' ? { EncodingType: 'url' } : {}),
        Version: page
          .filter((v) => !v.deleteMarker)
          .map((v) => ({
            Key: enc(v.key),
            VersionId: v.versionId,
            IsLatest: v.isLatest,
            LastModified: v.lastModified,
            ETag: v.etag,
            Size: v.size,
            StorageClass: 'STANDARD',
          })),
        DeleteMarker: page
          .filter((v) => v.deleteMarker)
          .map((v) => ({ Key: enc(v.key), VersionId: v.versionId, IsLatest: v.isLatest, LastModified: v.lastModified })),
      }),
    };
  }

  return (req, res) => {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const send = (status: number, headers: Record<string, string>, body?: string) => {
      const withBody = body !== undefined && req.method !== 'HEAD';
      res.writeHead(status, {
        'x-amz-request-id': requestId,
        ...(withBody ? { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) } : {}),
        ...headers,
      });
      res.end(withBody ? body : undefined);
    };
    route(req, res)
      .then(async (reply) => {
        if ('version' in reply) {
          res.writeHead(reply.status, { 'x-amz-request-id': requestId, ...reply.headers });
          if (req.method === 'HEAD') {
            res.end();
            return;
          }
          await pipeline(store.read(reply.version, reply.range), res);
          return;
        }
        send(reply.status, reply.headers ?? {}, reply.body);
      })
      .catch((error: unknown) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        const s3 =
          error instanceof S3Error ? error : new S3Error(500, 'InternalError', 'We encountered an internal error. Please try again.');
        if (!(error instanceof S3Error)) log(`s3: ${req.method} ${req.url}: ${(error as Error).stack ?? String(error)}`);
        send(
          s3.status,
          // A body left unread (refused before it was read) cannot share the connection with a next request.
          req.readableEnded ? {} : { connection: 'close' },
          xml('Error', { Code: s3.code, Message: s3.message, Resource: (req.url ?? '/').split('?')[0], RequestId: requestId }),
        );
      });
  };
}

async function readSmall(req: http.IncomingMessage): Promise<string> {
  const body = await text(req.pipe(limit(MAX_XML_BYTES)));
  return body;
}

/** A running local bucket endpoint. */
export interface S3Server {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  port: number;
  close(): Promise<void>;
}

/** Serve the bucket on `host:port` (loopback unless told otherwise; port 0 picks a free one). */
export async function startS3Server(options: S3HandlerOptions & { host?: string; port?: number }): Promise<S3Server> {
  const listener = s3Handler(options);
  const server = http.createServer(listener);
  // Answer `Expect: 100-continue` only after the signature is checked (see s3Handler).
  server.on('checkContinue', listener);
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    endpoint: `http://${shown}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
