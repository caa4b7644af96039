import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
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
