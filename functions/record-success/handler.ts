import { createAwsDeps } from '../../src/adapters/aws/index.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The recordSuccess task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('recordSuccess', createAwsDeps);
