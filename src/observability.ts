/**
 * Powertools Logger, Metrics and Tracer: one of each for every bakery Lambda. The handler
 * factory (src/lambda.ts) puts them in its middleware chain; the AWS composition
 * (src/compose/aws.ts) traces the SDK clients. Outside Lambda (the tests, a handler loaded
 * by hand) nothing here writes to stdout but the Logger: Tracer turns itself off there (no
 * AWS_EXECUTION_ENV), and Metrics are kept from printing (below). The local CLI does not
 * import this module.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';

export { MetricUnit };

/** One logger for every bakery Lambda; the function key is a persistent key of each invocation. */
export const logger = new Logger({ serviceName: 'bakery' });

/**
 * Metrics that are printed (as CloudWatch embedded metric format, on stdout) only inside
 * Lambda, whose runtime sets AWS_LAMBDA_FUNCTION_NAME. Powertools itself would print them
 * anywhere unless POWERTOOLS_METRICS_DISABLED or POWERTOOLS_DEV is set, and warn about an
 * invocation without metrics; a test run or a script loading a handler should not have to
 * know that. Checked at each flush, so a test can step inside.
 */
class LambdaMetrics extends Metrics {
  override publishStoredMetrics(): this {
    if (process.env.AWS_LAMBDA_FUNCTION_NAME) return super.publishStoredMetrics();
    this.clearMetrics();
    this.clearDimensions();
    this.clearMetadata();
    return this;
  }
}

export const metrics = new LambdaMetrics({ namespace: 'bakery', serviceName: 'bakery' });

/** X-Ray tracing of the handlers and the SDK clients; a no-op outside Lambda. */
export const tracer = new Tracer({ serviceName: 'bakery' });
