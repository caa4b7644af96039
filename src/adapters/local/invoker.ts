import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { NotFoundError } from '../../errors.ts';
import type { FunctionInvoker, InvokeOutcome, InvokeSession, Json } from '../../ports.ts';
import { RuntimeApiServer } from '../../runtime-api/server.ts';
import { unzipTo } from '../../zip/deterministic.ts';
import type { LocalFunctionRegistry, LocalLayerRegistry } from './registries.ts';

const LOG_TAIL_BYTES = 4096;

/**
 * Runs a published version the way `provided.al2023` does: the layers extracted from
 * their zips into an `/opt` stand-in, the code into a task root, and the `bootstrap`
 * started against a local Runtime API with Lambda's environment and nothing of ours.
 */
export class LocalInvoker implements FunctionInvoker {
  private readonly functions: LocalFunctionRegistry;
  private readonly layers: LocalLayerRegistry;

  constructor(functions: LocalFunctionRegistry, layers: LocalLayerRegistry) {
    this.functions = functions;
    this.layers = layers;
  }

  async open(target: { name: string; version: string; initTimeoutMs: number }): Promise<InvokeSession> {
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

    let server: RuntimeApiServer;
    let child: ChildProcess;
    let logs = '';
    let exited: Promise<string>;
    const start = async (): Promise<{ durationMs: number | null; error: string | null }> => {
      server = new RuntimeApiServer();
      const address = await server.listen();
      const began = Date.now();
      child = spawn(bootstrap, [], { cwd: task, env: { ...env, AWS_LAMBDA_RUNTIME_API: address }, stdio: ['ignore', 'pipe', 'pipe'] });
      const onData = (chunk: Buffer) => {
        logs = (logs + chunk.toString('utf8')).slice(-64 * 1024);
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      const current = child;
      exited = new Promise((resolve) => {
        current.on('error', (error) => resolve(`bootstrap could not start: ${error.message}`));
        current.on('exit', (code, signal) => resolve(`bootstrap exited (${signal ?? `code ${code}`})`));
      });
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        server.ready.then(() => null),
        new Promise<string>((resolve) => server.onInitError(() => resolve('init error'))),
        exited,
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`init did not finish within ${target.initTimeoutMs} ms`), target.initTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      const durationMs = Date.now() - began;
      if (outcome === null) return { durationMs, error: null };
      const detail = server.initError ? `${server.initError.errorType}: ${server.initError.errorMessage}` : outcome;
      return { durationMs, error: `${detail}${logs ? `\n${logs.slice(-LOG_TAIL_BYTES)}` : ''}` };
    };
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await server.close();
    };

    const init = await start();
    return {
      init,
      invoke: async (event: Json, timeoutMs: number): Promise<InvokeOutcome> => {
        const mark = logs.length;
        const began = Date.now();
        const result = await Promise.race([
          server.invoke(event, { timeoutMs, functionArn }),
          exited.then((why) => ({ ok: false as const, errorType: 'Runtime.ExitError', errorMessage: why })),
        ]);
        const durationMs = Date.now() - began;
        const logTail = logs.slice(Math.max(mark, logs.length - LOG_TAIL_BYTES));
        if (!result.ok && (result.errorType === 'Sandbox.Timedout' || result.errorType === 'Runtime.ExitError')) {
          // Lambda discards a sandbox after a timeout or crash; the next event gets a fresh one.
          await stop();
          await start();
        }
        return result.ok
          ? { ok: true, result: result.result, durationMs, logTail }
          : { ok: false, errorType: result.errorType, errorMessage: result.errorMessage, durationMs, logTail };
      },
      close: async () => {
        await stop();
        await rm(root, { recursive: true, force: true });
      },
    };
  }
}
