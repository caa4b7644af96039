import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { parser } from '@aws-lambda-powertools/parser/middleware';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import type { Deps } from './compose/deps.ts';
import { logger, MetricUnit, metrics, tracer } from './observability.ts';
import { parseTaskInput } from './state.ts';
import { TASKS, type TaskName } from './tasks.ts';

export { logger, metrics, tracer };

/** What a function measures of one successful invocation, as Powertools metrics. */
export type Measure<E, R> = (result: R, event: E, elapsedMs: number, m: typeof metrics) => void;

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
  /** The function's own metrics of a successful invocation (flushed by the chain's logMetrics). */
  measure?: Measure<E, R>;
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
 * The handler factory every function goes through, one middleware chain: Powertools
 * Logger with the Lambda context and the function key, Tracer (a segment per invocation;
 * responses are not recorded, they may be large), Metrics (flushed after each invocation,
 * a cold-start metric on the first, `function` as dimension), the event's schema when it
 * has one, the one error-logging middleware, then the core with the function's
 * dependencies and its own measurements.
 */
export function lambdaHandler<E, R, D>(spec: FunctionSpec<E, R, D>) {
  // The event arrives unchecked: `unknown` until the schema (if any) has parsed it.
  const chain = middy<unknown, R, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(captureLambdaHandler(tracer, { captureResponse: false }) as MiddlewareObj<unknown, R, Error, Context>)
    .use(logMetrics(metrics, { captureColdStartMetric: true }) as MiddlewareObj<unknown, R, Error, Context>);
  if (spec.schema) chain.use(parser({ schema: spec.schema }) as MiddlewareObj<unknown, R, Error, Context>);
  return chain.use(logErrors<R>(spec.name, spec.failureResponse)).handler(async (raw, context) => {
    // Parsed by the schema above, or (without one) the event type Lambda's trigger delivers.
    const event = raw as E;
    logger.appendKeys({ function: spec.name, ...spec.logKeys?.(event) });
    metrics.addDimension('function', spec.name);
    const started = Date.now();
    const result = await spec.core(event, spec.deps(), context);
    spec.measure?.(result, event, Date.now() - started, metrics);
    return result;
  });
}

/** The tasks' own metrics: build cache hits and reused layers (seen by PublishLayer), how long validation took. */
const TASK_MEASURES: Partial<Record<TaskName, Measure<unknown, unknown>>> = {
  publishLayer: (result, event, _ms, m) => {
    // The payload was parsed already (the task succeeded): read the same state again.
    m.addMetric('BuildCacheHit', MetricUnit.Count, parseTaskInput('PublishLayer', event).image.cacheHit ? 1 : 0);
    m.addMetric('LayerReused', MetricUnit.Count, (result as { reused: boolean }).reused ? 1 : 0);
  },
  validate: (_result, _event, ms, m) => m.addMetric('ValidationDuration', MetricUnit.Milliseconds, ms),
};

/** A state-machine task: its TASKS entry (which parses the state) on the given ports. */
export function taskHandler(task: TaskName, deps: () => Deps) {
  const measure = TASK_MEASURES[task];
  return lambdaHandler<unknown, unknown, Deps>({
    name: task,
    deps,
    core: (event, d) => TASKS[task](event, d),
    ...(measure ? { measure } : {}),
  });
}
