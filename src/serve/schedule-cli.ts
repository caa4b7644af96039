import { readFile } from 'node:fs/promises';
import { renderTo } from '../cli/render.ts';
import type { LocalDeps } from '../compose/local.ts';
import { BakeryError } from '../errors.ts';
import { runBake } from '../local/runner.ts';
import { BucketStore } from '../s3local/store.ts';
import { outcomeOf, ServeExecutions } from './executions.ts';
import { type Firing, type ScheduleName, Scheduler } from './schedule.ts';
import { DEFAULT_BUCKET, DEFAULT_PREFIX, type ServeInfo } from './serve.ts';
import { BucketSourceCatalog, BucketSourceReader } from './sources.ts';

function describe(firing: Firing): string {
  if (firing.schedule === 'drift-check') return firing.outcome.drifted ? 'drift found (see bakery status)' : 'no drift';
  const started = firing.outcome.bakes.filter((b) => b.started).map((b) => b.bakeId);
  return `${firing.outcome.sources} source(s); ${started.length ? `started ${started.join(', ')}` : 'nothing new to start (each source is baked once a week)'}`;
}

/**
 * `bakery schedule run <name>`: fire a schedule now. With a `bakery serve` running on this
 * state directory (serve.json, and its dashboard answers) the server fires it, so its
 * bakes run there; otherwise it fires here over the same bucket and executions, and a
 * patch rebuild's bakes run in this process until they end (approve them from another
 * terminal with `bakery approve`).
 */
export async function runScheduleNow(
  name: ScheduleName,
  ctx: { deps: LocalDeps; user: string; line: (text?: string) => void },
): Promise<void> {
  const { deps, line } = ctx;
  const info = await readFile(deps.home.path('serve.json'), 'utf8')
    .then((text) => JSON.parse(text) as ServeInfo)
    .catch(() => undefined);
  if (info) {
    const answer = await fetch(new URL(`api/schedules/${name}`, info.dashboard.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${info.dashboard.token}` },
      signal: AbortSignal.timeout(60_000),
    }).catch(() => undefined);
    if (answer) {
      const body = (await answer.json().catch(() => ({}))) as { firing?: Firing; error?: string };
      if (!answer.ok || !body.firing) throw new BakeryError(`bakery serve could not fire ${name}: ${body.error ?? answer.statusText}`);
      line(`fired ${name} on bakery serve (${info.dashboard.url}): ${describe(body.firing)}`);
      return;
    }
  }
  const bucket = info?.s3.bucket ?? DEFAULT_BUCKET;
  const prefix = info?.s3.prefix ?? DEFAULT_PREFIX;
  const store = new BucketStore({ root: deps.home.path('serve', 'buckets'), bucket });
  deps.sources = new BucketSourceReader({ store, workDir: deps.home.path('serve', 'sources'), fallback: deps.sources });
  const executions = new ServeExecutions({
    dir: deps.home.path('serve', 'executions'),
    log: line,
    run: async (request, onStep) => {
      return outcomeOf(await runBake(request, { deps, approve: 'wait', approver: ctx.user, onEvent: renderTo(line), onStep }));
    },
  });
  const scheduler = new Scheduler({
    file: deps.home.path('serve', 'schedule.json'),
    settings: {},
    source: { bucket, prefix },
    deps: { catalog: new BucketSourceCatalog(store), starter: executions, clock: deps.clock, drift: deps },
  });
  const firing = await scheduler.fire(name);
  line(`fired ${name} (no bakery serve running): ${describe(firing)}`);
  await executions.settled();
}
