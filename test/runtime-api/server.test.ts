import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { MAX_RESPONSE_BYTES, RuntimeApiServer } from '../../src/runtime-api/server.ts';

const ARN = 'arn:aws:lambda:local:000000000000:function:t:1';

function request(address: string, method: string, urlPath: string, body?: string, headers: Record<string, string> = {}) {
  const [host, port] = address.split(':');
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host, port: Number(port), method, path: `/2018-06-01/runtime${urlPath}`, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => {
        text += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('RuntimeApiServer, spoken to directly', () => {
  let server: RuntimeApiServer;
  let address: string;

  beforeEach(async () => {
    server = new RuntimeApiServer();
    address = await server.listen();
  });

  afterEach(async () => {
    await server.close();
  });

  it('hands out the event with the documented headers and takes the response', async () => {
    const pending = server.invoke({ hello: 'world' }, { timeoutMs: 5000, functionArn: ARN, clientContext: { custom: 1 } });
    const next = await request(address, 'GET', '/invocation/next');
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body)).toEqual({ hello: 'world' });
    const id = String(next.headers['lambda-runtime-aws-request-id']);
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(next.headers['lambda-runtime-deadline-ms'])).toBeGreaterThan(Date.now());
    expect(next.headers['lambda-runtime-invoked-function-arn']).toBe(ARN);
    expect(next.headers['lambda-runtime-trace-id']).toMatch(/^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Sampled=0$/);
    expect(JSON.parse(String(next.headers['lambda-runtime-client-context']))).toEqual({ custom: 1 });
    expect(next.headers['lambda-runtime-cognito-identity']).toBeUndefined();

    const posted = await request(address, 'POST', `/invocation/${id}/response`, JSON.stringify({ ok: true }));
    expect(posted.status).toBe(202);
    await expect(pending).resolves.toEqual({ ok: true, result: { ok: true } });
  });

  it('reports a function error with its type from the header', async () => {
    const pending = server.invoke({}, { timeoutMs: 5000, functionArn: ARN });
    const next = await request(address, 'GET', '/invocation/next');
    const id = String(next.headers['lambda-runtime-aws-request-id']);
    const body = JSON.stringify({ errorType: 'FromBody', errorMessage: 'boom' });
    const posted = await request(address, 'POST', `/invocation/${id}/error`, body, {
      'Lambda-Runtime-Function-Error-Type': 'Custom.Error',
    });
    expect(posted.status).toBe(202);
    await expect(pending).resolves.toEqual({ ok: false, errorType: 'Custom.Error', errorMessage: 'boom' });
  });

  it('answers 400 for an unknown request id and 404 for an unknown route', async () => {
    const unknown = await request(address, 'POST', '/invocation/not-a-request/response', '{}');
    expect(unknown.status).toBe(400);
    expect(JSON.parse(unknown.body)).toMatchObject({ errorType: 'InvalidRequestID' });
    const route = await request(address, 'GET', '/nope');
    expect(route.status).toBe(404);
  });

  it('refuses a response over 6 MB with 413 and fails the invocation clearly', async () => {
    const pending = server.invoke({}, { timeoutMs: 5000, functionArn: ARN });
    const next = await request(address, 'GET', '/invocation/next');
    const id = String(next.headers['lambda-runtime-aws-request-id']);
    const big = JSON.stringify({ blob: 'x'.repeat(MAX_RESPONSE_BYTES) });
    const posted = await request(address, 'POST', `/invocation/${id}/response`, big);
    expect(posted.status).toBe(413);
    await expect(pending).resolves.toMatchObject({ ok: false, errorType: 'Function.ResponseSizeTooLarge' });
  });

  it('records an init error', async () => {
    let told = false;
    server.onInitError(() => {
      told = true;
    });
    const posted = await request(address, 'POST', '/init/error', JSON.stringify({ errorMessage: 'no handler', errorType: 'Runtime.X' }));
    expect(posted.status).toBe(202);
    expect(server.initError).toEqual({ errorType: 'Runtime.X', errorMessage: 'no handler' });
    expect(told).toBe(true);
  });

  it('times an invocation out when nobody answers', async () => {
    const result = await server.invoke({}, { timeoutMs: 50, functionArn: ARN });
    expect(result).toMatchObject({ ok: false, errorType: 'Sandbox.Timedout' });
  });
});

