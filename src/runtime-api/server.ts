import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Json } from '../state.ts';

/**
 * A local Lambda Runtime API (2018-06-01) for running a baked runtime's `bootstrap`
 * exactly as Lambda would. AWS's Runtime Interface Emulator is a Go binary shipped
 * in container images, not a library, so the few documented endpoints are served here.
 */

export const MAX_RESPONSE_BYTES = 6 * 1024 * 1024;
const PREFIX = '/2018-06-01/runtime';

export type InvocationResult = { ok: true; result: Json } | { ok: false; errorType: string; errorMessage: string };

interface Pending {
  id: string;
  event: Json;
  deadlineMs: number;
  functionArn: string;
  traceId: string;
  clientContext: string | undefined;
  cognitoIdentity: string | undefined;
  resolve: (result: InvocationResult) => void;
}

export interface InvokeOptions {
  timeoutMs: number;
  functionArn: string;
  clientContext?: Json;
  cognitoIdentity?: Json;
}

export class RuntimeApiServer {
  private readonly server: http.Server;
  private socketServer: http.Server | undefined;
  private readonly queue: Pending[] = [];
  private readonly waiting: http.ServerResponse[] = [];
  private readonly inFlight = new Map<string, Pending>();
  /** Set when the runtime posted `init/error`. */
  initError: { errorType: string; errorMessage: string } | null = null;
  /** Resolves at the runtime's first `invocation/next`: initialisation is over. */
  readonly ready: Promise<void>;
  private markReady!: () => void;
  private readonly initErrorListeners: Array<() => void> = [];

  constructor() {
    this.ready = new Promise((resolve) => {
      this.markReady = resolve;
    });
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        if (!res.headersSent) this.reply(res, 500, { errorType: 'ServiceException', errorMessage: String(error) });
      });
    });
    this.server.keepAliveTimeout = 0;
  }

  /** Listen on a free loopback port and, when given, also on a Unix socket; returns `host:port`. */
  async listen(socketPath?: string): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    if (socketPath) {
      this.socketServer = http.createServer((req, res) => this.server.emit('request', req, res));
      const socketServer = this.socketServer;
      await new Promise<void>((resolve) => socketServer.listen(socketPath, resolve));
    }
    const { port } = this.server.address() as AddressInfo;
    return `127.0.0.1:${port}`;
  }

  onInitError(listener: () => void): void {
    this.initErrorListeners.push(listener);
  }

  /** Queue an invocation and wait for the runtime's answer (or the deadline). */
  invoke(event: Json, options: InvokeOptions): Promise<InvocationResult> {
    return new Promise((resolve) => {
      const id = randomUUID();
      const timer = setTimeout(() => {
        this.inFlight.delete(id);
        const index = this.queue.findIndex((p) => p.id === id);
        if (index >= 0) this.queue.splice(index, 1);
        resolve({ ok: false, errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${options.timeoutMs} ms` });
      }, options.timeoutMs);
      const pending: Pending = {
        id,
        event,
        deadlineMs: Date.now() + options.timeoutMs,
        functionArn: options.functionArn,
        traceId: `Root=1-${Math.floor(Date.now() / 1000).toString(16)}-${randomUUID().replace(/-/g, '').slice(0, 24)};Sampled=0`,
        clientContext: options.clientContext === undefined ? undefined : JSON.stringify(options.clientContext),
        cognitoIdentity: options.cognitoIdentity === undefined ? undefined : JSON.stringify(options.cognitoIdentity),
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
      };
      this.queue.push(pending);
      this.dispatch();
    });
  }

  async close(): Promise<void> {
    for (const res of this.waiting.splice(0)) res.destroy();
    for (const server of [this.server, this.socketServer]) {
      if (!server) continue;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  private dispatch(): void {
    while (this.queue.length && this.waiting.length) {
      const pending = this.queue.shift() as Pending;
      const res = this.waiting.shift() as http.ServerResponse;
      if (res.destroyed) {
        this.queue.unshift(pending);
        continue;
      }
      this.inFlight.set(pending.id, pending);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'lambda-runtime-aws-request-id': pending.id,
        'lambda-runtime-deadline-ms': String(pending.deadlineMs),
        'lambda-runtime-invoked-function-arn': pending.functionArn,
        'lambda-runtime-trace-id': pending.traceId,
      };
      if (pending.clientContext) headers['lambda-runtime-client-context'] = pending.clientContext;
      if (pending.cognitoIdentity) headers['lambda-runtime-cognito-identity'] = pending.cognitoIdentity;
      res.writeHead(200, headers);
      res.end(JSON.stringify(pending.event));
    }
  }

  private reply(res: http.ServerResponse, status: number, body: Json): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async readBody(req: http.IncomingMessage): Promise<Buffer | 'too-large'> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_RESPONSE_BYTES) {
        req.resume();
        return 'too-large';
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private parseError(body: Buffer, headerType: string | undefined): { errorType: string; errorMessage: string } {
    try {
      const parsed = JSON.parse(body.toString('utf8')) as { errorType?: string; errorMessage?: string };
      return { errorType: headerType ?? parsed.errorType ?? 'Unhandled', errorMessage: parsed.errorMessage ?? '' };
    } catch {
      return { errorType: headerType ?? 'Unhandled', errorMessage: body.toString('utf8') };
    }
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '';
    if (req.method === 'GET' && url === `${PREFIX}/invocation/next`) {
      this.markReady();
      this.waiting.push(res);
      this.dispatch();
      return;
    }
    if (req.method === 'POST' && url === `${PREFIX}/init/error`) {
      const body = await this.readBody(req);
      this.initError = this.parseError(body === 'too-large' ? Buffer.alloc(0) : body, header(req, 'lambda-runtime-function-error-type'));
      this.reply(res, 202, { status: 'OK' });
      for (const listener of this.initErrorListeners) listener();
      return;
    }
    const match = /^\/2018-06-01\/runtime\/invocation\/([^/]+)\/(response|error)$/.exec(url);
    if (req.method === 'POST' && match) {
      const [, id, kind] = match as unknown as [string, string, string];
      const pending = this.inFlight.get(id);
      if (!pending) {
        req.resume();
        this.reply(res, 400, { errorType: 'InvalidRequestID', errorMessage: `unknown or finished request id ${id}` });
        return;
      }
      const body = await this.readBody(req);
      this.inFlight.delete(id);
      if (body === 'too-large') {
        this.reply(res, 413, { errorType: 'RequestEntityTooLarge', errorMessage: `response over ${MAX_RESPONSE_BYTES} bytes` });
        pending.resolve({
          ok: false,
          errorType: 'Function.ResponseSizeTooLarge',
          errorMessage: `Response payload size exceeded maximum allowed payload size (${MAX_RESPONSE_BYTES} bytes).`,
        });
        return;
      }
      if (kind === 'response') {
        let result: Json;
        try {
          result = body.length ? (JSON.parse(body.toString('utf8')) as Json) : null;
        } catch {
          result = body.toString('utf8');
        }
        this.reply(res, 202, { status: 'OK' });
        pending.resolve({ ok: true, result });
      } else {
        this.reply(res, 202, { status: 'OK' });
        pending.resolve({ ok: false, ...this.parseError(body, header(req, 'lambda-runtime-function-error-type')) });
      }
      return;
    }
    req.resume();
    this.reply(res, 404, { errorType: 'NotFound', errorMessage: `${req.method} ${url} is not a Runtime API route` });
  }
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
