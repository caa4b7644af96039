/**
 * One AWS account behind aws-sdk-client-mock, stateful enough for every function's core
 * to run its success and failure paths on the real AWS adapters, and a recorder of every
 * command sent with its input (for the IAM simulation in aws-specs.test.ts). The SDK
 * clients are mocked by class, so the adapters' module-scope clients are covered.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  CreateDistributionConfigurationCommand,
  CreateImageCommand,
  CreateImageRecipeCommand,
  DeleteDistributionConfigurationCommand,
  DeleteImageCommand,
  DeleteImageRecipeCommand,
  GetDistributionConfigurationCommand,
  GetImageCommand,
  GetImagePipelineCommand,
  GetImageRecipeCommand,
  ImagebuilderClient,
  type ImageRecipe,
  ListImageBuildVersionsCommand,
  ListImageRecipesCommand,
} from '@aws-sdk/client-imagebuilder';
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteAliasCommand,
  GetAliasCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  InvokeCommand,
  LambdaClient,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  PublishVersionCommand,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, TransactWriteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import type { SentCommand } from '../../src/adapters/aws/iam-actions.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { awsError } from '../adapters/aws/fixtures.ts';
import { deployedRecipe } from '../helpers/fake-image-builder.ts';

export const SCOPE = { partition: 'aws', region: 'eu-west-1', account: '123456789012' } as const;
const { region, account } = SCOPE;
export const STAGE = 'dev';
export const BUCKET = 'bakery-artefacts';
export const SOURCE_BUCKET = 'bakery-sources';
export const TABLE = 'bakery';
export const STATE_MACHINE_ARN = `arn:aws:states:${region}:${account}:stateMachine:bakery-${STAGE}-bake`;
const IB = `arn:aws:imagebuilder:${region}:${account}`;
export const IMAGE_ARN_PREFIX = `${IB}:image/`;
export const PIPELINE_ARN = `${IB}:image-pipeline/bakery-${STAGE}-node22`;
export const DEPLOYED_RECIPE_ARN = `${IB}:image-recipe/bakery-${STAGE}-node22/1.0.4242`;
export const INFRASTRUCTURE_ARN = `${IB}:infrastructure-configuration/bakery-${STAGE}`;
export const FUNCTION_ROLE_ARN = `arn:aws:iam::${account}:role/bakery-${STAGE}-BakedFunctionRole`;
export const SLACK_TOKEN_PARAM = `/bakery/${STAGE}/slack-bot-token`;
export const SLACK_SECRET_PARAM = `/bakery/${STAGE}/slack-signing-secret`;
export const LAYER_PREFIX = `arn:aws:lambda:${region}:${account}:layer:`;

/** The environment serverless.yml gives the functions, with these names. */
export const ENV: Record<string, string> = {
  ARTEFACTS_BUCKET: BUCKET,
  TABLE_NAME: TABLE,
  IMAGE_PIPELINE_ARN: PIPELINE_ARN,
  FUNCTION_ROLE_ARN,
  SLACK_CHANNEL: 'bakery-approvals',
  SLACK_BOT_TOKEN_PARAM: SLACK_TOKEN_PARAM,
  SLACK_SIGNING_SECRET_PARAM: SLACK_SECRET_PARAM,
  STATE_MACHINE_ARN,
  SOURCE_BUCKET,
  SOURCE_PREFIX: 'bakes/',
  AWS_REGION: region,
  RECIPES_DIR: path.join(PROJECT_ROOT, 'layers'),
};

type Item = Record<string, unknown>;
const keyOf = (key: Item) => `${String(key.pk)}|${String(key.sk)}`;

export const sha256 = (bytes: Uint8Array | string) => createHash('sha256').update(bytes).digest();

/** A Lambda layer or function version as the fake keeps it. */
interface Version {
  version: string;
  codeSha256: string;
  layers: string[];
  environment: Record<string, string>;
  handler: string;
  runtime: string;
}

export class FakeAccount {
  readonly stubs = {
    lambda: mockClient(LambdaClient),
    s3: mockClient(S3Client),
    sfn: mockClient(SFNClient),
    imagebuilder: mockClient(ImagebuilderClient),
    cloudwatch: mockClient(CloudWatchClient),
    ec2: mockClient(EC2Client),
    ssm: mockClient(SSMClient),
    dynamodb: mockClient(DynamoDBDocumentClient),
  };

