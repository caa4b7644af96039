import { randomBytes } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ObjectCreatedEventSchema } from '../../functions/start-bake/handler.ts';
import type { LocalHome } from '../adapters/local/home.ts';
import { renderTo } from '../cli/render.ts';
import type { LocalDeps } from '../compose/local.ts';
import type { SlackCallbackDeps } from '../cores/slack-callback.ts';
import { type StartOutcome, startS3Bake } from '../cores/trigger.ts';
import { INTERACTIONS_PATH, slackInteractionsListener } from '../local/callback-server.ts';
import { readExecution } from '../local/journal.ts';
import { type RunBakeOptions, resumeExecution, runBake } from '../local/runner.ts';
import type { StepEvent } from '../recipes/toe.ts';
import { type ObjectCreatedEvent, type S3Server, startS3Server } from '../s3local/server.ts';
import { BucketStore } from '../s3local/store.ts';
import type { BakeRequest } from '../state.ts';
import { readJsonIfExists, writeJsonAtomic } from '../util/fsx.ts';
import { dashboardListener } from './dashboard.ts';
import { outcomeOf, ServeExecutions } from './executions.ts';
import { Scheduler, type ScheduleSettings } from './schedule.ts';
import { BucketSourceCatalog, BucketSourceReader } from './sources.ts';

/** What `serve` prints and writes to `BAKERY_HOME/serve.json` (mode 0600) for scripts. */
export interface ServeInfo {
  dashboard: { url: string; token: string };
  s3: { endpoint: string; bucket: string; prefix: string; accessKeyId: string; secretAccessKey: string; region: string };
}

/** The key pair and dashboard token, generated at first start and kept (0600) under the state directory. */
interface Secrets {
  accessKeyId: string;
  secretAccessKey: string;
  token: string;
}

export const DEFAULT_BUCKET = 'bakery-source';
export const DEFAULT_PREFIX = 'bakes/';
export const DEFAULT_REGION = 'us-east-1';

export interface ServeOptions {
  home: LocalHome;
  /** The local ports; `sources` is wrapped so S3 sources are read from the local bucket. */
  deps: LocalDeps;
  host?: string;
  /** The dashboard (and Slack endpoint) port; 0 picks a free one. */
  port?: number;
  /** The S3 endpoint's port; 0 picks a free one. */
  s3Port?: number;
  /** Who approves from the dashboard (`--user`, `BAKERY_USER`). */
  user: string;
  bucket?: string;
  prefix?: string;
  region?: string;
  schedule?: ScheduleSettings;
  /** The Slack interactivity endpoint's deps (its signing secret); without them it answers 404. */
  slack?: Omit<SlackCallbackDeps, 'approvals' | 'callbacks' | 'notifier' | 'clock'>;
  /** Progress lines (bake output, uploads, schedule firings). */
  write?: (line: string) => void;
  /** Passed to the runner (tests: retries and waits at 0). */
  runOptions?: Pick<RunBakeOptions, 'retryIntervalMs' | 'waitMs' | 'definitionFile'>;
}

export interface ServeHandle {
  info: ServeInfo;
  store: BucketStore;
  executions: ServeExecutions;
  scheduler: Scheduler;
  /** Deliver an "Object Created" event (what every upload does; a second delivery of one event starts nothing). */
  deliver(event: ObjectCreatedEvent): Promise<void>;
  /** Executions that were running when the server last stopped, started again. */
  resumed: string[];
  /** Stop taking requests and firing schedules. Running bakes stay recorded as running, to be resumed. */
  close(): Promise<void>;
}

const key = (bytes: number, alphabet: 'upper' | 'base64url') => {
  const raw = randomBytes(bytes);
  return alphabet === 'upper' ? raw.toString('hex').toUpperCase().slice(0, 16) : raw.toString('base64url');
};

async function loadSecrets(home: LocalHome): Promise<Secrets> {
  const file = home.path('serve', 'secrets.json');
  const existing = await readJsonIfExists<Secrets>(file);
  if (existing) return existing;
  const secrets: Secrets = {
    accessKeyId: `AKIALOCAL${key(8, 'upper')}`,
    secretAccessKey: key(30, 'base64url'),
    token: key(24, 'base64url'),
  };
  await writeJsonAtomic(file, secrets);
  await chmod(file, 0o600);
  return secrets;
}

const sourceKey = (request: BakeRequest): string => (request.source.type === 's3' ? request.source.key : request.source.path);

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/** Is `host` a loopback address (the default), or does serving on it expose the machine? */
export const isLoopback = (host: string): boolean => LOOPBACK.has(host) || host.startsWith('127.');

/**
 * `bakery serve`: the whole pipeline on one machine, over the same cores and state
 * machine as AWS. A versioned S3-compatible source bucket whose uploads under the prefix
 * start bakes (the "Object Created" event through the startBake core, deduplicated by
 * execution name), the patch-rebuild and drift-check schedules, and the dashboard with
 * the approval card and the Slack interactivity endpoint on one port.
 */
