import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleSlackInteraction, type SlackCallbackDeps, type SlackOutcome } from '../cores/slack-callback.ts';

/** Where Slack's Interactivity Request URL points (through a tunnel) on the local server. */
export const INTERACTIONS_PATH = '/slack/interactions';

/** Interactive payloads are a few kilobytes; anything far larger is not Slack. */
const MAX_BODY_BYTES = 256 * 1024;

export interface CallbackServer {
  /** `http://127.0.0.1:<port>/slack/interactions` */
  url: string;
  /** Stop taking requests, and wait for those under way (and their message updates) to finish. */
  close(): Promise<void>;
}

/**
 * The request listener of the interactivity endpoint (also mounted by `bakery serve` on
 * its own port). `inFlight` collects the work of each request, message updates included,
 * so a server can wait for it when it stops.
 */
export function slackInteractionsListener(options: {
  deps: SlackCallbackDeps;
  onOutcome?: (outcome: SlackOutcome) => void;
  inFlight: Set<Promise<void>>;
}): http.RequestListener {
  const { inFlight } = options;
  return (req, res) => {
    const reply = (statusCode: number, body = '', headers: Record<string, string> = {}) => {
      res.writeHead(statusCode, { 'content-type': 'text/plain; charset=utf-8', ...headers });
      res.end(body);
    };
    if (req.method !== 'POST' || new URL(req.url ?? '/', 'http://localhost').pathname !== INTERACTIONS_PATH) {
      reply(404, 'not found');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reply(413, 'too large');
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (res.headersSent) return;
      const work = (async () => {
        const headers: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(req.headers)) headers[name] = Array.isArray(value) ? value.join(',') : value;
        const result = await handleSlackInteraction({ headers, rawBody: Buffer.concat(chunks) }, options.deps);
        reply(result.response.statusCode, result.response.body, result.response.headers);
        options.onOutcome?.(result.outcome);
        await result.followUp;
      })().catch(() => {
        if (!res.headersSent) reply(500, 'internal error');
      });
      inFlight.add(work);
      void work.finally(() => inFlight.delete(work));
    });
  };
}

/**
 * The interactivity endpoint of the local backend: the same core as the Lambda, on
 * 127.0.0.1 only (expose it to Slack with a tunnel). The body is read raw, since the
 * signature covers its exact bytes.
 */
export async function startCallbackServer(options: {
  deps: SlackCallbackDeps;
  port?: number;
  onOutcome?: (outcome: SlackOutcome) => void;
}): Promise<CallbackServer> {
  const inFlight = new Set<Promise<void>>();
  const server = http.createServer(slackInteractionsListener({ ...options, inFlight }));

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${INTERACTIONS_PATH}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await Promise.all(inFlight);
    },
  };
}
