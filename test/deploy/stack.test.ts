/**
 * The stack as deploy settings shape it: packaged with osls (test/helpers/package.ts) with
 * the defaults (the run's shared packaging) and with a stage and build network of an
 * organisation's account, and refused at package time for settings that would deploy a
 * stack that never works.
 */
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyedRecipeName } from '../../src/adapters/aws/image-recipes.ts';
import { type PackagedService, PackagingFailed, packageService, sharedDefaultPackage } from '../helpers/package.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };
interface Template {
  Resources: Record<string, { Type: string; Properties: JsonObject }>;
}

const ACCOUNT = '123456789012';
const REGION = 'eu-west-1';
const PSEUDO = { Partition: 'aws', Region: REGION, AccountId: ACCOUNT };
const NETWORK = {
  subnet: 'subnet-0123456789abcdef0',
  groups: ['sg-0123456789abcdef0', 'sg-0fedcba9876543210'],
  types: ['c7i.xlarge', 'm7i.xlarge'],
};

/** The template with `${AWS::…}` pseudo parameters of `Fn::Sub` strings filled in (the only ones these checks meet). */
function render(node: Json): Json {
  if (Array.isArray(node)) return node.map(render);
  if (node === null || typeof node !== 'object') return node;
  if (typeof node['Fn::Sub'] === 'string') {
    return node['Fn::Sub'].replace(/\$\{AWS::(Partition|Region|AccountId)\}/g, (_, name: keyof typeof PSEUDO) => PSEUDO[name]);
  }
  return Object.fromEntries(Object.entries(node).map(([key, value]) => [key, render(value)]));
}

const packaged: PackagedService[] = [];
let defaults: Template;
let organisation: Template;

/** Packaging that must fail: its output. */
async function refused(args: string[]): Promise<string> {
  const error = await packageService(args).then(
    async (service) => {
      await service.remove();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error, `osls package ${args.join(' ')} succeeded`).toBeInstanceOf(PackagingFailed);
  return (error as PackagingFailed).output;
}

beforeAll(async () => {
  // One after the other: each packaging bundles every function (the machine's cores are shared).
  // The default one is the run's shared packaging, made by this file or another deploy file.
  packaged.push(await sharedDefaultPackage());
  packaged.push(
    await packageService([
      '--stage',
      'prod',
      `--param=buildSubnetId=${NETWORK.subnet}`,
      `--param=buildSecurityGroupIds=${NETWORK.groups.join(', ')}`,
      `--param=buildInstanceTypes=${NETWORK.types.join(',')}`,
    ]),
  );
  [defaults, organisation] = packaged.map((p) => render(p.template as Json) as unknown as Template) as [Template, Template];
}, 600_000);

afterAll(async () => {
  await Promise.all(packaged.map((p) => p.remove()));
});

const resourceOf = (template: Template, id: string, type: string) => {
  const found = template.Resources[id];
  expect(found?.Type, id).toBe(type);
  return (found as { Properties: JsonObject }).Properties;
};

describe('the alarm topic', () => {
  const KEY_ARN = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

  /** What the key's policy decides for `principal` doing `action` on the key (AWS's evaluation logic). */
  async function keyPolicyDecides(template: Template, principal: string, action: string, identityPolicy?: Json) {
    const topic = resourceOf(template, 'AlarmTopic', 'AWS::SNS::Topic');
    const keyRef = topic.KmsMasterKeyId as { Ref?: string };
    expect(keyRef, 'the topic is encrypted with a key of the stack, not an AWS managed alias').toEqual({ Ref: expect.any(String) });
    const key = resourceOf(template, keyRef.Ref as string, 'AWS::KMS::Key');
    const result = await runSimulation(
      {
        request: { principal, action, resource: { resource: KEY_ARN, accountId: ACCOUNT }, contextVariables: {} },
        identityPolicies: identityPolicy ? [{ name: 'identity', policy: identityPolicy }] : [],
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        resourcePolicy: key.KeyPolicy,
      },
      {},
    );
    if (result.resultType !== 'single') throw new Error(`simulation did not run: ${JSON.stringify(result)}`);
    return result.overallResult;
  }

  it('is encrypted with a customer managed key that CloudWatch may use to publish alarms', async () => {
    for (const template of [defaults, organisation]) {
      expect(await keyPolicyDecides(template, 'cloudwatch.amazonaws.com', 'kms:GenerateDataKey')).toBe('Allowed');
      expect(await keyPolicyDecides(template, 'cloudwatch.amazonaws.com', 'kms:Decrypt')).toBe('Allowed');
    }
  });

  it('lets CloudWatch do nothing else with the key, and leaves its administration to the account', async () => {
    expect(await keyPolicyDecides(defaults, 'cloudwatch.amazonaws.com', 'kms:ScheduleKeyDeletion')).toBe('ImplicitlyDenied');
    expect(await keyPolicyDecides(defaults, 'events.amazonaws.com', 'kms:Decrypt')).toBe('ImplicitlyDenied');
    const admin = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] };
    expect(await keyPolicyDecides(defaults, `arn:aws:iam::${ACCOUNT}:role/admin`, 'kms:ScheduleKeyDeletion', admin)).toBe('Allowed');
    expect(resourceOf(defaults, 'AlarmTopicKey', 'AWS::KMS::Key').EnableKeyRotation).toBe(true);
  });
});