  /** The stubs by service, as far as recording and resetting them goes. */
  private all(): Array<[SentCommand['service'], Pick<AwsClientStub<LambdaClient>, 'calls' | 'reset' | 'restore'>]> {
    return Object.entries(this.stubs) as unknown as Array<
      [SentCommand['service'], Pick<AwsClientStub<LambdaClient>, 'calls' | 'reset' | 'restore'>]
    >;
  }

  objects = new Map<string, Buffer>();
  items = new Map<string, Item>();
  functions = new Map<
    string,
    { versions: Version[]; aliases: Map<string, { version: string; revision: number; weights: Record<string, number> }> }
  >();
  layers = new Map<string, Array<{ version: number; codeSha256: string; bytes: Buffer }>>();
  recipes = new Map<string, ImageRecipe>();
  images = new Map<string, { arn: string; ami: string; status: string }>();
  /** Invocation results by function name (the payload a baked function answers). */
  answers = new Map<string, unknown>();
  /** Alarms in ALARM (every other alarm is OK). */
  alarming = new Set<string>();
  /** Functions whose alias updates Lambda refuses (a service error). */
  refuseAliasUpdates = new Set<string>();
  /** AMIs with their snapshots and tags (what DescribeImages reports, and IAM sees as resource tags). */
  amis = new Map<string, { snapshots: string[]; tags: Record<string, string> }>();
  /** Image builds by image version ARN (what ListImageBuildVersions reports), with their AMIs and tags. */
  builds = new Map<string, Array<{ arn: string; amis: string[]; tags: Record<string, string> }>>();

  constructor() {
    this.install();
  }

  /** Every command sent since the last reset, with its input, by service. */
  sent(): SentCommand[] {
    return this.all().flatMap(([service, stub]) =>
      stub.calls().map((call) => {
        const command = call.args[0] as { constructor: { name: string }; input: Record<string, unknown> };
        const sent: SentCommand = { service, command: command.constructor.name, input: command.input };
        // Every task token here belongs to an execution of the bake state machine.
        if (/^SendTask/.test(sent.command)) sent.stateMachineArn = STATE_MACHINE_ARN;
        // An AMI's snapshots carry its tags (the distribution tags both).
        const ami =
          sent.command === 'DeregisterImageCommand'
            ? this.amis.get(String(sent.input.ImageId))
            : sent.command === 'DeleteSnapshotCommand'
              ? [...this.amis.values()].find((a) => a.snapshots.includes(String(sent.input.SnapshotId)))
              : undefined;
        if (ami) sent.resourceTags = ami.tags;
        return sent;
      }),
    );
  }

  reset(): void {
    for (const [, stub] of this.all()) stub.reset();
    this.objects.clear();
    this.items.clear();
    this.functions.clear();
    this.layers.clear();
    this.recipes.clear();
    this.images.clear();
    this.answers.clear();
    this.alarming.clear();
    this.refuseAliasUpdates.clear();
    this.amis.clear();
    this.builds.clear();
    this.install();
  }

  restore(): void {
    for (const [, stub] of this.all()) stub.restore();
  }

  putObject(key: string, body: Buffer | string, bucket = BUCKET): void {
    this.objects.set(`${bucket}/${key}`, Buffer.from(body));
  }

  putItem(item: Item): void {
    this.items.set(keyOf(item), structuredClone(item));
  }

  /** A managed function with its published versions and an alias on the last one. */
  addFunction(name: string, versions: Array<Partial<Version> & { version: string }>, alias = 'live'): void {
    const full = versions.map((v) => ({
      codeSha256: 'c=',
      layers: [],
      environment: {},
      handler: 'index.handler',
      runtime: 'provided.al2023',
      ...v,
    }));
    const last = full.at(-1)?.version ?? '1';
    this.functions.set(name, { versions: full, aliases: new Map([[alias, { version: last, revision: 1, weights: {} }]]) });
  }

  addLayerVersion(name: string, bytes: Buffer): string {
    const versions = this.layers.get(name) ?? [];
    const version = versions.length + 1;
    versions.push({ version, codeSha256: sha256(bytes).toString('base64'), bytes });
    this.layers.set(name, versions);
    return `${LAYER_PREFIX}${name}:${version}`;
  }

