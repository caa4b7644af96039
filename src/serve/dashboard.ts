import { timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import type { LocalDeps } from '../adapters/local/index.ts';
import type { ServeExecutions } from './executions.ts';
import type { Scheduler } from './schedule.ts';

export interface DashboardOptions {
  token: string;
  user: string;
  deps: LocalDeps;
  executions: ServeExecutions;
  scheduler: Scheduler;
  bucket: string;
  prefix: string;
}

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The dashboard's API for scripts (`bakery schedule run`): the token as a bearer token. */
export function dashboardListener(options: DashboardOptions): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!bearer || !same(bearer, options.token)) {
      json(res, 401, { error: 'send the token from serve.json' });
      return;
    }
    const schedule = /^\/api\/schedules\/(patch-rebuild|drift-check)$/.exec(url.pathname)?.[1] as
      | 'patch-rebuild'
      | 'drift-check'
      | undefined;
    if (req.method === 'POST' && schedule) {
      options.scheduler.fire(schedule).then(
        (firing) => json(res, 200, { firing }),
        (error: unknown) => json(res, 500, { error: (error as Error).message }),
      );
      return;
    }
    if (req.method === 'GET' && url.pathname === '/api/executions') {
      void options.executions.list().then((executions) => json(res, 200, { executions }));
      return;
    }
    json(res, 404, { error: 'not found' });
  };
}
