import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent } from 'aws-lambda';
import { createAwsDeps } from '../../src/adapters/aws/index.ts';
import { driftCheck } from '../../src/cores/drift.ts';
import { logger } from '../../src/lambda.ts';

/**
 * The scheduled drift check (an EventBridge schedule, not a state-machine task): compare
 * what is live with the release manifests, and tell Slack when anything differs. A
 * failure is logged and rethrown, so the invocation counts as failed in its metrics.
 */
export const handler = middy<ScheduledEvent, unknown, Error, Context>()
  .use(injectLambdaContext(logger, { resetKeys: true }))
  .use({
    onError: async (request) => {
      logger.error('driftCheck failed', { error: request.error ?? undefined });
    },
  })
  .handler(async () => {
    logger.appendKeys({ task: 'driftCheck' });
    const report = await driftCheck(createAwsDeps());
    const drifted = report.functions.filter((f) => f.differences.length > 0);
    if (drifted.length) logger.warn('drift found', { functions: drifted });
    else logger.info('no drift', { checked: report.functions.length });
    return { drifted: report.drifted, checked: report.functions.length, differences: drifted.flatMap((f) => f.differences).length };
  });