describe('the image build network', () => {
  it('uses the default VPC and several instance types by default', () => {
    const infra = resourceOf(defaults, 'ImageBuilderInfrastructure', 'AWS::ImageBuilder::InfrastructureConfiguration');
    expect(infra.SubnetId).toEqual({ Ref: 'AWS::NoValue' });
    expect(infra.SecurityGroupIds).toEqual({ Ref: 'AWS::NoValue' });
    expect(infra.InstanceTypes).toEqual(['c7i.large', 'c6i.large', 'm7i.large']);
  });

  it('puts the build in the given subnet with the given security groups and instance types', () => {
    const infra = resourceOf(organisation, 'ImageBuilderInfrastructure', 'AWS::ImageBuilder::InfrastructureConfiguration');
    expect(infra).toMatchObject({ SubnetId: NETWORK.subnet, SecurityGroupIds: NETWORK.groups, InstanceTypes: NETWORK.types });
    // Every image build runs there: the pipeline and the per-key builds use this configuration.
    expect(resourceOf(organisation, 'Node22ImagePipeline', 'AWS::ImageBuilder::ImagePipeline').InfrastructureConfigurationArn).toEqual({
      Ref: 'ImageBuilderInfrastructure',
    });
  });

  it('refuses a subnet without security groups, groups without a subnet, and malformed ids, naming the param', async () => {
    expect(await refused([`--param=buildSubnetId=${NETWORK.subnet}`])).toMatch(/buildSubnetId is set but buildSecurityGroupIds is empty/);
    expect(await refused([`--param=buildSecurityGroupIds=${NETWORK.groups[0]}`])).toMatch(
      /buildSecurityGroupIds is set but buildSubnetId is empty/,
    );
    expect(await refused(['--param=buildSubnetId=my-subnet', `--param=buildSecurityGroupIds=${NETWORK.groups[0]}`])).toMatch(
      /buildSubnetId "my-subnet" is not a subnet id/,
    );
    expect(await refused(['--param=buildInstanceTypes=large'])).toMatch(/buildInstanceTypes has "large", not an instance type/);
  }, 120_000);
});

describe('stage names', () => {
  /** The ARN Image Builder gives a build of `recipeName` (its ARNs use the lower-cased name). */
  const imageArn = (recipeName: string) => `arn:aws:imagebuilder:${REGION}:${ACCOUNT}:image/${recipeName.toLowerCase()}/1.0.5/1`;

  it("match the rule that resumes a bake to the images of the stage's recipes", () => {
    for (const template of [defaults, organisation]) {
      const recipe = resourceOf(template, 'Node22ImageRecipe', 'AWS::ImageBuilder::ImageRecipe').Name as string;
      const rule = Object.values(template.Resources).find(
        (r) => r.Type === 'AWS::Events::Rule' && JSON.stringify(r.Properties.Targets).includes('ImageBuildEventsLambdaFunction'),
      );
      const pattern = rule?.Properties.EventPattern as { resources?: Array<{ prefix: string }> } | undefined;
      const prefixes = (pattern?.resources ?? []).map((r) => r.prefix);
      for (const name of [recipe, keyedRecipeName(recipe)]) {
        expect(
          prefixes.some((prefix) => imageArn(name).startsWith(prefix)),
          `${imageArn(name)} matches none of ${prefixes}`,
        ).toBe(true);
      }
    }
  });

  it('refuses a stage with capitals at package time, naming it and the lower-case fix, and writes nothing', async () => {
    const output = await refused(['--stage', 'Prod']);
    expect(output).toContain('stage "Prod" is not allowed');
    expect(output).toContain('--stage prod');
    expect(output).not.toMatch(/Service packaged/);
  }, 120_000);
});
