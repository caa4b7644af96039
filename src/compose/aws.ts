/**
 * The AWS composition root: every serverless function key (serverless.yml) gets its
 * ports on their AWS adapters from one function here, and only from here. Building is
 * cheap and reads no configuration: each setting is read from the environment when an
 * adapter first needs it, so a Lambda is configured with only what its function uses.
 * Each composition is built once per Lambda container and shared by its invocations.
 *
 * Loaded only where AWS is the backend (the Lambdas, `bakery --backend aws`): the local
 * CLI never imports this module, so it never loads the AWS SDK.
 */
import { randomBytes } from 'node:crypto';
import { CloudWatchAlarmMonitor } from '../adapters/aws/alarms.ts';
import { DynamoBuildCache } from '../adapters/aws/build-cache.ts';
import { SfnTaskCallbacks } from '../adapters/aws/callbacks.ts';
import {
  cloudWatchClient,
  documentClient,
  ec2Client,
  imageBuilderClient,
  lambdaClient,
  s3Client,
  sfnClient,
} from '../adapters/aws/clients.ts';
import { fromEnv, recipesDir } from '../adapters/aws/config.ts';
import { DynamoApprovalStore, DynamoLedger } from '../adapters/aws/dynamo.ts';
import { LambdaFunctionRegistry } from '../adapters/aws/functions.ts';
import { AwsImageBuilder, DynamoImageBuildTokens, imageBuildCallbacks, S3ImageBuildOutputs } from '../adapters/aws/image-builder.ts';
import { AwsImageInventory } from '../adapters/aws/image-inventory.ts';
import { LambdaInvoker } from '../adapters/aws/invoker.ts';
import { LambdaLayerRegistry } from '../adapters/aws/layers.ts';
import { AwsPatchResolver } from '../adapters/aws/patches.ts';
import { S3ArtefactStore, S3SourceReader } from '../adapters/aws/s3.ts';
import { SlackNotifier, signingSecretFrom } from '../adapters/aws/slack.ts';
import { S3SourceCatalog, SfnBakeStarter } from '../adapters/aws/triggers.ts';
import { tracer } from '../observability.ts';
import type { RecipeCatalog } from '../ports/sources.ts';
import { DirectoryRecipeCatalog } from '../recipes/recipe.ts';
import type { TaskName } from '../tasks.ts';
import type { Deps, DriftCheckDeps, ImageEventDeps, ScheduledRebakeDeps, SlackCallbackDeps, StartBakeDeps, TriggerDeps } from './deps.ts';

export type { Deps, DriftCheckDeps, ImageEventDeps, ScheduledRebakeDeps, SlackCallbackDeps, StartBakeDeps, TriggerDeps };

/** The recipes packaged with the function; the directory is resolved on first use. */
function lazyRecipes(env: NodeJS.ProcessEnv): RecipeCatalog {
  let catalog: DirectoryRecipeCatalog | undefined;
  const get = () => {
    catalog ??= new DirectoryRecipeCatalog(recipesDir(env));
    return catalog;
  };
  return { find: (name) => get().find(name), list: () => get().list() };
}

const slackNotifier = (env: NodeJS.ProcessEnv) =>
  new SlackNotifier({ channel: fromEnv('SLACK_CHANNEL', env), tokenParameter: fromEnv('SLACK_BOT_TOKEN_PARAM', env) });

/** Every task port on its AWS adapter (the state-machine tasks, the drift check, `bakery --backend aws`). */
export function buildAwsDeps(env: NodeJS.ProcessEnv = process.env): Deps {
  const bucket = fromEnv('ARTEFACTS_BUCKET', env);
  const table = fromEnv('TABLE_NAME', env);
  const clock = { now: () => new Date() };
  const recipes = lazyRecipes(env);
  const pipelineArn = fromEnv('IMAGE_PIPELINE_ARN', env);
  const callbacks = new SfnTaskCallbacks();
  return {
    sources: new S3SourceReader(),
    recipes,
    artefacts: new S3ArtefactStore({ bucket }),
    // A recipe version per bake key on the deployed components; a cached key is not built again.
    imageBuilder: new AwsImageBuilder({ pipelineArn, table, clock, callbacks }),
    layers: new LambdaLayerRegistry({ bucket }),
    functions: new LambdaFunctionRegistry({ bucket, role: fromEnv('FUNCTION_ROLE_ARN', env) }),
    invoker: new LambdaInvoker(),
    approvals: new DynamoApprovalStore({ table }),
    notifier: slackNotifier(env),
    callbacks,
    ledger: new DynamoLedger({ table }),
    alarms: new CloudWatchAlarmMonitor(),
    // Base images are looked up in the pipeline's own region and partition.
    patches: new AwsPatchResolver({ regionArn: pipelineArn }),
    clock,
    ids: { random: () => randomBytes(8).toString('hex') },
    // The image side of `bakery prune` needs the pipeline; without IMAGE_PIPELINE_ARN prune skips it.
    ...(env.IMAGE_PIPELINE_ARN ? { images: new AwsImageInventory({ pipelineArn, table }) } : {}),
  };
}