  /** The presigned download address of a layer version (answered by the global fetch stub). */
  layerUrl = (name: string, version: number) => `https://awslambda-${region}-layers.s3.${region}.amazonaws.com/${name}-${version}.zip`;

  private install(): void {
    const { lambda, s3, sfn, imagebuilder, cloudwatch, ec2, ssm, dynamodb } = this.stubs;
    const fn = (nameOrArn: unknown) => {
      const name = String(nameOrArn).split(':function:').pop()?.split(':')[0] ?? '';
      const found = this.functions.get(name);
      if (!found) throw awsError('ResourceNotFoundException', 404);
      return { name, found };
    };
    const config = (name: string, v: Version) => ({
      FunctionName: name,
      FunctionArn: `arn:aws:lambda:${region}:${account}:function:${name}:${v.version}`,
      Version: v.version,
      CodeSha256: v.codeSha256,
      Handler: v.handler,
      Runtime: v.runtime,
      Layers: v.layers.map((Arn) => ({ Arn })),
      Environment: { Variables: v.environment },
      State: 'Active',
      LastUpdateStatus: 'Successful',
    });

    // ---- Lambda
    lambda.on(GetFunctionCommand).callsFake((i) => {
      const { name, found } = fn(i.FunctionName);
      const latest: Version = {
        version: '$LATEST',
        codeSha256: 'c=',
        layers: [],
        environment: {},
        handler: 'index.handler',
        runtime: 'provided.al2023',
        ...found.versions.at(-1),
      };
      return { Configuration: config(name, { ...latest, version: '$LATEST' }) };
    });
    lambda.on(GetFunctionConfigurationCommand).callsFake((i) => {
      const { name, found } = fn(i.FunctionName);
      const v = found.versions.find((x) => x.version === String(i.Qualifier ?? '$LATEST')) ?? found.versions.at(-1);
      if (!v) throw awsError('ResourceNotFoundException', 404);
      return config(name, v);
    });
    let pending: Partial<Version> = {};
    lambda.on(CreateFunctionCommand).callsFake((i) => {
      this.functions.set(String(i.FunctionName), { versions: [], aliases: new Map() });
      pending = { layers: i.Layers ?? [], environment: i.Environment?.Variables ?? {}, handler: i.Handler, runtime: i.Runtime };
      return { State: 'Pending' };
    });
    lambda.on(UpdateFunctionCodeCommand).resolves({ LastUpdateStatus: 'InProgress' });
    lambda.on(UpdateFunctionConfigurationCommand).callsFake((i) => {
      pending = { layers: i.Layers ?? [], environment: i.Environment?.Variables ?? {}, handler: i.Handler, runtime: i.Runtime };
      return { LastUpdateStatus: 'InProgress' };
    });
    lambda.on(PublishVersionCommand).callsFake((i) => {
      const { name, found } = fn(i.FunctionName);
      const version = String(found.versions.length + 1);
      const v: Version = {
        handler: 'index.handler',
        runtime: 'provided.al2023',
        layers: [],
        environment: {},
        ...pending,
        version,
        codeSha256: String(i.CodeSha256 ?? 'c='),
      };
      found.versions.push(v);
      return config(name, v);
    });
    lambda.on(InvokeCommand).callsFake((i) => {
      const { name } = fn(i.FunctionName);
      return {
        StatusCode: 200,
        ExecutedVersion: String(i.Qualifier),
        Payload: Buffer.from(JSON.stringify(this.answers.get(name) ?? null)),
      };
    });
    const alias = (i: { FunctionName?: string; Name?: string }) => {
      const { found } = fn(i.FunctionName);
      return { found, a: found.aliases.get(String(i.Name)) };
    };
    const aliasOut = (name: string, a: { version: string; revision: number; weights: Record<string, number> }) => ({
      Name: name,
      FunctionVersion: a.version,
      RevisionId: `rev-${a.revision}`,
      RoutingConfig: { AdditionalVersionWeights: a.weights },
    });
    lambda.on(GetAliasCommand).callsFake((i) => {
      const { a } = alias(i);
      if (!a) throw awsError('ResourceNotFoundException', 404);
      return aliasOut(String(i.Name), a);
    });
    lambda.on(CreateAliasCommand).callsFake((i) => {
      const { found, a } = alias(i);
      if (a) throw awsError('ResourceConflictException', 409);
      const created = { version: String(i.FunctionVersion), revision: 1, weights: i.RoutingConfig?.AdditionalVersionWeights ?? {} };
      found.aliases.set(String(i.Name), created);
      return aliasOut(String(i.Name), created);
    });
    lambda.on(UpdateAliasCommand).callsFake((i) => {
      const { a } = alias(i);
      if (!a) throw awsError('ResourceNotFoundException', 404);
      if (this.refuseAliasUpdates.has(String(i.FunctionName))) throw awsError('InvalidParameterValueException', 400);
      if (i.RevisionId && i.RevisionId !== `rev-${a.revision}`) throw awsError('PreconditionFailedException', 412);
      a.version = String(i.FunctionVersion ?? a.version);
      a.weights = i.RoutingConfig?.AdditionalVersionWeights ?? {};
      a.revision++;
      return aliasOut(String(i.Name), a);
    });
    lambda.on(DeleteAliasCommand).callsFake((i) => {
      const { found } = alias(i);
      found.aliases.delete(String(i.Name));
      return {};
    });
    const layerOut = (name: string, v: { version: number; codeSha256: string; bytes: Buffer }) => ({
      LayerArn: `${LAYER_PREFIX}${name}`,
      LayerVersionArn: `${LAYER_PREFIX}${name}:${v.version}`,
      Version: v.version,
      Description: `layer ${name}`,
      CompatibleRuntimes: ['provided.al2023'],
      CompatibleArchitectures: ['x86_64'],
      Content: { CodeSha256: v.codeSha256, CodeSize: v.bytes.length, Location: this.layerUrl(name, v.version) },
      CreatedDate: '2026-11-22T07:30:00.000+0000',
    });
    const layerVersion = (name: string, version: number) => {
      const v = this.layers.get(name)?.find((x) => x.version === version);
      if (!v) throw awsError('ResourceNotFoundException', 404);
      return layerOut(name, v);
    };
    lambda
      .on(GetLayerVersionCommand)
      .callsFake((i) => layerVersion(String(i.LayerName).split(':layer:').pop() ?? '', Number(i.VersionNumber)));
    lambda.on(GetLayerVersionByArnCommand).callsFake((i) => {
      const [, rest = ''] = String(i.Arn).split(':layer:');
      const [name = '', version = '0'] = rest.split(':');
      return layerVersion(name, Number(version));
    });
    lambda.on(ListLayerVersionsCommand).callsFake((i) => ({
      LayerVersions: [...(this.layers.get(String(i.LayerName)) ?? [])].reverse().map((v) => layerOut(String(i.LayerName), v)),
    }));
    lambda.on(PublishLayerVersionCommand).callsFake((i) => {
      const bytes = i.Content?.ZipFile
        ? Buffer.from(i.Content.ZipFile)
        : (this.objects.get(`${i.Content?.S3Bucket}/${i.Content?.S3Key}`) ?? Buffer.alloc(0));
      const arn = this.addLayerVersion(String(i.LayerName), bytes);
      return layerVersion(String(i.LayerName), Number(arn.split(':').pop()));
    });

    // ---- S3
    const object = (bucket: unknown, key: unknown) => {
      const found = this.objects.get(`${String(bucket)}/${String(key)}`);
      if (!found) throw awsError('NoSuchKey', 404);
      return found;
    };
    s3.on(GetObjectCommand).callsFake((i) => {
      const bytes = object(i.Bucket, i.Key);
      return {
        Body: Object.assign(Readable.from([bytes]), {
          transformToString: async () => bytes.toString('utf8'),
          transformToByteArray: async () => new Uint8Array(bytes),
        }),
        ContentLength: bytes.length,
        VersionId: i.VersionId,
        ChecksumSHA256: sha256(bytes).toString('base64'),
        Metadata: { sha256: sha256(bytes).toString('hex') },
      };
    });
    s3.on(HeadObjectCommand).callsFake((i) => {
      const bytes = object(i.Bucket, i.Key);
      return {
        ContentLength: bytes.length,
        ChecksumSHA256: sha256(bytes).toString('base64'),
        ChecksumType: 'FULL_OBJECT',
        Metadata: { sha256: sha256(bytes).toString('hex') },
      };
    });
    s3.on(PutObjectCommand).callsFake(async (i) => {
      const body = i.Body;
      let bytes: Buffer;
      if (typeof body === 'string' || body instanceof Uint8Array) bytes = Buffer.from(body);
      else if (body && typeof (body as AsyncIterable<Buffer>)[Symbol.asyncIterator] === 'function') {
        const chunks: Buffer[] = [];
        for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
        bytes = Buffer.concat(chunks);
      } else bytes = Buffer.alloc(0);
      this.objects.set(`${i.Bucket}/${i.Key}`, bytes);
      return { ETag: '"e"', VersionId: 'v1' };
    });
    s3.on(ListObjectVersionsCommand).callsFake((i) => ({
      Versions: [...this.objects.keys()]
        .filter((k) => k.startsWith(`${i.Bucket}/${i.Prefix ?? ''}`))
        .map((k) => ({
          Key: k.slice(String(i.Bucket).length + 1),
          VersionId: 'v1',
          IsLatest: true,
          LastModified: new Date('2026-11-20T00:00:00Z'),
        })),
      IsTruncated: false,
    }));

    // ---- Step Functions
    sfn.on(StartExecutionCommand).callsFake((i) => ({
      executionArn: `${String(i.stateMachineArn).replace(':stateMachine:', ':execution:')}:${i.name}`,
      startDate: new Date(),
    }));
    sfn.on(SendTaskSuccessCommand).resolves({});
    sfn.on(SendTaskFailureCommand).resolves({});

    // ---- SSM
    ssm.on(GetParameterCommand).callsFake((i) => ({ Parameter: { Name: i.Name, Type: 'SecureString', Value: `secret-of-${i.Name}` } }));

    // ---- CloudWatch
    cloudwatch.on(DescribeAlarmsCommand).callsFake((i) => ({
      MetricAlarms: (i.AlarmNames ?? []).map((AlarmName: string) => ({
        AlarmName,
        StateValue: this.alarming.has(AlarmName) ? 'ALARM' : 'OK',
      })),
      CompositeAlarms: [],
    }));

    // ---- DynamoDB (document commands); conditions as the adapters write them
    const holds = (expression: string | undefined, item: Item | undefined): boolean => {
      if (!expression) return true;
      if (/^attribute_not_exists\(pk\)$/.test(expression)) return item === undefined;
      if (/^attribute_exists\(pk\)/.test(expression)) return item !== undefined;
      return true;
    };
    dynamodb.on(GetCommand).callsFake((i) => ({ Item: structuredClone(this.items.get(keyOf(i.Key as Item))) }));
    dynamodb.on(PutCommand).callsFake((i) => {
      if (!holds(i.ConditionExpression, this.items.get(keyOf(i.Item as Item)))) throw awsError('ConditionalCheckFailedException');
      this.items.set(keyOf(i.Item as Item), structuredClone(i.Item as Item));
      return {};
    });
    dynamodb.on(UpdateCommand).callsFake((i) => {
      const item = this.items.get(keyOf(i.Key as Item));
      if (!item) throw awsError('ConditionalCheckFailedException');
      // Enough of SET for the adapters' updates: `#name = :value` pairs.
      const names = (i.ExpressionAttributeNames ?? {}) as Record<string, string>;
      const values = (i.ExpressionAttributeValues ?? {}) as Item;
      for (const [, name, value] of String(i.UpdateExpression).matchAll(/(#\w+)\s*=\s*(:\w+)/g)) {
        item[names[name as string] ?? String(name)] = structuredClone(values[value as string]);
      }
      return { Attributes: structuredClone(item) };
    });
    dynamodb.on(QueryCommand).callsFake((i) => {
      const pk = (i.ExpressionAttributeValues as Item)[':pk'];
      return { Items: [...this.items.values()].filter((x) => x.pk === pk).map((x) => structuredClone(x)) };
    });
    dynamodb.on(TransactWriteCommand).callsFake((i) => {
      for (const t of i.TransactItems ?? []) {
        if (t.Put) {
          if (!holds(t.Put.ConditionExpression, this.items.get(keyOf(t.Put.Item as Item)))) throw awsError('TransactionCanceledException');
        }
      }
      for (const t of i.TransactItems ?? []) if (t.Put) this.items.set(keyOf(t.Put.Item as Item), structuredClone(t.Put.Item as Item));
      return {};
    });

    // ---- Image Builder (the deployed pipeline and recipe; recipe versions and images per bake key)
    // The deployed recipe as the Image Builder adapter tests know it (same account, region and stage).
    this.recipes.set(DEPLOYED_RECIPE_ARN, deployedRecipe());
    imagebuilder.on(GetImagePipelineCommand).callsFake(() => ({
      imagePipeline: { arn: PIPELINE_ARN, imageRecipeArn: DEPLOYED_RECIPE_ARN, infrastructureConfigurationArn: INFRASTRUCTURE_ARN },
    }));
    imagebuilder.on(GetImageRecipeCommand).callsFake((i) => {
      const recipe = this.recipes.get(String(i.imageRecipeArn));
      if (!recipe) throw awsError('ResourceNotFoundException', 404);
      return { imageRecipe: structuredClone(recipe) };
    });
    imagebuilder.on(CreateImageRecipeCommand).callsFake((i) => {
      const arn = `${IB}:image-recipe/${String(i.name).toLowerCase()}/${i.semanticVersion}`;
      if (this.recipes.has(arn)) throw awsError('ResourceAlreadyExistsException');
      this.recipes.set(arn, {
        arn,
        name: i.name,
        version: i.semanticVersion,
        parentImage: i.parentImage,
        components: structuredClone(i.components),
        tags: { ...i.tags },
      });
      return { imageRecipeArn: arn };
    });
    imagebuilder.on(CreateDistributionConfigurationCommand).callsFake((i) => ({
      distributionConfigurationArn: `${IB}:distribution-configuration/${String(i.name).toLowerCase()}`,
    }));
    imagebuilder
      .on(GetDistributionConfigurationCommand)
      .callsFake((i) => ({ distributionConfiguration: { arn: i.distributionConfigurationArn } }));
    imagebuilder.on(CreateImageCommand).callsFake((i) => {
      const recipe = this.recipes.get(String(i.imageRecipeArn));
      if (!recipe) throw awsError('ResourceNotFoundException', 404);
      const arn = `${IB}:image/${String(recipe.name).toLowerCase()}/${recipe.version}/${this.images.size + 1}`;
      const ami = `ami-${(this.images.size + 1).toString(16).padStart(17, '0')}`;
      this.images.set(arn, { arn, ami, status: 'BUILDING' });
      return { imageBuildVersionArn: arn };
    });
    imagebuilder.on(GetImageCommand).callsFake((i) => {
      const arn = String(i.imageBuildVersionArn);
      if (arn.includes(':aws:image/')) return { image: { arn: arn.replace('x.x.x', '2025.6.0/1'), version: '2025.6.0' } };
      const image = this.images.get(arn);
      if (!image) throw awsError('ResourceNotFoundException', 404);
      return {
        image: { arn, state: { status: image.status }, outputResources: { amis: [{ region, accountId: account, image: image.ami }] } },
      };
    });
    imagebuilder.on(ListImageRecipesCommand).callsFake((i) => {
      const name = i.filters?.[0]?.values?.[0];
      return {
        imageRecipeSummaryList: [...this.recipes.values()]
          .filter((r) => r.name === name)
          .map((r) => ({ arn: r.arn, name: r.name, tags: r.tags ?? {} })),
      };
    });
    imagebuilder.on(ListImageBuildVersionsCommand).callsFake((i) => ({
      imageSummaryList: (this.builds.get(String(i.imageVersionArn)) ?? []).map((b) => ({
        arn: b.arn,
        tags: b.tags,
        outputResources: { amis: b.amis.map((image) => ({ region, accountId: account, image })) },
      })),
    }));
    imagebuilder.on(DeleteImageCommand).resolves({});
    imagebuilder.on(DeleteImageRecipeCommand).resolves({});
    imagebuilder.on(DeleteDistributionConfigurationCommand).resolves({});
    ec2.on(DescribeImagesCommand).callsFake((i) => ({
      Images: (i.ImageIds ?? []).flatMap((id: string) => {
        const ami = this.amis.get(id);
        return ami
          ? [
              {
                ImageId: id,
                Tags: Object.entries(ami.tags).map(([Key, Value]) => ({ Key, Value })),
                BlockDeviceMappings: ami.snapshots.map((SnapshotId) => ({ DeviceName: '/dev/xvda', Ebs: { SnapshotId } })),
              },
            ]
          : [];
      }),
    }));
    ec2.on(DeregisterImageCommand).resolves({});
    ec2.on(DeleteSnapshotCommand).resolves({});
  }
}
