import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, LambdaFunctionURLEvent, LambdaFunctionURLResult } from 'aws-lambda';
import { handleSlackInteraction, type SlackCallbackDeps, type SlackOutcome } from './cores/slack-callback.ts';
import { type Deps, TASKS, type TaskName } from './tasks.ts';

/** One logger for every bakery Lambda; the task name is a persistent key. */
export const logger = new Logger({ serviceName: 'bakery' });

/**
 * The middy wiring every state-machine task shares: Powertools logging with the Lambda
 * context, then the task's core with the AWS ports. Errors are logged and rethrown
 * untouched, so their `name` reaches the ASL's Retry/Catch as the Lambda errorType.
 */
export function taskHandler(task: TaskName, deps: () => Deps) {
  return middy<unknown, unknown, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: async (request) => {
        logger.error(`${task} failed`, { error: request.error ?? undefined });
      },
    })
    .handler(async (event) => {
      logger.appendKeys({ task });
      return TASKS[task](event, deps());
    });
}

/** What to log of an outcome: never the record (it holds the task token). */
function describeOutcome(outcome: SlackOutcome): Record<string, unknown> {
  if (outcome.kind === 'decided') {
    const { id, bakeId, decision } = outcome.record;
    return { kind: outcome.kind, approvalId: id, bakeId, outcome: decision?.outcome, by: decision?.by };
  }
  return { ...outcome };
}

/**
 * The Slack interactivity endpoint behind a Lambda Function URL. No body parser: the
 * signature covers the raw bytes, which a Function URL may hand over base64-encoded.
 * The core answers every request itself (401, 400, 200, 500); an error that escapes it
 * anyway becomes a 500 without details.
 */
export function slackCallbackHandler(deps: () => SlackCallbackDeps, options: { stopBeforeTimeoutMs?: number } = {}) {
  const margin = options.stopBeforeTimeoutMs ?? 500;
  return middy<LambdaFunctionURLEvent, LambdaFunctionURLResult, Error, Context>()
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use({
      onError: async (request) => {
        logger.error('slack callback failed', { error: request.error ?? undefined });
        request.response = { statusCode: 500, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: 'internal error' };
      },
    })
    .handler(async (event, context) => {
      logger.appendKeys({ task: 'slackCallback' });
      const rawBody = Buffer.from(event.body ?? '', event.isBase64Encoded ? 'base64' : 'utf8');
      const { response, outcome, followUp } = await handleSlackInteraction(
        { headers: event.headers, rawBody },
        { ...deps(), log: (message, detail) => logger.error(message, detail) },
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
      if (outcome.kind === 'unauthenticated' || outcome.kind === 'malformed')
        logger.warn('slack request refused', describeOutcome(outcome));
      else logger.info('slack interaction', describeOutcome(outcome));
      return response;
    });
}
