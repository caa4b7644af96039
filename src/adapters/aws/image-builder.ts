import { createHash } from 'node:crypto';
import { type ImagebuilderClient, StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { BakeryError } from '../../errors.ts';
import type { Clock, ImageBuilder, ImageBuildStart } from '../../ports.ts';
import { documentClient, imageBuilderClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws } from './errors.ts';

/** The BuildImage task's TimeoutSeconds in the ASL: after that the token is useless. */
export const TOKEN_LIFETIME_SECONDS = 10_800;

/**
 * The idempotency token of a bake's build: the same bake id always gives the same token,
 * so a retried BuildImage task gets the build it already started instead of a second one.
 * Image Builder takes at most 36 characters: a UUID-shaped slice of a SHA-256.
 */
export function buildClientToken(bakeId: string): string {
  const h = createHash('sha256').update(`bakery/build/${bakeId}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export const imageBuildTokenKey = (imageBuildVersionArn: string) => ({ pk: `IMAGEBUILD#${imageBuildVersionArn}`, sk: 'TOKEN' });

/**
 * Starts the runtime image build on EC2 Image Builder and parks the task token in
 * DynamoDB under the build's ARN, where the handler of the build's state-change event
 * finds it to resume (or fail) the waiting execution.
 */
export class AwsImageBuilder implements ImageBuilder {
  private readonly client: ImagebuilderClient;
  private readonly db: DynamoDBDocumentClient;
  private readonly pipelineArn: Setting;
  private readonly table: Setting;
  private readonly clock: Clock;

  constructor(options: { pipelineArn: Setting; table: Setting; clock: Clock; client?: ImagebuilderClient; db?: DynamoDBDocumentClient }) {
    this.client = options.client ?? imageBuilderClient;
    this.db = options.db ?? documentClient;
    this.pipelineArn = options.pipelineArn;
    this.table = options.table;
    this.clock = options.clock;
  }

  async start(request: ImageBuildStart): Promise<{ buildId: string }> {
    const pipelineArn = resolveSetting(this.pipelineArn);
    const out = await callAws(`StartImagePipelineExecution ${pipelineArn}`, () =>
      this.client.send(
        new StartImagePipelineExecutionCommand({
          imagePipelineArn: pipelineArn,
          clientToken: buildClientToken(request.bakeId),
          // Lets a person (or the event handler) tie the image back to its bake.
          tags: { 'bakery:bakeId': request.bakeId, 'bakery:bakeKey': request.bakeKey },
        }),
      ),
    );
    const arn = out.imageBuildVersionArn;
    if (!arn) throw new BakeryError(`StartImagePipelineExecution ${pipelineArn} returned no imageBuildVersionArn`);
    const now = this.clock.now();
    const expires = new Date(now.getTime() + TOKEN_LIFETIME_SECONDS * 1000);
    // Written after the start: a failure here is retried by the ASL, and the retry's
    // identical clientToken returns this same build, so the token still lands under it.
    await callAws('PutItem image build token', () =>
      this.db.send(
        new PutCommand({
          TableName: resolveSetting(this.table),
          Item: {
            ...imageBuildTokenKey(arn),
            bakeId: request.bakeId,
            bakeKey: request.bakeKey,
            recipe: request.recipe.name,
            taskToken: request.taskToken,
            createdAt: now.toISOString(),
            expiresAt: expires.toISOString(),
            ttl: Math.floor(expires.getTime() / 1000),
          },
        }),
      ),
    );
    return { buildId: arn };
  }
}
