import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ImagebuilderClient } from '@aws-sdk/client-imagebuilder';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * The SDK clients, built once per Lambda container at module scope so warm invocations
 * reuse their connections and credentials. Adapters default to these and accept their
 * own in the constructor (tests, tracing wrappers). Region and credentials come from the
 * Lambda environment; nothing is resolved until the first call.
 */
const common = { customUserAgent: 'bakery' } as const;

export const lambdaClient = new LambdaClient(common);
export const s3Client = new S3Client(common);
export const sfnClient = new SFNClient(common);
export const imageBuilderClient = new ImagebuilderClient(common);
export const cloudWatchClient = new CloudWatchClient(common);
export const ec2Client = new EC2Client(common);
export const documentClient = DynamoDBDocumentClient.from(new DynamoDBClient(common), {
  // Optional fields are absent rather than undefined under exactOptionalPropertyTypes,
  // but a stray undefined must never fail a write that is otherwise correct.
  marshallOptions: { removeUndefinedValues: true },
});
