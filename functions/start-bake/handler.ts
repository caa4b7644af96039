import { S3EventNotificationEventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/s3';
import { z } from 'zod';
import { aws, type StartBakeDeps } from '../../src/compose/aws.ts';
import { type StartOutcome, startS3Bake } from '../../src/cores/trigger.ts';
import { lambdaHandler, logger } from '../../src/lambda.ts';

/**
 * S3's "Object Created" event as EventBridge delivers it (note `detail.object.version-id`).
 * Powertools declares `source-ip-address` IPv4 only; S3 reports an IPv6 client as it came
 * (dual-stack endpoints), and such an upload must bake too.
 */
export const ObjectCreatedEventSchema = S3EventNotificationEventBridgeSchema.extend({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: S3EventNotificationEventBridgeSchema.shape.detail.extend({
    'source-ip-address': z.union([z.ipv4(), z.ipv6()]).optional(),
  }),
});

export type ObjectCreatedEvent = z.output<typeof ObjectCreatedEventSchema>;

/**
 * The target of the EventBridge rule on uploads to the source bucket (not a
 * state-machine task): start the bake of the uploaded object under a name derived from
 * its bucket, key and version. An event delivered twice (also while that bake still
 * runs) finds the execution the first one started, logs "already started", and
 * succeeds: one upload, one bake. Other errors are logged and rethrown, so Lambda
 * retries the event.
 */
export function startBakeHandler(deps: () => StartBakeDeps) {
  return lambdaHandler<ObjectCreatedEvent, StartOutcome, StartBakeDeps>({
    name: 'startBake',
    schema: ObjectCreatedEventSchema,
    deps,
    logKeys: (event) => ({ eventId: event.id, bucket: event.detail.bucket.name, key: event.detail.object.key }),
    core: async (event, d) => {
      const { bucket, object } = event.detail;
      // A bucket whose versioning is suspended reports version id "null": startS3Bake goes by the sequencer then.
      const outcome = await startS3Bake(
        { bucket: bucket.name, key: object.key, versionId: object['version-id'] ?? null, sequencer: object.sequencer ?? null },
        d,
      );
      if (outcome.started) logger.info('bake started', { ...outcome });
      else logger.info('bake already started (running or done): this upload was started before', { ...outcome });
      return outcome;
    },
  });
}

/** The S3 trigger, on the AWS adapters. */
export const handler = startBakeHandler(aws.startBake);
