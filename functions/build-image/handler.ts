import { createAwsDeps } from '../../src/adapters/aws/index.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The buildImage task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('buildImage', createAwsDeps);