describe('RuntimeApiServer with real bootstraps', () => {
  let dir: string;
  let server: RuntimeApiServer;
  let child: ChildProcess | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-rapi-'));
    server = new RuntimeApiServer();
  });

  afterEach(async () => {
    child?.kill('SIGKILL');
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(bootstrap: string, env: Record<string, string>) {
    const address = await server.listen();
    child = spawn(bootstrap, [], {
      env: { PATH: '/usr/local/bin:/usr/bin:/bin', AWS_LAMBDA_RUNTIME_API: address, ...env },
      stdio: 'ignore',
    });
  }

  it('serves a plain shell bootstrap that uses curl', async () => {
    const bootstrap = path.join(dir, 'bootstrap');
    await writeFile(
      bootstrap,
      `#!/bin/sh
set -eu
API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
while true; do
  HEADERS="$(mktemp)"
  EVENT="$(curl -sS -D "$HEADERS" "$API/invocation/next")"
  ID="$(grep -i '^lambda-runtime-aws-request-id:' "$HEADERS" | cut -d: -f2 | tr -d '[:space:]')"
  curl -sS -X POST "$API/invocation/$ID/response" -d "{\\"echo\\":$EVENT,\\"handler\\":\\"$_HANDLER\\"}" > /dev/null
  rm -f "$HEADERS"
done
`,
    );
    await chmod(bootstrap, 0o755);
    await start(bootstrap, { _HANDLER: 'function.handler' });
    await server.ready;
    const first = await server.invoke({ n: 1 }, { timeoutMs: 5000, functionArn: ARN });
    const second = await server.invoke({ n: 2 }, { timeoutMs: 5000, functionArn: ARN });
    expect(first).toEqual({ ok: true, result: { echo: { n: 1 }, handler: 'function.handler' } });
    expect(second).toEqual({ ok: true, result: { echo: { n: 2 }, handler: 'function.handler' } });
  });

  it("serves bakery's own Node.js runtime loop: results, typed errors and context", async () => {
    const opt = path.join(dir, 'opt');
    const task = path.join(dir, 'task');
    await mkdir(path.join(opt, 'bin'), { recursive: true });
    await mkdir(path.join(opt, 'runtime'), { recursive: true });
    await mkdir(task);
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/bootstrap'), path.join(opt, 'bootstrap'));
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/index.mjs'), path.join(opt, 'runtime', 'index.mjs'));
    await writeFile(path.join(opt, 'bin', 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
    await chmod(path.join(opt, 'bin', 'node'), 0o755);
    await chmod(path.join(opt, 'bootstrap'), 0o755);
    await writeFile(
      path.join(task, 'app.mjs'),
      `export const go = async (event, context) => {
         if (event.fail) { const e = new Error('asked to'); e.name = 'AskedError'; throw e; }
         return { got: event, fn: context.functionName, left: context.getRemainingTimeInMillis() > 0, arn: context.invokedFunctionArn };
       };`,
    );
    await start(path.join(opt, 'bootstrap'), { _HANDLER: 'app.go', LAMBDA_TASK_ROOT: task, AWS_LAMBDA_FUNCTION_NAME: 'demo' });
    await server.ready;
    await expect(server.invoke({ a: 1 }, { timeoutMs: 5000, functionArn: ARN })).resolves.toEqual({
      ok: true,
      result: { got: { a: 1 }, fn: 'demo', left: true, arn: ARN },
    });
    await expect(server.invoke({ fail: true }, { timeoutMs: 5000, functionArn: ARN })).resolves.toEqual({
      ok: false,
      errorType: 'AskedError',
      errorMessage: 'asked to',
    });
  });

  it('reports an init error when the handler does not exist', async () => {
    const opt = path.join(dir, 'opt');
    await mkdir(path.join(opt, 'bin'), { recursive: true });
    await mkdir(path.join(opt, 'runtime'), { recursive: true });
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/bootstrap'), path.join(opt, 'bootstrap'));
    await copyFile(path.join(PROJECT_ROOT, 'layers/node22/runtime/index.mjs'), path.join(opt, 'runtime', 'index.mjs'));
    await writeFile(path.join(opt, 'bin', 'node'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} "$@"\n`);
    await chmod(path.join(opt, 'bin', 'node'), 0o755);
    await chmod(path.join(opt, 'bootstrap'), 0o755);
    const reported = new Promise<void>((resolve) => server.onInitError(resolve));
    await start(path.join(opt, 'bootstrap'), { _HANDLER: 'missing.handler', LAMBDA_TASK_ROOT: dir });
    await reported;
    expect(server.initError).toMatchObject({ errorType: 'Runtime.HandlerNotFound' });
    expect(server.initError?.errorMessage).toContain('no module missing');
  });
});
