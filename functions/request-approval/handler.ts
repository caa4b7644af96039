import { aws } from '../../src/compose/aws.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The requestApproval task of the bake state machine, on the AWS adapters. */
export const handler = taskHandler('requestApproval', aws.requestApproval);
