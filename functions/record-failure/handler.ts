import { aws } from '../../src/compose/aws.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The recordFailure task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('recordFailure', aws.recordFailure);
