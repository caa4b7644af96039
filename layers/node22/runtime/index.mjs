// bakery's Node.js runtime loop for provided.al2023: loads the function's handler and
// serves invocations through the Lambda Runtime API (2018-06-01). Written by hand
// because the official runtime interface client ships only inside AWS's base images;
// this loop has no dependencies, so the layer is the node binary plus this file.
import { existsSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const API = process.env.AWS_LAMBDA_RUNTIME_API;
const BASE = '/2018-06-01/runtime';

// node:http rather than fetch: `invocation/next` is a long poll that must never time out.
function request(method, urlPath, body, headers = {}) {
  const [host, port] = API.split(':');
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(
      {
        host,
        port: Number(port),
        method,
        path: `${BASE}${urlPath}`,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length, ...headers } : headers,
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function errorPayload(error) {
  const err = error instanceof Error ? error : new Error(String(error));
  return {
    errorType: err.name || 'Error',
    errorMessage: err.message,
    stackTrace: (err.stack || '')
      .split('\n')
      .slice(1)
      .map((line) => line.trim()),
  };
}

async function reportError(urlPath, error) {
  const payload = errorPayload(error);
  console.error(`${payload.errorType}: ${payload.errorMessage}`);
  await request('POST', urlPath, JSON.stringify(payload), { 'lambda-runtime-function-error-type': payload.errorType });
}

class HandlerNotFoundError extends Error {
  constructor(message) {
    super(message);
    this.name = 'Runtime.HandlerNotFound';
  }
}

async function loadHandler() {
  const spec = process.env._HANDLER || '';
  const dot = spec.lastIndexOf('.');
  if (dot <= 0) throw new HandlerNotFoundError(`bad handler "${spec}": expected "file.export"`);
  const file = spec.slice(0, dot);
  const name = spec.slice(dot + 1);
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  const candidate = ['.mjs', '.js', '.cjs'].map((ext) => path.join(root, file + ext)).find((p) => existsSync(p));
  if (!candidate) throw new HandlerNotFoundError(`no module ${file}.mjs/.js/.cjs in ${root}`);
  const mod = await import(pathToFileURL(candidate).href);
  const handler = mod[name] ?? mod.default?.[name];
  if (typeof handler !== 'function') throw new HandlerNotFoundError(`${file} has no exported function "${name}"`);
  return handler;
}

function parseJsonHeader(value) {
  if (!value) return undefined;
  try {
    return JSON.parse(String(value));
  } catch {
    return undefined;
  }
}

function invokeHandler(handler, event, context) {
  if (handler.length >= 3) {
    // callback-style handler
    return new Promise((resolve, reject) => {
      const maybe = handler(event, context, (error, result) => (error ? reject(error) : resolve(result)));
      if (maybe && typeof maybe.then === 'function') maybe.then(resolve, reject);
    });
  }
  return Promise.resolve().then(() => handler(event, context));
}

let handler;
try {
  handler = await loadHandler();
} catch (error) {
  await reportError('/init/error', error).catch(() => {});
  process.exit(1);
}

for (;;) {
  const next = await request('GET', '/invocation/next');
  const h = next.headers;
  const requestId = String(h['lambda-runtime-aws-request-id']);
  const deadline = Number(h['lambda-runtime-deadline-ms'] || Date.now() + 3000);
  if (h['lambda-runtime-trace-id']) process.env._X_AMZN_TRACE_ID = String(h['lambda-runtime-trace-id']);
  else delete process.env._X_AMZN_TRACE_ID;
  const context = {
    awsRequestId: requestId,
    invokedFunctionArn: String(h['lambda-runtime-invoked-function-arn'] || ''),
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: parseJsonHeader(h['lambda-runtime-client-context']),
    identity: parseJsonHeader(h['lambda-runtime-cognito-identity']),
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
  };
  let event;
  try {
    event = JSON.parse(next.body);
  } catch (error) {
    await reportError(`/invocation/${requestId}/error`, error);
    continue;
  }
  try {
    const result = await invokeHandler(handler, event, context);
    await request('POST', `/invocation/${requestId}/response`, JSON.stringify(result === undefined ? null : result));
  } catch (error) {
    await reportError(`/invocation/${requestId}/error`, error);
  }
}
