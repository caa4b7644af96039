import { aws } from '../../src/compose/aws.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The recordSuccess task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('recordSuccess', aws.recordSuccess);
