import { EventBridgeSchema } from '@aws-lambda-powertools/parser/schemas/eventbridge';
import { z } from 'zod';
import { aws, type ImageEventDeps } from '../../src/compose/aws.ts';
import { handleImageStateChange, type ImageEventOutcome } from '../../src/cores/image-events.ts';
import { lambdaHandler, logger } from '../../src/lambda.ts';

/** `arn:<partition>:imagebuilder:<region>:<account>:image/<name>/<version>/<build>`: an image build version. */
const IMAGE_BUILD_VERSION_ARN = /^arn:[\w-]+:imagebuilder:[\w-]+:\d{12}:image\/[^/]+\/\d+\.\d+\.\d+\/\d+$/;

/** The "EC2 Image Builder Image State Change" event, as far as the handler relies on it. */
export const ImageStateChangeEventSchema = EventBridgeSchema.extend({
  source: z.literal('aws.imagebuilder'),
  'detail-type': z.literal('EC2 Image Builder Image State Change'),
  resources: z.tuple([z.string().regex(IMAGE_BUILD_VERSION_ARN, 'expected an image build version ARN')]).rest(z.string()),
  detail: z.object({
    state: z.object({ status: z.string().min(1), reason: z.string().optional() }),
    'previous-state': z.object({ status: z.string(), reason: z.string().optional() }).optional(),
  }),
});

export type ImageStateChangeEvent = z.output<typeof ImageStateChangeEventSchema>;

/**
 * Subscribed by an EventBridge rule to the state changes of this stack's pipeline's
 * images (not a state-machine task): the end of a build resumes the BuildImage task
 * waiting on it. Errors are logged and rethrown, so Lambda retries the event.
 */
export function imageBuildEventsHandler(deps: () => ImageEventDeps) {
  return lambdaHandler<ImageStateChangeEvent, ImageEventOutcome, ImageEventDeps>({
    name: 'imageBuildEvents',
    schema: ImageStateChangeEventSchema,
    deps,
    logKeys: (event) => ({ buildId: event.resources[0], eventId: event.id }),
    core: async (event, d) => {
      const buildId = event.resources[0];
      const outcome = await handleImageStateChange(
        { buildId, status: event.detail.state.status, reason: event.detail.state.reason ?? null, at: event.time, claim: event.id },
        d,
      );
      if (outcome.outcome === 'unknown') logger.warn('no bake waits on this image build; ignored', { outcome });
      else if (outcome.outcome === 'gone') logger.warn('the bake no longer waits on this image build', { outcome });
      else logger.info(`image build event ${outcome.outcome}`, { outcome });
      return outcome;
    },
  });
}

/** The image build event handler, on the AWS adapters. */
export const handler = imageBuildEventsHandler(aws.imageBuildEvents);
