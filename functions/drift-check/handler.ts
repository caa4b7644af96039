import type { ScheduledEvent } from 'aws-lambda';
import { aws, type DriftCheckDeps } from '../../src/compose/aws.ts';
import { driftCheck } from '../../src/cores/drift.ts';
import { lambdaHandler, logger } from '../../src/lambda.ts';

/**
 * The scheduled drift check (an EventBridge schedule, not a state-machine task): compare
 * what is live with the release manifests, and tell Slack when anything differs. A
 * failure is logged and rethrown, so the invocation counts as failed in its metrics.
 */
export function driftCheckHandler(deps: () => DriftCheckDeps) {
  return lambdaHandler<ScheduledEvent, { drifted: boolean; checked: number; differences: number }, DriftCheckDeps>({
    name: 'driftCheck',
    deps,
    core: async (_event, d) => {
      const report = await driftCheck(d);
      const drifted = report.functions.filter((f) => f.differences.length > 0);
      if (drifted.length) logger.warn('drift found', { functions: drifted });
      else logger.info('no drift', { checked: report.functions.length });
      return { drifted: report.drifted, checked: report.functions.length, differences: drifted.flatMap((f) => f.differences).length };
    },
  });
}

/** The drift check, on the AWS adapters. */
export const handler = driftCheckHandler(aws.driftCheck);
