import {
  CreateDistributionConfigurationCommand,
  CreateImageCommand,
  CreateImageRecipeCommand,
  type CreateImageRecipeCommandInput,
  GetImageCommand,
  GetImagePipelineCommand,
  GetImageRecipeCommand,
  type ImagebuilderClient,
  type ImagePipeline,
  type ImageRecipe,
} from '@aws-sdk/client-imagebuilder';
import { HeadObjectCommand, type HeadObjectCommandOutput, type S3Client } from '@aws-sdk/client-s3';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { AlreadyDecidedError, BakeryError, RecipeError } from '../../errors.ts';
import type { TaskCallbacks } from '../../ports/callbacks.ts';
import type {
  BuildCache,
  ImageBuilder,
  ImageBuildOutputs,
  ImageBuildStart,
  ImageBuildTicket,
  ImageBuildTokens,
} from '../../ports/image-build.ts';
import type { Clock } from '../../ports/system.ts';
import type { ArtefactRef, BuiltImage, Json } from '../../state.ts';
import { DynamoBuildCache } from './build-cache.ts';
import { SfnTaskCallbacks } from './callbacks.ts';
import { documentClient, imageBuilderClient, s3Client } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';
import { clientToken, keyedRecipeInput, recipeDifferences, splitRecipeArn } from './image-recipes.ts';
import { parseS3Uri, s3Uri } from './s3.ts';

/** The BuildImage task's TimeoutSeconds in the ASL: after that the token is useless. */
export const TOKEN_LIFETIME_SECONDS = 10_800;

/**
 * The idempotency token of a bake's build: the same bake id always gives the same token,
 * so a retried BuildImage task gets the build it already started instead of a second one.
 * Image Builder takes at most 36 characters: a UUID-shaped slice of a SHA-256.
 */
export function buildClientToken(bakeId: string): string {
  return clientToken(`bakery/build/${bakeId}`);
}

export const imageBuildTokenKey = (imageBuildVersionArn: string) => ({ pk: `IMAGEBUILD#${imageBuildVersionArn}`, sk: 'TOKEN' });

/** The tags that name a build's bake on its image, AMIs and snapshots (IAM scopes their deletion by them). */
export const BAKE_ID_TAG = 'bakery:bakeId';
export const BAKE_KEY_TAG = 'bakery:bakeKey';
/** Names the stack (its image pipeline) an AMI or snapshot was built by. */
export const STACK_TAG = 'bakery:stack';

/** `arn:…:image-pipeline/<name>` → the ARN prefix (`arn:…:imagebuilder:<region>:<account>`), region and name. */
function splitPipelineArn(arn: string): { prefix: string; region: string; name: string } {
  const m = /^(arn:[\w-]+:imagebuilder:([\w-]+):\d{12}):image-pipeline\/([^/]+)$/.exec(arn);
  if (!m?.[1] || !m[2] || !m[3]) throw new BakeryError(`IMAGE_PIPELINE_ARN is not an image pipeline ARN: ${arn}`);
  return { prefix: m[1], region: m[2], name: m[3] };
}

/** The distribution configuration of one bake's build: the AMI in the stack's region, tagged with bake id and key. */
export function distributionName(pipelineName: string, bakeId: string): string {
  return `${pipelineName}-${clientToken(`bakery/distribution/${bakeId}`).slice(0, 8)}`;
}

/**
 * Runs the runtime image build of a bake on EC2 Image Builder, at most once per bake key:
 *
 * 1. The build cache (by bake key) first, unless the bake asks to `rebuild`: a recorded
 *    build whose runtime zip is still in S3 with its SHA-256 resumes the task at once
 *    (SendTaskSuccess with the recorded runtime), with no Image Builder call at all.
 * 2. Otherwise an image recipe version of the key (see image-recipes.ts), created once
 *    and never changed: the deployed recipe with the bake's resolved parent image and
 *    component parameters. A version that exists with other content is a RecipeError.
 * 3. CreateImage of that recipe on the pipeline's infrastructure configuration, with a
 *    distribution configuration that tags the AMI with the bake id and key, and a client
 *    token from the bake id, so a retried task gets the build it already started.
 * 4. The task token is parked in DynamoDB under the build's ARN, where the handler of the
 *    build's state-change event finds it to resume (or fail) the waiting execution and to
 *    record the build in the cache.
 */
export class AwsImageBuilder implements ImageBuilder {
  private readonly client: ImagebuilderClient;
  private readonly db: DynamoDBDocumentClient;
  private readonly s3: S3Client;
  private readonly pipelineArn: Setting;
  private readonly table: Setting;
  private readonly clock: Clock;
  private readonly cache: BuildCache;
  private readonly callbacks: TaskCallbacks;

