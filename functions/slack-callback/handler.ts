import type { LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { aws, type SlackCallbackDeps } from '../../src/compose/aws.ts';
import { handleSlackInteraction, type SlackOutcome } from '../../src/cores/slack-callback.ts';
import { lambdaHandler, logger, metrics } from '../../src/lambda.ts';
import { MetricUnit } from '../../src/observability.ts';

/** What to log of an outcome: never the record (it holds the task token). */
function describeOutcome(outcome: SlackOutcome): Record<string, unknown> {
  if (outcome.kind === 'decided') {
    const { id, bakeId, decision } = outcome.record;
    return { kind: outcome.kind, approvalId: id, bakeId, outcome: decision?.outcome, by: decision?.by };
  }
  return { ...outcome };
}

/**
 * Slack's interactivity endpoint behind a Lambda Function URL: the Approve and Reject
 * clicks. No body parser: the signature covers the raw bytes, which a Function URL may
 * hand over base64-encoded. The core answers every request itself (401, 400, 200, 500);
 * an error that escapes it anyway becomes a 500 without details.
 */
export function slackCallbackHandler(deps: () => SlackCallbackDeps, options: { stopBeforeTimeoutMs?: number } = {}) {
  const margin = options.stopBeforeTimeoutMs ?? 500;
  return lambdaHandler<LambdaFunctionURLEvent, LambdaFunctionURLResult, SlackCallbackDeps>({
    name: 'slackCallback',
    deps,
    failureResponse: () => ({ statusCode: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'internal error' }),
    core: async (event, d, context) => {
      const rawBody = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
      const { response, outcome, followUp } = await handleSlackInteraction(
        { headers: event.headers, rawBody },
        { ...d, log: (message, detail) => logger.error(message, detail) },
      );
      // Lambda freezes the container once the handler returns: the message update and the
      // reply to the clicker still under way would be lost. Wait for them within the time
      // left (Slack then gets its answer late, which it shows, but the update happens).
      const left = context.getRemainingTimeInMillis() - margin;
      if (left > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([followUp, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
        clearTimeout(timer);
      }
      // How long the approval waited for this click (requested → decided).
      if (outcome.kind === 'decided' && outcome.record.decision) {
        const waited = Date.parse(outcome.record.decision.at) - Date.parse(outcome.record.createdAt);
        if (Number.isFinite(waited)) metrics.addMetric('ApprovalWait', MetricUnit.Seconds, Math.max(0, waited) / 1000);
      }
      if (outcome.kind === 'unauthenticated' || outcome.kind === 'malformed')
        logger.warn('slack request refused', describeOutcome(outcome));
      else logger.info('slack interaction', describeOutcome(outcome));
      return response;
    },
  });
}

/** Slack's interactivity endpoint, on the AWS adapters. */
export const handler = slackCallbackHandler(aws.slackCallback);
