import path from 'node:path';
import { loadSharedConfigFiles } from '@smithy/core/config';
import { readSettings, type SettingName } from '../adapters/aws/config.ts';
import { ConfigError } from '../errors.ts';

/**
 * The deployed stack's settings the CLI's AWS commands read (status, history, verify, prune,
 * rollback, drift, approve, reject), with the stack output each comes from. IMAGE_PIPELINE_ARN
 * is optional: without it `bakery prune` leaves the image builds alone.
 */
const STACK_SETTINGS: ReadonlyArray<{ name: SettingName; output: string }> = [
  { name: 'TABLE_NAME', output: 'TableName' },
  { name: 'ARTEFACTS_BUCKET', output: 'ArtefactsBucketName' },
];

/** A profile entry that gives the SDK credentials (keys, an assumed role, SSO, a process, web identity). */
const CREDENTIAL_KEYS = ['aws_access_key_id', 'role_arn', 'credential_process', 'sso_session', 'sso_start_url', 'web_identity_token_file'];

/**
 * What `--backend aws` needs before any call: a region, credentials and the stack's settings.
 * Every missing one is named at once (`ConfigError`, exit 2), so a first run does not end in
 * the SDK's "Region is missing" stack trace one setting at a time.
 *
 * Why checked here rather than by resolving the SDK's credential chain: the chain ends at the
 * EC2 instance metadata service, a network call (a second's timeout off EC2). The sources
 * that need no network are checked as the SDK reads them (the environment, then the profile in
 * the shared config and credentials files, parsed by the SDK's own loader); an instance profile
 * alone is taken when `AWS_EC2_METADATA_DISABLED=false` says to use it.
 */
export async function checkAwsBackend(env: NodeJS.ProcessEnv): Promise<void> {
  const problems: string[] = [];
  const home = env.HOME ?? env.USERPROFILE ?? '';
  const credentialsFile = env.AWS_SHARED_CREDENTIALS_FILE ?? path.join(home, '.aws', 'credentials');
  const configFile = env.AWS_CONFIG_FILE ?? path.join(home, '.aws', 'config');
  const files = await loadSharedConfigFiles({ filepath: credentialsFile, configFilepath: configFile, ignoreCache: true });
  const profileName = env.AWS_PROFILE ?? env.AWS_DEFAULT_PROFILE ?? 'default';
  const profile = { ...files.configFile[profileName], ...files.credentialsFile[profileName] };
  const named = env.AWS_PROFILE !== undefined || env.AWS_DEFAULT_PROFILE !== undefined;
  if (named && !files.configFile[profileName] && !files.credentialsFile[profileName]) {
    problems.push(`AWS profile "${profileName}" (AWS_PROFILE) is in neither ${configFile} nor ${credentialsFile}`);
  }

  if (!env.AWS_REGION && !env.AWS_DEFAULT_REGION && !profile.region) {
    problems.push(
      `AWS region: set AWS_REGION (e.g. AWS_REGION=eu-west-1, the stack's region) or \`region\` in profile "${profileName}" of ${configFile}`,
    );
  }

  const fromEnv =
    (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) ||
    (env.AWS_WEB_IDENTITY_TOKEN_FILE && env.AWS_ROLE_ARN) ||
    env.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI ||
    env.AWS_CONTAINER_CREDENTIALS_FULL_URI;
  const fromProfile = CREDENTIAL_KEYS.some((key) => profile[key]);
  const fromInstance = env.AWS_EC2_METADATA_DISABLED === 'false';
  if (!fromEnv && !fromProfile && !fromInstance) {
    problems.push(
      `AWS credentials: none in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE, a container's credentials) nor in profile "${profileName}" of ${configFile} or ${credentialsFile}: run \`aws configure\` or \`aws sso login\`, or set AWS_PROFILE; on EC2 with an instance profile only, set AWS_EC2_METADATA_DISABLED=false`,
    );
  }

  for (const { name, output } of STACK_SETTINGS) {
    try {
      readSettings([name], env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      problems.push(`${name} is not set (the stack output ${output})`);
    }
  }

  if (problems.length) {
    throw new ConfigError(`missing or invalid configuration of the AWS backend:\n  - ${problems.join('\n  - ')}`, {
      hint: 'The stack outputs: aws cloudformation describe-stacks --stack-name bakery-<stage> --query "Stacks[0].Outputs" (see docs/cli.md#the-aws-backend).',
    });
  }
}
