/**
 * Image Builder, DynamoDB and S3 as far as the AWS image builder and the image build
 * event handler use them, behind aws-sdk-client-mock: stateful, so a test sees what a
 * real account would hold (recipe versions that never change and answer
 * ResourceAlreadyExistsException, images idempotent by client token, conditional writes).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  CreateDistributionConfigurationCommand,
  CreateImageCommand,
  CreateImageRecipeCommand,
  GetImageCommand,
  GetImagePipelineCommand,
  GetImageRecipeCommand,
  ImagebuilderClient,
  type ImageRecipe,
} from '@aws-sdk/client-imagebuilder';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { type AwsClientStub, mockClient } from 'aws-sdk-client-mock';
import { awsError } from '../adapters/aws/fixtures.ts';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
const PREFIX = `arn:aws:imagebuilder:${REGION}:${ACCOUNT}`;
export const PIPELINE_ARN = `${PREFIX}:image-pipeline/bakery-dev-node22`;
export const DEPLOYED_RECIPE_ARN = `${PREFIX}:image-recipe/bakery-dev-node22/1.0.4242`;
export const INFRASTRUCTURE_ARN = `${PREFIX}:infrastructure-configuration/bakery-dev`;
export const FILES_COMPONENT = `${PREFIX}:component/bakery-dev-node22-recipe-files/1.0.11/1`;
export const RUNTIME_COMPONENT = `${PREFIX}:component/bakery-dev-node22-runtime/1.0.22/1`;
export const BUCKET = 'bakery-artefacts';
export const TABLE = 'bakery';

/** The recipe serverless.yml deploys for layers/node22 (its parameters as recipe.yml pins them). */
export function deployedRecipe(): ImageRecipe {
  return {
    arn: DEPLOYED_RECIPE_ARN,
    name: 'bakery-dev-node22',
    version: '1.0.4242',
    parentImage: `arn:aws:imagebuilder:${REGION}:aws:image/amazon-linux-2023-x86/x.x.x`,
    components: [
      { componentArn: FILES_COMPONENT },
      {
        componentArn: RUNTIME_COMPONENT,
        parameters: [
          { name: 'NodeVersion', value: ['22.23.3'] },
          { name: 'NodeSha256', value: ['fde6a4bf8d0562f7751d1a2d6cb9b417c4cfe107bbcb0aa3e9a24e125e348f48'] },
          { name: 'NodeSource', value: ['https://nodejs.org/dist/v22.23.3/node-v22.23.3-linux-x64.tar.xz'] },
          { name: 'RuntimeFiles', value: ['/opt/bakery/runtime-files'] },
          { name: 'RuntimeUpload', value: [`s3://${BUCKET}/builds/images/`] },
        ],
      },
    ],
    blockDeviceMappings: [{ deviceName: '/dev/xvda', ebs: { volumeSize: 8, volumeType: 'gp3' } }],
  };
}

type Item = Record<string, unknown>;

export interface FakeAws {
  ib: ImagebuilderClient;
  db: DynamoDBDocumentClient;
  s3: S3Client;
  ibMock: AwsClientStub<ImagebuilderClient>;
  dbMock: AwsClientStub<DynamoDBDocumentClient>;
  s3Mock: AwsClientStub<S3Client>;
  recipes: Map<string, ImageRecipe>;
  images: Map<string, { arn: string; recipeArn: string; ami: string; tags: Record<string, string>; distribution: string }>;
  distributions: Map<string, Item>;
  items: Map<string, Item>;
  /** S3 objects by key: what HeadObject reports. */
  objects: Map<string, { sha256Hex: string; size: number }>;
  reset(): void;
}

const keyOf = (key: Item) => `${String(key.pk)}|${String(key.sk)}`;

/** The few condition expressions the adapters write, evaluated as DynamoDB would. */
function holds(expression: string | undefined, item: Item | undefined, values: Item): boolean {
  if (!expression) return true;
  switch (expression) {
    case 'attribute_not_exists(pk)':
      return item === undefined;
    case 'attribute_exists(pk)':
      return item !== undefined;
    case 'attribute_not_exists(pk) OR imageArn = :replaces':
      return item === undefined || item.imageArn === values[':replaces'];
    case 'attribute_exists(pk) AND attribute_not_exists(#done)':
      return item !== undefined && item.done === undefined;
    case '#done.#claim = :claim':
      return (item?.done as Item | undefined)?.claim === values[':claim'];
    default:
      throw new Error(`the fake table does not know the condition ${expression}`);
  }
}

