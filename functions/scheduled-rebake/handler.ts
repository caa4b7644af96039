import { z } from 'zod';
import { aws, type ScheduledRebakeDeps } from '../../src/compose/aws.ts';
import { type RebakeOutcome, scheduledRebake } from '../../src/cores/trigger.ts';
import { lambdaHandler, logger } from '../../src/lambda.ts';

/**
 * The input the patch-rebuild schedule sends (its target's `Input` in serverless.yml,
 * filled in by EventBridge Scheduler's context attributes). Both fields may be absent
 * when the function is invoked by hand.
 */
export const ScheduleFiringSchema = z
  .object({
    scheduleArn: z.string().startsWith('arn:').nullish(),
    scheduledTime: z.iso.datetime({ offset: true }).nullish(),
  })
  .strict();

export type ScheduleFiringEvent = z.output<typeof ScheduleFiringSchema>;

/**
 * The scheduled patch rebuild (an EventBridge Scheduler target, not a state-machine
 * task): start a schedule-triggered bake of the current version of every bake source,
 * each under a name per object version and ISO week. ResolveBake moves the pins to the
 * newest patch and ends unchanged bakes as "up to date".
 */
export function scheduledRebakeHandler(deps: () => ScheduledRebakeDeps) {
  return lambdaHandler<ScheduleFiringEvent, RebakeOutcome, ScheduledRebakeDeps>({
    name: 'scheduledRebake',
    schema: ScheduleFiringSchema,
    deps,
    core: async (event, d) => {
      const outcome = await scheduledRebake(
        { scheduleArn: event.scheduleArn ?? null, scheduledTime: event.scheduledTime ?? null },
        { bucket: d.source.bucket(), prefix: d.source.prefix() },
        d,
      );
      const again = outcome.bakes.filter((b) => !b.started);
      logger.info('scheduled rebuild started', {
        week: outcome.week,
        sources: outcome.sources,
        started: outcome.bakes.filter((b) => b.started).map((b) => b.bakeId),
        alreadyRunningOrDone: again.map((b) => b.bakeId),
      });
      return outcome;
    },
  });
}

/** The scheduled patch rebuild, on the AWS adapters. */
export const handler = scheduledRebakeHandler(aws.scheduledRebake);
