/**
 * The factory's Powertools chain (src/lambda.ts, src/observability.ts) through a real
 * middy chain: metrics are printed as CloudWatch EMF on stdout inside Lambda only, the
 * error-logging middleware rethrows, and nothing but the logger writes outside Lambda.
 */
import { afterEach, beforeEach, describe, expect, it, type MockInstance, vi } from 'vitest';
import { lambdaHandler, logger, metrics, tracer } from '../../src/lambda.ts';
import { lambdaContext } from '../helpers/lambda-context.ts';

const context = lambdaContext('bakery-dev-probe');

type Emf = { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string }> }> } } & Record<
  string,
  unknown
>;

const probe = () =>
  lambdaHandler<unknown, { ok: true }, { n: number }>({
    name: 'probe',
    deps: () => ({ n: 3 }),
    core: async (_event, d) => {
      metrics.addMetric('Probed', 'Count', d.n);
      return { ok: true };
    },
  });

describe('the handler chain', () => {
  let stdout: MockInstance;
  const printed = () => stdout.mock.calls.map(([chunk]) => String(chunk));

  beforeEach(() => {
    stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    vi.spyOn(logger, 'error').mockImplementation(() => {});
  });
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
  });

  it('prints the invocation’s metrics as EMF in the bakery namespace, with the function key as dimension, inside Lambda', async () => {
    // Prepare: the Lambda runtime sets AWS_LAMBDA_FUNCTION_NAME.
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', 'bakery-dev-probe');

    // Act
    const result = await probe()({}, context);

    // Assess
    expect(result).toEqual({ ok: true });
    const emf = printed()
      .flatMap((line) => line.split('\n'))
      .filter((line) => line.includes('"_aws"'))
      .map((line) => JSON.parse(line) as Emf);
    const probed = emf.find((doc) => doc.Probed === 3);
    expect(probed?._aws.CloudWatchMetrics[0]?.Namespace).toBe('bakery');
    expect(probed?._aws.CloudWatchMetrics[0]?.Dimensions[0]).toContain('function');
    expect(probed?.function).toBe('probe');
  });

  it('writes nothing to stdout outside Lambda (tests, a handler loaded by hand), and traces nothing', async () => {
    // Prepare
    vi.stubEnv('AWS_LAMBDA_FUNCTION_NAME', '');

    // Act
    await probe()({}, context);

    // Assess
    expect(printed()).toEqual([]);
    expect(tracer.isTracingEnabled()).toBe(false);
  });

  it('logs a failure as "<name> failed" and rethrows it untouched, its name intact for the ASL', async () => {
    // Prepare
    const failure = Object.assign(new Error('no'), { name: 'AliasConflictError' });
    const failing = lambdaHandler<unknown, never, object>({
      name: 'probe',
      deps: () => ({}),
      core: async () => {
        throw failure;
      },
    });

    // Act
    const thrown = await failing({}, context).catch((error: unknown) => error);

    // Assess
    expect(thrown).toBe(failure);
    expect(logger.error).toHaveBeenCalledWith('probe failed', expect.objectContaining({ error: failure }));
  });
});
