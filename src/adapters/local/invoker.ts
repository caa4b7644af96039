import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../../errors.ts';
import type { FunctionInvoker, InvokeOutcome, InvokeSession } from '../../ports/lambda.ts';
import { killSandbox, type NetworkMode, networkIsolation, spawnBootstrap } from '../../runtime-api/sandbox.ts';
import { RuntimeApiServer } from '../../runtime-api/server.ts';
import type { Json } from '../../state.ts';
import { unzipTo } from '../../zip/deterministic.ts';
import type { LocalFunctionRegistry, LocalLayerRegistry } from './registries.ts';

const LOG_TAIL_BYTES = 4096;
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
 * Runs a published version the way `provided.al2023` does: the layers extracted from
 * their stored zips into an `/opt` stand-in, the code into a task root, and the
 * `bootstrap` started against a local Runtime API with Lambda's environment and
 * nothing of the host's. Concurrent invocations get separate execution environments;
 * one that timed out or crashed is discarded. With `network: 'none'` each environment
 * runs in a network namespace of its own (see src/runtime-api/sandbox.ts).
 */
export class LocalInvoker implements FunctionInvoker {
  private readonly functions: LocalFunctionRegistry;
  private readonly layers: LocalLayerRegistry;

  constructor(functions: LocalFunctionRegistry, layers: LocalLayerRegistry) {
    this.functions = functions;
    this.layers = layers;
  }

  isolation(): Promise<{ available: boolean; reason: string | null }> {
    return networkIsolation();
  }

  async open(target: { name: string; version: string; initTimeoutMs: number; network?: NetworkMode }): Promise<InvokeSession> {
    const network = target.network ?? 'host';
    const version = await this.functions.getStored(target.name, target.version);
    if (!version) throw new NotFoundError(`${target.name} has no version ${target.version}`);
    const root = await mkdtemp(path.join(os.tmpdir(), 'bakery-run-'));
    const opt = path.join(root, 'opt');
    const task = path.join(root, 'task');
    for (const arn of version.layers) {
      const layer = await this.layers.getStored(arn);
      if (!layer) throw new NotFoundError(`layer ${arn} of ${target.name}:${target.version} is not in the local store`);
      await unzipTo(layer.zipPath, opt);
    }
    await unzipTo(version.codePath, task);
    const ownBootstrap = await stat(path.join(task, 'bootstrap')).then(
      () => true,
      () => false,
    );
    const bootstrap = ownBootstrap ? path.join(task, 'bootstrap') : path.join(opt, 'bootstrap');
    const functionArn = `arn:aws:lambda:local:000000000000:function:${target.name}:${target.version}`;
    const env: NodeJS.ProcessEnv = {
      ...version.environment,
      PATH: `/usr/local/bin:/usr/bin:/bin:${opt}/bin`,
      LD_LIBRARY_PATH: `${opt}/lib`,
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: task,
      LAMBDA_RUNTIME_DIR: opt,
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
      const child = spawnBootstrap({ bootstrap, cwd: task, env, network, tcpAddress: address, socketPath });
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
