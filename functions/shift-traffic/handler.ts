import { aws } from '../../src/compose/aws.ts';
import { taskHandler } from '../../src/lambda.ts';

/** The shiftTraffic task of the bake state machine (one step of a gradual release), on the AWS adapters. */
export const handler = taskHandler('shiftTraffic', aws.shiftTraffic);
