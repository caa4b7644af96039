import path from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';

/**
 * Configuration of the AWS adapters, from the Lambda environment (set in serverless.yml).
 * Each adapter reads only the settings it uses, when it first uses them, so a Lambda
 * that never posts to Slack needs no Slack settings.
 */
const SETTINGS = {
  /** Bucket for artefacts, manifests, reports and uploads over the direct-upload limit. */
  ARTEFACTS_BUCKET: z.string().min(1),
  /** The single DynamoDB table (keys `pk`, `sk`; TTL attribute `ttl`). */
  TABLE_NAME: z.string().min(1),
  /** The EC2 Image Builder pipeline that builds runtime images. */
  IMAGE_PIPELINE_ARN: z.string().startsWith('arn:', 'expected an ARN'),
  /** Execution role of the functions bakery creates (existing functions keep theirs). */
  FUNCTION_ROLE_ARN: z.string().startsWith('arn:', 'expected an ARN'),
  SLACK_CHANNEL: z.string().min(1),
  /** Name of the SSM SecureString parameter holding the Slack bot token (never the token itself). */
  SLACK_BOT_TOKEN_PARAM: z.string().min(1),
  /** Name of the SSM SecureString parameter holding the Slack app's signing secret (never the secret itself). */
  SLACK_SIGNING_SECRET_PARAM: z.string().startsWith('/', 'expected an SSM parameter name starting with "/"'),
  /** The bake state machine the S3 trigger and the scheduled rebuild start executions of. */
  STATE_MACHINE_ARN: z.string().startsWith('arn:', 'expected an ARN'),
  /** The versioned bucket bake sources are uploaded to, and the prefix under which a `.zip` is one. */
  SOURCE_BUCKET: z.string().min(1),
  SOURCE_PREFIX: z.string(),
} as const;

export type SettingName = keyof typeof SETTINGS;
export type AwsSettings = { [K in SettingName]: z.output<(typeof SETTINGS)[K]> };

/** Read `names` from `env`, failing once with every missing or malformed one listed. */
export function readSettings<K extends SettingName>(names: readonly K[], env: NodeJS.ProcessEnv = process.env): Pick<AwsSettings, K> {
  const out: Partial<Pick<AwsSettings, K>> = {};
  const problems: string[] = [];
  for (const name of names) {
    const raw = env[name];
    // serverless.yml renders an unresolved variable as an empty string: treat it as missing.
    if (raw === undefined || raw === '') {
      problems.push(`${name} is not set`);
      continue;
    }
    const parsed = SETTINGS[name].safeParse(raw);
    if (parsed.success) out[name] = parsed.data as Pick<AwsSettings, K>[K];
    else problems.push(`${name}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (problems.length) {
    throw new ConfigError(`missing or invalid configuration: ${problems.join(', ')}`, {
      hint: 'On a Lambda they come from serverless.yml (provider.environment); for `bakery --backend aws`, export them from the deployed stack.',
    });
  }
  return out as Pick<AwsSettings, K>;
}

/** A setting as an adapter takes it: a value (tests) or a thunk read on first use (Lambda). */
export type Setting = string | (() => string);

export const resolveSetting = (setting: Setting): string => (typeof setting === 'function' ? setting() : setting);

/** A thunk that reads one setting from the environment when called. */
export const fromEnv =
  (name: SettingName, env: NodeJS.ProcessEnv = process.env): (() => string) =>
  () =>
    readSettings([name], env)[name];

/** `RECIPES_DIR`, or the `layers/` directory packaged with the function. */
export function recipesDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.RECIPES_DIR) return path.resolve(env.RECIPES_DIR);
  if (env.LAMBDA_TASK_ROOT) return path.join(env.LAMBDA_TASK_ROOT, 'layers');
  throw new ConfigError('missing configuration: RECIPES_DIR is not set and there is no LAMBDA_TASK_ROOT to default to', {
    hint: 'Set RECIPES_DIR to the directory holding the runtime recipes.',
  });
}