export async function startServe(options: ServeOptions): Promise<ServeHandle> {
  const { home, deps, user } = options;
  const host = options.host ?? '127.0.0.1';
  const write = options.write ?? (() => {});
  const bucket = options.bucket ?? DEFAULT_BUCKET;
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const region = options.region ?? DEFAULT_REGION;
  await home.ensure();
  const secrets = await loadSecrets(home);

  const store = new BucketStore({ root: home.path('serve', 'buckets'), bucket });
  deps.sources = new BucketSourceReader({ store, workDir: home.path('serve', 'sources'), fallback: deps.sources });
  const catalog = new BucketSourceCatalog(store);

  const runOptions = (request: { bakeId?: string }) => ({
    deps,
    approve: 'wait' as const,
    approver: user,
    onEvent: renderTo((line: string) => write(`  [${request.bakeId ?? '?'}] ${line}`)),
    ...options.runOptions,
  });
  const executions = new ServeExecutions({
    dir: home.path('serve', 'executions'),
    log: write,
    run: async (request, onStep) => {
      return outcomeOf(await runBake(request, { ...runOptions(request), onStep, spec: `s3://${bucket}/${sourceKey(request)}` }));
    },
    // The journal of the local runner knows where the interrupted execution was: continue there.
    resume: async (name, request, onStep) => {
      const journal = await readExecution(home, name);
      if (!journal) return outcomeOf(await runBake(request, { ...runOptions(request), onStep }));
      if (journal.end?.status === 'failed')
        return { status: 'failed', state: journal.end.state, error: journal.end.error, cause: journal.end.cause };
      if (journal.end) return { status: journal.end.status, output: null };
      return outcomeOf(await resumeExecution(name, { ...runOptions(request), onStep }));
    },
  });

  // The build's steps, live on the dashboard, where the backend's image builder tells them (the local one does).
  const builder = deps.imageBuilder as { onBuildStep?: (listener: (bakeId: string | null, event: StepEvent) => void) => () => void };
  const stopBuildSteps = builder.onBuildStep?.((bakeId, event) => {
    if (bakeId) executions.buildStep(bakeId, event);
  });

  const onObjectCreated = async (event: ObjectCreatedEvent): Promise<void> => {
    // The same schema the startBake Lambda parses its EventBridge event with.
    const parsed = ObjectCreatedEventSchema.parse(event);
    const { object } = parsed.detail;
    if (!object.key.startsWith(prefix)) return;
    const outcome: StartOutcome = await startS3Bake(
      { bucket: parsed.detail.bucket.name, key: object.key, versionId: object['version-id'] ?? null, sequencer: object.sequencer ?? null },
      { starter: executions },
    );
    write(
      outcome.started
        ? `upload s3://${bucket}/${object.key} (version ${object['version-id']}): bake ${outcome.bakeId} started`
        : `upload s3://${bucket}/${object.key} (version ${object['version-id']}): bake ${outcome.bakeId} was started before`,
    );
  };
  const credentials = { accessKeyId: secrets.accessKeyId, secretAccessKey: secrets.secretAccessKey, region };

  let s3: S3Server | undefined;
  let server: http.Server | undefined;
  const inFlight = new Set<Promise<void>>();
  const scheduler = new Scheduler({
    file: home.path('serve', 'schedule.json'),
    settings: options.schedule ?? {},
    source: { bucket, prefix },
    deps: { catalog, starter: executions, clock: deps.clock, drift: deps },
    write,
  });
  try {
    s3 = await startS3Server({ store, credentials, onObjectCreated, log: write, host, port: options.s3Port ?? 0 });
    const slack = options.slack
      ? slackInteractionsListener({
          deps: { ...options.slack, approvals: deps.approvals, callbacks: deps.callbacks, notifier: deps.notifier, clock: deps.clock },
          inFlight,
        })
      : undefined;
    const dashboard = dashboardListener({ token: secrets.token, user, deps, executions, scheduler, bucket, prefix });
    server = http.createServer((req, res) => {
      const pathname = new URL(req.url ?? '/', 'http://local').pathname;
      if (pathname === INTERACTIONS_PATH) {
        if (slack) slack(req, res);
        else {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('Slack is not configured: set SLACK_SIGNING_SECRET');
        }
        return;
      }
      dashboard(req, res);
    });
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(options.port ?? 0, host, () => resolve());
    });
  } catch (error) {
    await s3?.close();
    server?.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  const info: ServeInfo = {
    dashboard: { url: `http://${shown}:${port}/`, token: secrets.token },
    s3: { endpoint: s3.endpoint, bucket, prefix, accessKeyId: secrets.accessKeyId, secretAccessKey: secrets.secretAccessKey, region },
  };
  const infoFile = home.path('serve.json');
  await writeJsonAtomic(infoFile, info);
  await chmod(infoFile, 0o600);

  const resumed = await executions.resumeInterrupted();
  scheduler.start();
  const httpServer = server;
  const s3Server = s3;
  return {
    info,
    store,
    executions,
    scheduler,
    deliver: onObjectCreated,
    resumed,
    close: async () => {
      stopBuildSteps?.();
      await scheduler.stop();
      await new Promise<void>((resolve) => {
        httpServer.close(() => resolve());
        httpServer.closeAllConnections();
      });
      await s3Server.close();
      await Promise.all(inFlight);
    },
  };
}