/**
 * The ports of the Slack interactivity endpoint (not a state-machine task): the approval
 * table, Step Functions for the task token, Slack for the message, and the signing
 * secret from SSM.
 */
export function buildSlackCallbackDeps(env: NodeJS.ProcessEnv = process.env): SlackCallbackDeps {
  const slack = slackNotifier(env);
  return {
    approvals: new DynamoApprovalStore({ table: fromEnv('TABLE_NAME', env) }),
    callbacks: new SfnTaskCallbacks(),
    notifier: slack,
    replies: slack,
    clock: { now: () => new Date() },
    signingSecret: signingSecretFrom(fromEnv('SLACK_SIGNING_SECRET_PARAM', env)),
  };
}

/** The ports of the S3 trigger and the scheduled rebuild. */
export function buildTriggerDeps(env: NodeJS.ProcessEnv = process.env): TriggerDeps {
  const clock = { now: () => new Date() };
  return {
    starter: new SfnBakeStarter({ stateMachineArn: fromEnv('STATE_MACHINE_ARN', env), clock }),
    catalog: new S3SourceCatalog(),
    clock,
    source: { bucket: fromEnv('SOURCE_BUCKET', env), prefix: fromEnv('SOURCE_PREFIX', env) },
  };
}

/** The ports of the image build event handler. */
export function buildImageEventDeps(env: NodeJS.ProcessEnv = process.env): ImageEventDeps {
  const table = fromEnv('TABLE_NAME', env);
  return {
    tokens: new DynamoImageBuildTokens({ table }),
    outputs: new S3ImageBuildOutputs({ bucket: fromEnv('ARTEFACTS_BUCKET', env) }),
    callbacks: imageBuildCallbacks(new SfnTaskCallbacks()),
    cache: new DynamoBuildCache({ table }),
  };
}

/**
 * X-Ray subsegments for every call of the shared SDK clients (the adapters' defaults),
 * added once per container; Tracer leaves the clients untouched outside Lambda.
 */
let traced = false;
export function traceSdkClients(): void {
  if (traced) return;
  traced = true;
  for (const client of [lambdaClient, s3Client, sfnClient, imageBuilderClient, cloudWatchClient, ec2Client, documentClient]) {
    tracer.captureAWSv3Client(client);
  }
}

/** `build` on first call, the same value after: one composition per Lambda container, its SDK clients traced. */
function once<T>(build: () => T): () => T {
  let built: T | undefined;
  return () => {
    traceSdkClients();
    built ??= build();
    return built;
  };
}

const tasks = once(() => buildAwsDeps());
const triggers = once(() => buildTriggerDeps());

/** What each serverless function key is given: every task the task ports, the other functions their own. */
export interface Composition extends Record<TaskName, () => Deps> {
  startBake: () => StartBakeDeps;
  scheduledRebake: () => ScheduledRebakeDeps;
  imageBuildEvents: () => ImageEventDeps;
  driftCheck: () => DriftCheckDeps;
  slackCallback: () => SlackCallbackDeps;
}

/** A serverless function key (serverless.yml `functions:`). */
export type FunctionKey = keyof Composition;

/** The dependencies of every serverless function key on the AWS adapters: what `functions/<name>/handler.ts` is given. */
export const aws: Composition = {
  resolveBake: tasks,
  buildImage: tasks,
  publishLayer: tasks,
  publishVersion: tasks,
  validate: tasks,
  requestApproval: tasks,
  release: tasks,
  shiftTraffic: tasks,
  undoRelease: tasks,
  recordSuccess: tasks,
  recordFailure: tasks,
  startBake: triggers,
  scheduledRebake: triggers,
  imageBuildEvents: once(() => buildImageEventDeps()),
  driftCheck: tasks,
  slackCallback: once(() => buildSlackCallbackDeps()),
};
