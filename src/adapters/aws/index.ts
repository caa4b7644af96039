import { randomBytes } from 'node:crypto';
import type { SlackCallbackDeps } from '../../cores/slack-callback.ts';
import type { RecipeCatalog } from '../../ports/sources.ts';
import { DirectoryRecipeCatalog } from '../../recipes/recipe.ts';
import type { Deps } from '../../tasks.ts';
import { CloudWatchAlarmMonitor } from './alarms.ts';
import { SfnTaskCallbacks } from './callbacks.ts';
import { fromEnv, recipesDir } from './config.ts';
import { DynamoApprovalStore, DynamoLedger } from './dynamo.ts';
import { LambdaFunctionRegistry } from './functions.ts';
import { AwsImageBuilder } from './image-builder.ts';
import { AwsImageInventory } from './image-inventory.ts';
import { LambdaInvoker } from './invoker.ts';
import { LambdaLayerRegistry } from './layers.ts';
import { AwsPatchResolver } from './patches.ts';
import { S3ArtefactStore, S3SourceReader } from './s3.ts';
import { SlackNotifier, signingSecretFrom } from './slack.ts';

/** The recipes packaged with the function; the directory is resolved on first use. */
function lazyRecipes(env: NodeJS.ProcessEnv): RecipeCatalog {
  let catalog: DirectoryRecipeCatalog | undefined;
  const get = () => {
    catalog ??= new DirectoryRecipeCatalog(recipesDir(env));
    return catalog;
  };
  return { find: (name) => get().find(name), list: () => get().list() };
}

/**
 * Every port on its AWS adapter. Building them is cheap and reads no configuration:
 * each setting is read from the environment when an adapter first needs it, so a
 * Lambda is only configured with what its task uses.
 */
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
    notifier: new SlackNotifier({ channel: fromEnv('SLACK_CHANNEL', env), tokenParameter: fromEnv('SLACK_BOT_TOKEN_PARAM', env) }),
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

let memo: Deps | undefined;

/** The AWS composition, built once per Lambda container and shared by its invocations. */
export function createAwsDeps(): Deps {
  memo ??= buildAwsDeps();
  return memo;
}

/**
 * The ports of the Slack interactivity endpoint (not a state-machine task): the approval
 * table, Step Functions for the task token, Slack for the message, and the signing
 * secret from SSM. Settings are read on first use, as for the tasks.
 */
export function buildSlackCallbackDeps(env: NodeJS.ProcessEnv = process.env): SlackCallbackDeps {
  const slack = new SlackNotifier({ channel: fromEnv('SLACK_CHANNEL', env), tokenParameter: fromEnv('SLACK_BOT_TOKEN_PARAM', env) });
  return {
    approvals: new DynamoApprovalStore({ table: fromEnv('TABLE_NAME', env) }),
    callbacks: new SfnTaskCallbacks(),
    notifier: slack,
    replies: slack,
    clock: { now: () => new Date() },
    signingSecret: signingSecretFrom(fromEnv('SLACK_SIGNING_SECRET_PARAM', env)),
  };
}

let slackMemo: SlackCallbackDeps | undefined;

/** The Slack endpoint's composition, built once per Lambda container. */
export function createSlackCallbackDeps(): SlackCallbackDeps {
  slackMemo ??= buildSlackCallbackDeps();
  return slackMemo;
}
