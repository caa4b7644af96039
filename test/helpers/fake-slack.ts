/**
 * A stand-in for Slack's Web API on 127.0.0.1: point a WebClient at it with
 * `slackApiUrl`. It records every request and answers from a script, so tests see real
 * HTTP (status codes, Retry-After) without the network.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackRequest {
  /** The Web API method, e.g. `chat.update`. */
  method: string;
  at: number;
  headers: http.IncomingHttpHeaders;
  form: URLSearchParams;
}

/** How to answer a request: a JSON body (HTTP 200), or a status with headers (a 429), or never. */
export type SlackReply = { json: Record<string, unknown> } | { status: number; headers?: Record<string, string>; json?: unknown } | 'hang';

export interface FakeSlack {
  /** The base URL for WebClient's `slackApiUrl`. */
  apiUrl: string;
  requests: SlackRequest[];
  /** Requests of one method. */
  calls(method: string): SlackRequest[];
  /** The next answers to a method, in order; when they run out, `ok: true` with a channel and ts. */
  script(method: string, ...replies: SlackReply[]): void;
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const requests: SlackRequest[] = [];
  const scripts = new Map<string, SlackReply[]>();
  const hanging = new Set<http.ServerResponse>();
  let ts = 0;

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      requests.push({ method, at: performance.now(), headers: req.headers, form });
      const reply = scripts.get(method)?.shift() ?? {
        json: { ok: true, channel: form.get('channel') ?? 'C0', ts: form.get('ts') ?? `1732262400.${String(++ts).padStart(6, '0')}` },
      };
      if (reply === 'hang') {
        hanging.add(res);
        return;
      }
      const status = 'status' in reply ? reply.status : 200;
      const headers = { 'content-type': 'application/json', ...('headers' in reply ? reply.headers : {}) };
      res.writeHead(status, headers);
      res.end(JSON.stringify(reply.json ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    requests,
    calls: (method) => requests.filter((r) => r.method === method),
    script: (method, ...replies) => scripts.set(method, [...(scripts.get(method) ?? []), ...replies]),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
