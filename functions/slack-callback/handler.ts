import { createSlackCallbackDeps } from '../../src/adapters/aws/index.ts';
import { slackCallbackHandler } from '../../src/lambda.ts';

/** Slack's interactivity endpoint (a Function URL): the Approve and Reject clicks, on the AWS adapters. */
export const handler = slackCallbackHandler(createSlackCallbackDeps);