/** A fresh fake account with the deployed pipeline and recipe. `runtimeSha256` is what each build's test phase uploads. */
export function fakeAws(options: { runtimeSha256?: string } = {}): FakeAws {
  const ib = new ImagebuilderClient({ region: REGION });
  const db = DynamoDBDocumentClient.from(new DynamoDBClient({ region: REGION }));
  const s3 = new S3Client({ region: REGION });
  const ibMock = mockClient(ib);
  const dbMock = mockClient(db);
  const s3Mock = mockClient(s3);
  const recipes = new Map<string, ImageRecipe>();
  const images: FakeAws['images'] = new Map();
  const distributions = new Map<string, Item>();
  const items = new Map<string, Item>();
  const objects: FakeAws['objects'] = new Map();
  let builds = 0;

  const install = () => {
    recipes.clear();
    images.clear();
    distributions.clear();
    items.clear();
    objects.clear();
    builds = 0;
    recipes.set(DEPLOYED_RECIPE_ARN, deployedRecipe());
    ibMock.on(GetImagePipelineCommand).callsFake((input) => {
      if (input.imagePipelineArn !== PIPELINE_ARN) throw awsError('ResourceNotFoundException');
      return {
        imagePipeline: {
          arn: PIPELINE_ARN,
          imageRecipeArn: DEPLOYED_RECIPE_ARN,
          infrastructureConfigurationArn: INFRASTRUCTURE_ARN,
          imageTestsConfiguration: { imageTestsEnabled: true, timeoutMinutes: 60 },
        },
      };
    });
    ibMock.on(GetImageRecipeCommand).callsFake((input) => {
      const recipe = recipes.get(input.imageRecipeArn ?? '');
      if (!recipe) throw awsError('ResourceNotFoundException');
      return { imageRecipe: structuredClone(recipe) };
    });
    ibMock.on(CreateImageRecipeCommand).callsFake((input) => {
      const arn = `${PREFIX}:image-recipe/${String(input.name).toLowerCase()}/${input.semanticVersion}`;
      if (recipes.has(arn)) throw awsError('ResourceAlreadyExistsException');
      recipes.set(arn, {
        arn,
        name: input.name,
        version: input.semanticVersion,
        parentImage: input.parentImage,
        components: structuredClone(input.components),
        tags: { ...input.tags },
      });
      return { imageRecipeArn: arn, clientToken: input.clientToken };
    });
    ibMock.on(CreateDistributionConfigurationCommand).callsFake((input) => {
      const name = String(input.name);
      if (distributions.has(name)) throw awsError('ResourceAlreadyExistsException');
      const arn = `${PREFIX}:distribution-configuration/${name.toLowerCase()}`;
      distributions.set(name, { arn, ...structuredClone(input) });
      return { distributionConfigurationArn: arn };
    });
    ibMock.on(CreateImageCommand).callsFake((input) => {
      const token = String(input.clientToken);
      const seen = images.get(token);
      if (seen) return { imageBuildVersionArn: seen.arn };
      const recipe = recipes.get(input.imageRecipeArn ?? '');
      if (!recipe) throw awsError('ResourceNotFoundException');
      builds++;
      const arn = `${PREFIX}:image/${String(recipe.name).toLowerCase()}/${recipe.version}/${builds}`;
      const ami = `ami-${builds.toString(16).padStart(17, '0')}`;
      images.set(token, {
        arn,
        recipeArn: recipe.arn ?? '',
        ami,
        tags: { ...input.tags },
        distribution: input.distributionConfigurationArn ?? '',
      });
      // The test phase uploads the tested tree under the AMI (see the runtime component).
      objects.set(`builds/images/${ami}/runtime.zip`, { sha256Hex: options.runtimeSha256 ?? 'ab'.repeat(32), size: 40_000_000 });
      return { imageBuildVersionArn: arn };
    });
    ibMock.on(GetImageCommand).callsFake((input) => {
      const image = [...images.values()].find((i) => i.arn === input.imageBuildVersionArn);
      if (!image) throw awsError('ResourceNotFoundException');
      return {
        image: {
          arn: image.arn,
          state: { status: 'AVAILABLE' },
          outputResources: { amis: [{ region: REGION, accountId: ACCOUNT, image: image.ami }] },
        },
      };
    });

    dbMock.on(GetCommand).callsFake((input) => ({ Item: structuredClone(items.get(keyOf(input.Key as Item))) }));
    dbMock.on(PutCommand).callsFake((input) => {
      const item = input.Item as Item;
      if (!holds(input.ConditionExpression, items.get(keyOf(item)), (input.ExpressionAttributeValues ?? {}) as Item)) {
        throw awsError('ConditionalCheckFailedException');
      }
      items.set(keyOf(item), structuredClone(item));
      return {};
    });
    dbMock.on(UpdateCommand).callsFake((input) => {
      const key = keyOf(input.Key as Item);
      const item = items.get(key);
      const values = (input.ExpressionAttributeValues ?? {}) as Item;
      if (!holds(input.ConditionExpression, item, values)) throw awsError('ConditionalCheckFailedException');
      if (!item) throw new Error(`the fake table has no ${key}`);
      if (input.UpdateExpression === 'SET #done = :done') item.done = structuredClone(values[':done']);
      else if (input.UpdateExpression === 'REMOVE #done') delete item.done;
      else if (input.UpdateExpression === 'ADD #users :bake') {
        item.users = new Set([...((item.users as Set<string> | undefined) ?? []), ...(values[':bake'] as Set<string>)]);
      } else throw new Error(`the fake table does not know the update ${input.UpdateExpression}`);
      return {};
    });

    s3Mock.on(HeadObjectCommand).callsFake((input) => {
      const object = input.Bucket === BUCKET ? objects.get(String(input.Key)) : undefined;
      if (!object) throw awsError('NotFound', 404);
      return {
        ContentLength: object.size,
        ChecksumSHA256: Buffer.from(object.sha256Hex, 'hex').toString('base64'),
        ChecksumType: 'FULL_OBJECT',
        Metadata: { sha256: object.sha256Hex },
      };
    });
  };
  install();
  return {
    ib,
    db,
    s3,
    ibMock,
    dbMock,
    s3Mock,
    recipes,
    images,
    distributions,
    items,
    objects,
    reset: () => {
      ibMock.reset();
      dbMock.reset();
      s3Mock.reset();
      install();
    },
  };
}
