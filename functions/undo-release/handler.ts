import { createAwsDeps } from '../../src/adapters/aws/index.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The undo-release task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('undoRelease', createAwsDeps);
