import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../../errors.ts';
import type { FunctionInvoker, InvokeOutcome, InvokeSession } from '../../ports/lambda.ts';
import { buildRoot, LAMBDA_LD_LIBRARY_PATH, LAMBDA_PATH, LAMBDA_RUNTIME_DIR, LAMBDA_TASK_ROOT } from '../../runtime-api/rootfs.ts';
import { killSandbox, type NetworkMode, networkIsolation, rootConfinement, spawnBootstrap } from '../../runtime-api/sandbox.ts';
import { RuntimeApiServer } from '../../runtime-api/server.ts';
import type { Json } from '../../state.ts';
import { unzipTo } from '../../zip/deterministic.ts';
import type { LocalFunctionRegistry, LocalLayerRegistry } from './registries.ts';

const LOG_TAIL_BYTES = 4096;

let warned = false;
/** Said once per process: validation here is weaker than it claims without a private root. */
function warnUnconfined(reason: string | null): void {
  if (warned) return;
  warned = true;
  process.emitWarning(
    `local validation runs without a private root (${reason ?? 'unknown reason'}): the host's /usr/bin (its node, python3, ...) is reachable by name from the function, which provided.al2023 would not offer`,
    'BakeryConfinementWarning',
  );
}
/** Execution environments one session may run at once (concurrent cases each get one, as in Lambda). */
const MAX_ENVIRONMENTS = 4;

interface Environment {
  server: RuntimeApiServer;
  child: ChildProcess;
  logs: string;
  exited: Promise<string>;
  busy: boolean;
  dead: boolean;
}

/**
 * Runs a published version the way `provided.al2023` does: in a private root (see
 * src/runtime-api/rootfs.ts) with the layers extracted from their stored zips at `/opt`,
 * the code at `/var/task`, a writable `/tmp` and a minimal base, the `bootstrap` started
 * against a local Runtime API with Lambda's environment (its PATH and LD_LIBRARY_PATH)
 * and nothing of the host's. Where no private root can be made the host shows through,
 * with a BakeryConfinementWarning. Concurrent invocations get separate execution environments;
 * one that timed out or crashed is discarded. With `network: 'none'` each environment
 * runs in a network namespace of its own (see src/runtime-api/sandbox.ts).
 */
export class LocalInvoker implements FunctionInvoker {
  private readonly functions: LocalFunctionRegistry;
  private readonly layers: LocalLayerRegistry;
  private readonly hostFiles: Record<string, string>;

  /**
   * `hostFiles` maps absolute paths inside the function's root to host files shown there
   * read-only (bind-mounted; symlinked when there is no private root). Tests use it to lend
   * a stand-in layer the 120 MB Node binary without zipping it into every layer.
   */
  constructor(functions: LocalFunctionRegistry, layers: LocalLayerRegistry, options: { hostFiles?: Record<string, string> } = {}) {
    this.functions = functions;
    this.layers = layers;
    this.hostFiles = options.hostFiles ?? {};
  }

  isolation(): Promise<{ available: boolean; reason: string | null }> {
    return networkIsolation();
  }

