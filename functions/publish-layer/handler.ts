import { aws } from '../../src/compose/aws.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The publishLayer task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('publishLayer', aws.publishLayer);
