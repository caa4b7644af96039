import { createHash } from 'node:crypto';
import { GetImageCommand, type ImagebuilderClient, StartImagePipelineExecutionCommand } from '@aws-sdk/client-imagebuilder';
import { HeadObjectCommand, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ImageEventDeps } from '../../cores/image-events.ts';
import { AlreadyDecidedError, BakeryError } from '../../errors.ts';
import type {
  Clock,
  ImageBuilder,
  ImageBuildOutputs,
  ImageBuildStart,
  ImageBuildTicket,
  ImageBuildTokens,
  TaskCallbacks,
} from '../../ports.ts';
import { SfnTaskCallbacks } from './callbacks.ts';
import { documentClient, imageBuilderClient, s3Client } from './clients.ts';
import { fromEnv, resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';
import { s3Uri } from './s3.ts';

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
            // For the build record the completion sends: what the build was asked to build.
            documents: request.recipe.documents,
            parameters: request.recipe.parameters,
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

// ---------------------------------------------------------------- completion

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const str = (item: Record<string, unknown>, key: string): string => {
  const value = item[key];
  if (typeof value !== 'string') throw new BakeryError(`image build token item has no string ${key}`);
  return value;
};

/** The image build tokens AwsImageBuilder parks in the table (`IMAGEBUILD#<arn>` / `TOKEN`). */
export class DynamoImageBuildTokens implements ImageBuildTokens {
  private readonly db: DynamoDBDocumentClient;
  private readonly table: Setting;

  constructor(options: { table: Setting; client?: DynamoDBDocumentClient }) {
    this.db = options.client ?? documentClient;
    this.table = options.table;
  }

  async find(buildId: string): Promise<ImageBuildTicket | undefined> {
    const out = await callAws(`GetItem image build token ${buildId}`, () =>
      this.db.send(new GetCommand({ TableName: resolveSetting(this.table), Key: imageBuildTokenKey(buildId), ConsistentRead: true })),
    );
    const item = out.Item;
    if (!item) return undefined;
    const done = isRecord(item.done) ? item.done : null;
    return {
      buildId,
      bakeId: str(item, 'bakeId'),
      bakeKey: str(item, 'bakeKey'),
      recipe: str(item, 'recipe'),
      taskToken: str(item, 'taskToken'),
      createdAt: str(item, 'createdAt'),
      documents: Array.isArray(item.documents) ? (item.documents as ImageBuildTicket['documents']) : [],
      parameters: isRecord(item.parameters) ? (item.parameters as Record<string, string>) : {},
      done: done ? { status: str(done, 'status'), at: str(done, 'at'), claim: str(done, 'claim') } : null,
    };
  }

  async markDone(buildId: string, done: { status: string; at: string; claim: string }): Promise<boolean> {
    try {
      await callAws(`UpdateItem image build token ${buildId}`, () =>
        this.db.send(
          new UpdateCommand({
            TableName: resolveSetting(this.table),
            Key: imageBuildTokenKey(buildId),
            UpdateExpression: 'SET #done = :done',
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(#done)',
            ExpressionAttributeNames: { '#done': 'done' },
            ExpressionAttributeValues: { ':done': done },
          }),
        ),
      );
      return true;
    } catch (error) {
      if (hasName(error, 'ConditionalCheckFailedException')) return false;
      throw error;
    }
  }

  async release(buildId: string, claim: string): Promise<void> {
    try {
      await callAws(`UpdateItem image build token ${buildId}`, () =>
        this.db.send(
          new UpdateCommand({
            TableName: resolveSetting(this.table),
            Key: imageBuildTokenKey(buildId),
            UpdateExpression: 'REMOVE #done',
            // Only our own mark: another delivery may hold it by now.
            ConditionExpression: '#done.#claim = :claim',
            ExpressionAttributeNames: { '#done': 'done', '#claim': 'claim' },
            ExpressionAttributeValues: { ':claim': claim },
          }),
        ),
      );
    } catch (error) {
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
    }
  }
}

/**
 * Where the test phase of a runtime component uploads the tested layer tree, zipped:
 * `<RUNTIME_PREFIX><AMI id>/runtime.zip` in the artefacts bucket. AWSTOE tells a
 * component nothing about the image build it runs in, but the test instance runs from
 * the build's AMI and reads its id from the instance metadata; this side gets the same
 * id from the image's output resources. serverless.yml passes the prefix to the
 * component (`RuntimeUpload`) and scopes the IAM policies to it.
 */
export const RUNTIME_PREFIX = 'builds/images/';
export const runtimeKey = (amiId: string): string => `${RUNTIME_PREFIX}${amiId}/runtime.zip`;

const MISSING = ['NotFound', 'NoSuchKey', 'Forbidden', 'AccessDenied'];
const SHA256_HEX = /^[0-9a-f]{64}$/;

function base64ToHex(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === 32 ? bytes.toString('hex') : undefined;
}

/** What an Image Builder build left: its AMI, and the runtime zip uploaded under it. */
export class S3ImageBuildOutputs implements ImageBuildOutputs {
  private readonly client: ImagebuilderClient;
  private readonly s3: S3Client;
  private readonly bucket: Setting;

  constructor(options: { bucket: Setting; client?: ImagebuilderClient; s3?: S3Client }) {
    this.client = options.client ?? imageBuilderClient;
    this.s3 = options.s3 ?? s3Client;
    this.bucket = options.bucket;
  }

  private async image(buildId: string) {
    const out = await callAws(`GetImage ${buildId}`, () => this.client.send(new GetImageCommand({ imageBuildVersionArn: buildId })));
    return out.image;
  }

  async failureReason(buildId: string): Promise<string | null> {
    return (await this.image(buildId))?.state?.reason ?? null;
  }

  async runtime(buildId: string): ReturnType<ImageBuildOutputs['runtime']> {
    // arn:<partition>:imagebuilder:<region>:<account>:image/<name>/<version>/<build>
    const [, , , region, account] = buildId.split(':');
    const amis = (await this.image(buildId))?.outputResources?.amis ?? [];
    // The AMI the test instance ran from: the one in the build's own region and account
    // (distribution may add copies elsewhere).
    const ami = amis.find((a) => a.region === region && (a.accountId === undefined || a.accountId === account))?.image;
    if (!ami) return { found: false, reason: `Image Builder reports no AMI of it in ${region ?? 'its region'}` };
    const bucket = resolveSetting(this.bucket);
    const key = runtimeKey(ami);
    const uri = s3Uri(bucket, key);
    let head: HeadObjectCommandOutput;
    try {
      head = await callAws(`HeadObject ${uri}`, () =>
        this.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' })),
      );
    } catch (error) {
      if (!hasName(error, ...MISSING)) throw error;
      return {
        found: false,
        reason: `its runtime tree is not at ${uri} (${(error as Error).name}: the test phase uploads it there, so it did not run or did not upload; or this function may not read it)`,
      };
    }
    // S3's own checksum, verified on upload, when the upload was a single PUT with a
    // SHA-256; else the hex SHA-256 the component stores as metadata.
    const fromS3 = head.ChecksumType === 'COMPOSITE' ? undefined : base64ToHex(head.ChecksumSHA256);
    const fromMetadata = head.Metadata?.sha256?.toLowerCase();
    const sha256Hex = fromS3 ?? fromMetadata;
    if (!sha256Hex || !SHA256_HEX.test(sha256Hex)) {
      return { found: false, reason: `${uri} has no full-object SHA-256 (neither an S3 checksum nor sha256 metadata)` };
    }
    if (fromS3 && fromMetadata && fromS3 !== fromMetadata) {
      return { found: false, reason: `${uri} has SHA-256 ${fromS3} in S3 but ${fromMetadata} in its metadata` };
    }
    if (typeof head.ContentLength !== 'number') return { found: false, reason: `HeadObject ${uri} gave no size` };
    return { found: true, ref: { uri, sha256Hex, size: head.ContentLength }, details: { ami } };
  }
}

/**
 * Callbacks for resuming image builds: besides what SfnTaskCallbacks maps, InvalidToken
 * also means the task is not waiting any more. A token bakery stored itself is well
 * formed, so Step Functions refusing it means its execution is gone.
 */
export function imageBuildCallbacks(inner: TaskCallbacks): TaskCallbacks {
  const gone = (error: unknown): never => {
    if (hasName(error, 'InvalidToken')) {
      throw new AlreadyDecidedError('the task token is no longer valid (its execution ended)', { cause: error });
    }
    throw error;
  };
  return {
    succeed: (token, output) => inner.succeed(token, output).catch(gone),
    fail: (token, error, cause) => inner.fail(token, error, cause).catch(gone),
  };
}

/** The ports of the image build event handler on their AWS adapters; settings are read on first use. */
export function buildImageEventDeps(env: NodeJS.ProcessEnv = process.env): ImageEventDeps {
  return {
    tokens: new DynamoImageBuildTokens({ table: fromEnv('TABLE_NAME', env) }),
    outputs: new S3ImageBuildOutputs({ bucket: fromEnv('ARTEFACTS_BUCKET', env) }),
    callbacks: imageBuildCallbacks(new SfnTaskCallbacks()),
  };
}

let memo: ImageEventDeps | undefined;

/** The handler's composition, built once per Lambda container. */
export function createImageEventDeps(): ImageEventDeps {
  memo ??= buildImageEventDeps();
  return memo;
}
