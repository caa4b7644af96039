import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { parser } from '@aws-lambda-powertools/parser/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Deps } from './compose/deps.ts';
import { TASKS, type TaskName } from './tasks.ts';

/** One logger for every bakery Lambda; the function key is a persistent key of each invocation. */
export const logger = new Logger({ serviceName: 'bakery' });

/** What one Lambda of bakery is: the four things `functions/<name>/handler.ts` says. */
export interface FunctionSpec<E, R, D> {
  /** The function key in serverless.yml: logged as `function` with every line, and in the failure message. */
  name: string;
  /**
   * The event's schema, parsed at the boundary (Powertools parser: a mismatch is a
   * ParseError). None for the state-machine tasks, whose TASKS entry parses the state
   * with its own schema (src/state.ts) so a mismatch names the state and the field.
   */
  schema?: z.ZodType<E>;
  /** The work: the parsed event, the function's dependencies, the Lambda context. */
  core: (event: E, deps: D, context: Context) => Promise<R>;
  /** The function's dependencies, from its composition root (src/compose/aws.ts). */
  deps: () => D;
  /** More keys for every log line of the invocation (ids taken from the event). */
  logKeys?: (event: E) => Record<string, unknown>;
  /**
   * The answer when the work fails, for a function whose caller needs one (the Slack
   * endpoint's HTTP 500). Without it the error is rethrown untouched.
   */
  failureResponse?: () => R;
}

/**
 * The one error-logging middleware: logs `<name> failed` with the error, then either
 * rethrows it untouched (its `name` reaches the ASL's Retry/Catch as the Lambda errorType,
 * and a failed event invocation is retried) or answers with the spec's failure response.
 */
export function logErrors<R>(name: string, failureResponse?: () => R): MiddlewareObj<unknown, R, Error, Context> {
  const onError = async (request: middy.Request<unknown, R, Error, Context>) => {
    logger.error(`${name} failed`, { error: request.error ?? undefined });
    if (failureResponse) request.response = failureResponse();
  };
  return { onError };
}

/**
 * The handler factory every function goes through: Powertools logging with the Lambda
 * context and the function key, the event's schema when it has one, the one
 * error-logging middleware, then the core with the function's dependencies.
 */
export function lambdaHandler<E, R, D>(spec: FunctionSpec<E, R, D>) {
  // The event arrives unchecked: `unknown` until the schema (if any) has parsed it.
  const chain = middy<unknown, R, Error, Context>().use(injectLambdaContext(logger, { resetKeys: true }));
  if (spec.schema) chain.use(parser({ schema: spec.schema }) as MiddlewareObj<unknown, R, Error, Context>);
  return chain.use(logErrors<R>(spec.name, spec.failureResponse)).handler(async (raw, context) => {
    // Parsed by the schema above, or (without one) the event type Lambda's trigger delivers.
    const event = raw as E;
    logger.appendKeys({ function: spec.name, ...spec.logKeys?.(event) });
    return spec.core(event, spec.deps(), context);
  });
}

/** A state-machine task: its TASKS entry (which parses the state) on the given ports. */
export function taskHandler(task: TaskName, deps: () => Deps) {
  return lambdaHandler<unknown, unknown, Deps>({ name: task, deps, core: (event, d) => TASKS[task](event, d) });
}