  async open(target: { name: string; version: string; initTimeoutMs: number; network?: NetworkMode }): Promise<InvokeSession> {
    const network = target.network ?? 'host';
    const version = await this.functions.getStored(target.name, target.version);
    if (!version) throw new NotFoundError(`${target.name} has no version ${target.version}`);
    const root = await mkdtemp(path.join(os.tmpdir(), 'bakery-run-'));
    const confinement = await rootConfinement();
    if (!confinement.available) warnUnconfined(confinement.reason);
    // With a private root the function sees Lambda's paths; without one (degraded, warned
    // about above) the same layout sits in the temporary directory and the host shows through.
    const fs = confinement.available ? await buildRoot(path.join(root, 'fs')) : null;
    const opt = fs?.opt ?? path.join(root, 'opt');
    const task = fs?.task ?? path.join(root, 'task');
    for (const arn of version.layers) {
      const layer = await this.layers.getStored(arn);
      if (!layer) throw new NotFoundError(`layer ${arn} of ${target.name}:${target.version} is not in the local store`);
      await unzipTo(layer.zipPath, opt);
    }
    await unzipTo(version.codePath, task);
    const binds: Array<{ from: string; to: string }> = [...(fs?.binds ?? [])];
    for (const [inRoot, host] of Object.entries(this.hostFiles)) {
      const where = inRoot.startsWith('/opt/')
        ? path.join(opt, inRoot.slice(5))
        : path.join(task, path.posix.relative(LAMBDA_TASK_ROOT, inRoot));
      await mkdir(path.dirname(where), { recursive: true });
      if (fs) {
        await writeFile(where, '');
        binds.push({ from: host, to: where });
      } else await symlink(host, where);
    }
    const ownBootstrap = await stat(path.join(task, 'bootstrap')).then(
      () => true,
      () => false,
    );
    const seen = fs ? { opt: '/opt', task: LAMBDA_TASK_ROOT } : { opt, task };
    const bootstrap = ownBootstrap ? path.join(seen.task, 'bootstrap') : path.join(seen.opt, 'bootstrap');
    const functionArn = `arn:aws:lambda:local:000000000000:function:${target.name}:${target.version}`;
    const env: NodeJS.ProcessEnv = {
      ...version.environment,
      PATH: fs ? LAMBDA_PATH : `${opt}/bin:/usr/local/bin:/usr/bin:/bin`,
      LD_LIBRARY_PATH: fs ? LAMBDA_LD_LIBRARY_PATH : `${task}/lib:${opt}/lib`,
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: seen.task,
      LAMBDA_RUNTIME_DIR: fs ? LAMBDA_RUNTIME_DIR : opt,
      _HANDLER: version.handler,
      AWS_REGION: 'local',
      AWS_DEFAULT_REGION: 'local',
      AWS_EXECUTION_ENV: 'AWS_Lambda_provided.al2023',
      AWS_LAMBDA_FUNCTION_NAME: target.name,
      AWS_LAMBDA_FUNCTION_VERSION: target.version,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(version.memorySize),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${target.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: `local/${target.version}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    };

    let started = 0;
    const environments: Environment[] = [];
    const waiters: Array<() => void> = [];

    /** Start one execution environment and wait for its init to finish or fail. */
    const boot = async (): Promise<{ environment: Environment; durationMs: number; error: string | null }> => {
      const server = new RuntimeApiServer();
      const socketPath = path.join(root, `rapi-${started++}.sock`);
      const address = await server.listen(socketPath);
      const began = Date.now();
      const child = await spawnBootstrap({
        bootstrap,
        cwd: task,
        env,
        network,
        tcpAddress: address,
        socketPath,
        root: fs?.root ?? null,
        binds,
      });
      const environment: Environment = { server, child, logs: '', exited: Promise.resolve(''), busy: false, dead: false };
      const onData = (chunk: Buffer) => {
        environment.logs = (environment.logs + chunk.toString('utf8')).slice(-64 * 1024);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      environment.exited = new Promise((resolve) => {
        child.on('error', (error) => resolve(`bootstrap could not start: ${error.message}`));
        child.on('exit', (code, signal) => resolve(`bootstrap exited (${signal ?? `code ${code}`})`));
      });
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        server.ready.then(() => null),
        new Promise<string>((resolve) => server.onInitError(() => resolve('init error'))),
        environment.exited,
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`init did not finish within ${target.initTimeoutMs} ms`), target.initTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      const durationMs = Date.now() - began;
      if (outcome === null) return { environment, durationMs, error: null };
      const detail = server.initError ? `${server.initError.errorType}: ${server.initError.errorMessage}` : outcome;
      await discard(environment);
      return { environment, durationMs, error: `${detail}${environment.logs ? `\n${environment.logs.slice(-LOG_TAIL_BYTES)}` : ''}` };
    };

    const discard = async (environment: Environment) => {
      environment.dead = true;
      killSandbox(environment.child);
      await environment.server.close();
      const index = environments.indexOf(environment);
      if (index >= 0) environments.splice(index, 1);
    };

    /** An idle environment, a new one while under the limit, or the next one freed. */
    const acquire = async (): Promise<Environment | string> => {
      for (;;) {
        const idle = environments.find((e) => !e.busy && !e.dead);
        if (idle) {
          idle.busy = true;
          return idle;
        }
        if (environments.length < MAX_ENVIRONMENTS) {
          const booted = await boot();
          if (booted.error !== null) return booted.error;
          booted.environment.busy = true;
          environments.push(booted.environment);
          return booted.environment;
        }
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    };

    const release = (environment: Environment) => {
      environment.busy = false;
      waiters.shift()?.();
    };

    const first = await boot();
    if (first.error === null) environments.push(first.environment);
    return {
      init: { durationMs: first.durationMs, error: first.error },
      invoke: async (event: Json, timeoutMs: number): Promise<InvokeOutcome> => {
        const began = Date.now();
        const environment = await acquire();
        if (typeof environment === 'string') {
          return { ok: false, errorType: 'Runtime.InitError', errorMessage: environment, durationMs: Date.now() - began, logTail: '' };
        }
        const mark = environment.logs.length;
        const invoked = Date.now();
        const result = await Promise.race([
          environment.server.invoke(event, { timeoutMs, functionArn }),
          environment.exited.then((why) => ({ ok: false as const, errorType: 'Runtime.ExitError', errorMessage: why })),
        ]);
        const durationMs = Date.now() - invoked;
        const logTail = environment.logs.slice(Math.max(mark, environment.logs.length - LOG_TAIL_BYTES));
        // Lambda discards an environment after a timeout or a crash; the next event gets a fresh one.
        if (!result.ok && (result.errorType === 'Sandbox.Timedout' || result.errorType === 'Runtime.ExitError')) await discard(environment);
        else release(environment);
        return result.ok
          ? { ok: true, result: result.result, durationMs, logTail }
          : { ok: false, errorType: result.errorType, errorMessage: result.errorMessage, durationMs, logTail };
      },
      close: async () => {
        for (const environment of [...environments]) await discard(environment);
        for (const wake of waiters.splice(0)) wake();
        await rm(root, { recursive: true, force: true });
      },
    };
  }
}