  constructor(options: {
    pipelineArn: Setting;
    table: Setting;
    clock: Clock;
    client?: ImagebuilderClient;
    db?: DynamoDBDocumentClient;
    s3?: S3Client;
    cache?: BuildCache;
    callbacks?: TaskCallbacks;
  }) {
    this.client = options.client ?? imageBuilderClient;
    this.db = options.db ?? documentClient;
    this.s3 = options.s3 ?? s3Client;
    this.pipelineArn = options.pipelineArn;
    this.table = options.table;
    this.clock = options.clock;
    this.cache = options.cache ?? new DynamoBuildCache({ table: options.table, client: this.db, clock: options.clock });
    this.callbacks = options.callbacks ?? new SfnTaskCallbacks();
  }

  async start(request: ImageBuildStart): Promise<{ buildId: string }> {
    const cached = await this.cache.get(request.bakeKey);
    let replaces: string | null = null;
    if (cached) {
      const check = await headRuntime(this.s3, cached.runtime.uri);
      if (!request.rebuild && check.found && check.ref.sha256Hex === cached.runtime.sha256Hex) {
        // Step Functions waits for the token, so a hit completes it like a finished build does.
        const hit: BuiltImage = { ...cached, cacheHit: true };
        // Noted first, so prune keeps the build while this bake runs.
        await this.cache.use(request.bakeKey, request.bakeId);
        await this.callbacks.succeed(request.taskToken, JSON.parse(JSON.stringify(hit)) as Json);
        return { buildId: cached.imageArn ?? cached.runtime.uri };
      }
      // Rebuilt, or its runtime is gone or changed: the new build takes its place.
      replaces = cached.imageArn ?? 'none';
    }

    const pipelineArn = resolveSetting(this.pipelineArn);
    const pipeline = await this.pipeline(pipelineArn);
    const recipeArn = await this.recipeOf(request, pipeline);
    const distributionArn = await this.distribution(request, pipelineArn);
    const out = await callAws(`CreateImage ${recipeArn}`, () =>
      this.client.send(
        new CreateImageCommand({
          imageRecipeArn: recipeArn,
          infrastructureConfigurationArn: pipeline.infrastructureConfigurationArn,
          distributionConfigurationArn: distributionArn,
          ...(pipeline.imageTestsConfiguration ? { imageTestsConfiguration: pipeline.imageTestsConfiguration } : {}),
          ...(pipeline.enhancedImageMetadataEnabled === undefined
            ? {}
            : { enhancedImageMetadataEnabled: pipeline.enhancedImageMetadataEnabled }),
          clientToken: buildClientToken(request.bakeId),
          // Lets a person (or the event handler) tie the image back to its bake.
          tags: { [BAKE_ID_TAG]: request.bakeId, [BAKE_KEY_TAG]: request.bakeKey },
        }),
      ),
    );
    const arn = out.imageBuildVersionArn;
    if (!arn) throw new BakeryError(`CreateImage ${recipeArn} returned no imageBuildVersionArn`);
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
            imageRecipeArn: recipeArn,
            // For the build record the completion sends: what the build was asked to build.
            documents: request.recipe.documents,
            parameters: request.recipe.parameters,
            replaces,
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

  private async pipeline(pipelineArn: string): Promise<ImagePipeline> {
    const out = await callAws(`GetImagePipeline ${pipelineArn}`, () =>
      this.client.send(new GetImagePipelineCommand({ imagePipelineArn: pipelineArn })),
    );
    const pipeline = out.imagePipeline;
    if (!pipeline?.imageRecipeArn || !pipeline.infrastructureConfigurationArn) {
      throw new BakeryError(`image pipeline ${pipelineArn} has no image recipe or infrastructure configuration`);
    }
    return pipeline;
  }

  private async getRecipe(arn: string): Promise<ImageRecipe | undefined> {
    try {
      const out = await callAws(`GetImageRecipe ${arn}`, () => this.client.send(new GetImageRecipeCommand({ imageRecipeArn: arn })));
      return out.imageRecipe;
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  /** The recipe version of the bake key: looked up, else created; reused only when it holds exactly these inputs. */
  private async recipeOf(request: ImageBuildStart, pipeline: ImagePipeline): Promise<string> {
    const deployedArn = pipeline.imageRecipeArn ?? '';
    const deployed = await this.getRecipe(deployedArn);
    if (!deployed) throw new BakeryError(`the image pipeline's recipe ${deployedArn} does not exist`);
    // The pipeline's components are those of one recipe: another recipe's bake cannot be built on them.
    const deployedName = splitRecipeArn(deployedArn).name;
    if (!deployedName.endsWith(`-${request.recipe.name}`)) {
      throw new RecipeError(`the image pipeline builds recipe ${deployedName}, not ${request.recipe.name}`, {
        hint: 'Only the recipe deployed with the stack can be built in AWS.',
      });
    }
    const wanted = keyedRecipeInput({ ...deployed, arn: deployed.arn ?? deployedArn }, request.recipe, request.bakeKey);
    const { prefix } = splitRecipeArn(deployedArn);
    const arn = `${prefix}/${(wanted.name ?? '').toLowerCase()}/${wanted.semanticVersion}`;
    const existing = await this.getRecipe(arn);
    if (existing) return this.reuse(arn, existing, wanted);
    try {
      const out = await callAws(`CreateImageRecipe ${arn}`, () => this.client.send(new CreateImageRecipeCommand(wanted)));
      return out.imageRecipeArn ?? arn;
    } catch (error) {
      // Another bake of the same key created it in between.
      if (!hasName(error, 'ResourceAlreadyExistsException')) throw error;
      const raced = await this.getRecipe(arn);
      if (!raced) throw error;
      return this.reuse(arn, raced, wanted);
    }
  }

  private reuse(arn: string, existing: ImageRecipe, wanted: CreateImageRecipeCommandInput): string {
    const differences = recipeDifferences(existing, wanted);
    if (differences.length) {
      throw new RecipeError(
        `image recipe ${arn} exists with other inputs than bake key ${wanted.tags?.[BAKE_KEY_TAG]} needs: ${differences.join('; ')}`,
        {
          hint: "Recipe versions are never changed. Delete that recipe version if it is not bakery's own, or bake again.",
        },
      );
    }
    return arn;
  }

  /** One distribution configuration per bake: it is where Image Builder takes the AMI's tags from. */
  private async distribution(request: ImageBuildStart, pipelineArn: string): Promise<string> {
    const { prefix, region, name: pipelineName } = splitPipelineArn(pipelineArn);
    const name = distributionName(pipelineName, request.bakeId);
    const tags = { [BAKE_ID_TAG]: request.bakeId, [BAKE_KEY_TAG]: request.bakeKey, [STACK_TAG]: pipelineName };
    try {
      const out = await callAws(`CreateDistributionConfiguration ${name}`, () =>
        this.client.send(
          new CreateDistributionConfigurationCommand({
            name,
            description: `bakery: the AMI of bake ${request.bakeId}, tagged with its bake id and key`,
            distributions: [
              {
                region,
                amiDistributionConfiguration: {
                  name: `${pipelineName}-{{ imagebuilder:buildDate }}`,
                  description: `bakery bake ${request.bakeId}, bake key ${request.bakeKey}`,
                  amiTags: tags,
                },
              },
            ],
            tags,
            clientToken: clientToken(`bakery/distribution/${request.bakeId}`),
          }),
        ),
      );
      if (out.distributionConfigurationArn) return out.distributionConfigurationArn;
    } catch (error) {
      // A retried task: the bake's own configuration, made by the first attempt.
      if (!hasName(error, 'ResourceAlreadyExistsException')) throw error;
    }
    return `${prefix}:distribution-configuration/${name.toLowerCase()}`;
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
      replaces: typeof item.replaces === 'string' ? item.replaces : null,
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
    const found = await headRuntime(this.s3, s3Uri(resolveSetting(this.bucket), runtimeKey(ami)));
    return found.found ? { ...found, details: { ami } } : found;
  }
}

/**
 * The runtime zip at `uri` with its full-object SHA-256 and size, or why there is none:
 * S3's own checksum, verified on upload, when the upload was a single PUT with a
 * SHA-256; else the hex SHA-256 the component stores as metadata. Throws only on
 * failures worth retrying.
 */
export async function headRuntime(
  s3: S3Client,
  uri: string,
): Promise<{ found: true; ref: ArtefactRef } | { found: false; reason: string }> {
  const { bucket, key } = parseS3Uri(uri);
  let head: HeadObjectCommandOutput;
  try {
    head = await callAws(`HeadObject ${uri}`, () => s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ChecksumMode: 'ENABLED' })));
  } catch (error) {
    if (!hasName(error, ...MISSING)) throw error;
    return {
      found: false,
      reason: `its runtime tree is not at ${uri} (${(error as Error).name}: the test phase uploads it there, so it did not run or did not upload; or this function may not read it)`,
    };
  }
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
  return { found: true, ref: { uri, sha256Hex, size: head.ContentLength } };
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
