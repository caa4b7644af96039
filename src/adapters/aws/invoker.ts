import {
  type FunctionConfiguration,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  type LambdaClient,
  waitForPublishedVersionActive,
} from '@aws-sdk/client-lambda';
import { NotFoundError, TransientBackendError } from '../../errors.ts';
import type { FunctionInvoker, InvokeOutcome, InvokeSession } from '../../ports/lambda.ts';
import type { Json } from '../../state.ts';
import { lambdaClient } from './clients.ts';
import { callAws, hasName } from './errors.ts';
import { DEFAULT_WAIT, type WaitOptions } from './functions.ts';

const LOG_TAIL_BYTES = 4096;

/** `Duration: 12.34 ms` of the REPORT line Lambda appends to every invocation's log. */
const REPORT_DURATION = /REPORT RequestId:\s*\S+\s+Duration:\s*([\d.]+)\s*ms/;

function decode(payload: Uint8Array | undefined): string {
  return payload ? Buffer.from(payload).toString('utf8') : '';
}

function parseJson(text: string): Json {
  if (text === '') return null;
  try {
    return JSON.parse(text) as Json;
  } catch {
    // A runtime may answer with bytes that are not JSON; the validation compares them as a string.
    return text;
  }
}

/** The `{errorType, errorMessage}` of a function error payload, whatever shape the runtime gave it. */
function errorOf(payload: Json, functionError: string): { errorType: string; errorMessage: string } {
  if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
    const type = payload.errorType;
    const message = payload.errorMessage;
    return {
      errorType: typeof type === 'string' && type ? type : functionError,
      errorMessage: typeof message === 'string' ? message : JSON.stringify(payload),
    };
  }
  return { errorType: functionError, errorMessage: typeof payload === 'string' ? payload : JSON.stringify(payload) };
}

/**
 * Runs validation events against a published version in Lambda: always the version
 * number as Qualifier (never the alias, which still serves the live version), with the
 * log tail so a failing case shows what the function printed.
 */
export class LambdaInvoker implements FunctionInvoker {
  private readonly lambda: LambdaClient;
  private readonly wait: WaitOptions;

  constructor(options: { lambda?: LambdaClient; wait?: Partial<WaitOptions> } = {}) {
    this.lambda = options.lambda ?? lambdaClient;
    this.wait = { ...DEFAULT_WAIT, ...options.wait };
  }

  /** Lambda gives a version the network its configuration has; the no-network run is a local check. */
  async isolation(): Promise<{ available: boolean; reason: string | null }> {
    return {
      available: false,
      reason: 'not in AWS: Lambda cannot run a version with no network; local bakes of the same spec run this check',
    };
  }

  async open(target: { name: string; version: string; initTimeoutMs: number }): Promise<InvokeSession> {
    const { name, version } = target;
    if (!/^\d+$/.test(version)) throw new NotFoundError(`${name}: "${version}" is not a published version number`);
    const config = await this.versionConfig(name, version);
    // Lambda cannot report init separately from an invocation: a runtime that fails to
    // start surfaces as a function error of the first case (Runtime.InitError / ExitError).
    // A version Lambda could not even create (State Failed) is an init failure we can see.
    const init = {
      durationMs: null,
      error:
        config.State === 'Failed'
          ? `version ${version} is in state Failed: ${config.StateReasonCode ?? ''} ${config.StateReason ?? ''}`.trim()
          : null,
    };
    return {
      init,
      invoke: (event: Json) => this.invoke(name, version, event),
      close: async () => {},
    };
  }

  /** The version's configuration, once it has left Pending (a fresh version may still be). */
  private async versionConfig(name: string, version: string): Promise<FunctionConfiguration> {
    const read = () =>
      callAws(`GetFunctionConfiguration ${name}:${version}`, () =>
        this.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name, Qualifier: version })),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) throw new NotFoundError(`${name} has no version ${version}`, { cause: error });
        throw error;
      });
    const config = await read();
    if (config.State !== 'Pending') return config;
    const result = await waitForPublishedVersionActive({ client: this.lambda, ...this.wait }, { FunctionName: name, Qualifier: version });
    if (String(result.state) === 'TIMEOUT') {
      throw new TransientBackendError(`${name}:${version} was still Pending after ${this.wait.maxWaitTime} s`);
    }
    return read();
  }

  private async invoke(name: string, version: string, event: Json): Promise<InvokeOutcome> {
    const began = Date.now();
    const out = await callAws(`Invoke ${name}:${version}`, () =>
      this.lambda.send(
        new InvokeCommand({
          FunctionName: name,
          Qualifier: version,
          InvocationType: 'RequestResponse',
          LogType: 'Tail',
          Payload: Buffer.from(JSON.stringify(event)),
        }),
      ),
    ).catch((error: unknown) => {
      if (hasName(error, 'ResourceNotFoundException')) throw new NotFoundError(`${name} has no version ${version}`, { cause: error });
      throw error;
    });
    const logTail = out.LogResult ? Buffer.from(out.LogResult, 'base64').toString('utf8').slice(-LOG_TAIL_BYTES) : '';
    // Lambda's own measure of the handler, without the network and queueing around it;
    // the wall clock is the fallback when the REPORT line is missing from the tail.
    const reported = REPORT_DURATION.exec(logTail)?.[1];
    const durationMs = reported === undefined ? Date.now() - began : Math.round(Number(reported));
    const payload = parseJson(decode(out.Payload));
    if (out.FunctionError) return { ok: false, ...errorOf(payload, out.FunctionError), durationMs, logTail };
    return { ok: true, result: payload, durationMs, logTail };
  }
}
