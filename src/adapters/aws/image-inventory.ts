import { DeleteSnapshotCommand, DeregisterImageCommand, DescribeImagesCommand, type EC2Client } from '@aws-sdk/client-ec2';
import {
  DeleteDistributionConfigurationCommand,
  DeleteImageCommand,
  DeleteImageRecipeCommand,
  GetImagePipelineCommand,
  type ImagebuilderClient,
  type ImageSummary,
  ListImageBuildVersionsCommand,
  ListImageRecipesCommand,
} from '@aws-sdk/client-imagebuilder';
import { BakeryError } from '../../errors.ts';
import type { BuiltImageResource, ImageInventory } from '../../ports/image-build.ts';
import { DynamoBuildCache } from './build-cache.ts';
import { ec2Client, imageBuilderClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';
import { BAKE_ID_TAG, BAKE_KEY_TAG, distributionName, STACK_TAG } from './image-builder.ts';
import { keyedRecipeName, splitRecipeArn } from './image-recipes.ts';

const GONE = ['ResourceNotFoundException', 'InvalidAMIID.NotFound', 'InvalidAMIID.Unavailable', 'InvalidSnapshot.NotFound'];

/**
 * What bakery built with Image Builder: the images of the deployed recipe and of the
 * per-key recipe versions, their AMIs (EC2) and snapshots, and the per-key recipe
 * versions. Deleting an image deregisters its AMIs and deletes their snapshots only when
 * they carry this stack's `bakery:stack` tag (IAM allows nothing else), then its
 * distribution configuration, then the image (Image Builder leaves AMIs behind otherwise).
 */
export class AwsImageInventory implements ImageInventory {
  private readonly client: ImagebuilderClient;
  private readonly ec2: EC2Client;
  private readonly pipelineArn: Setting;
  private readonly cache: DynamoBuildCache;

  constructor(options: { pipelineArn: Setting; table: Setting; client?: ImagebuilderClient; ec2?: EC2Client; cache?: DynamoBuildCache }) {
    this.client = options.client ?? imageBuilderClient;
    this.ec2 = options.ec2 ?? ec2Client;
    this.pipelineArn = options.pipelineArn;
    this.cache = options.cache ?? new DynamoBuildCache({ table: options.table });
  }

  /** The deployed recipe's name and the name of the per-key recipes, from the pipeline. */
  private async names(): Promise<{ deployed: string; keyed: string; stack: string }> {
    const arn = resolveSetting(this.pipelineArn);
    const out = await callAws(`GetImagePipeline ${arn}`, () => this.client.send(new GetImagePipelineCommand({ imagePipelineArn: arn })));
    const recipeArn = out.imagePipeline?.imageRecipeArn;
    if (!recipeArn) throw new BakeryError(`image pipeline ${arn} has no image recipe`);
    const deployed = splitRecipeArn(recipeArn).name;
    return { deployed, keyed: keyedRecipeName(deployed), stack: arn.slice(arn.lastIndexOf('/') + 1) };
  }

  private async recipeVersions(name: string): Promise<Array<{ arn: string; tags: Record<string, string> }>> {
    const out: Array<{ arn: string; tags: Record<string, string> }> = [];
    let nextToken: string | undefined;
    do {
      const page = await callAws(`ListImageRecipes ${name}`, () =>
        this.client.send(new ListImageRecipesCommand({ owner: 'Self', filters: [{ name: 'name', values: [name] }], nextToken })),
      );
      for (const r of page.imageRecipeSummaryList ?? []) if (r.arn && r.name === name) out.push({ arn: r.arn, tags: r.tags ?? {} });
      nextToken = page.nextToken;
    } while (nextToken);
    return out;
  }

  private async builds(imageVersionArn: string): Promise<ImageSummary[]> {
    const out: ImageSummary[] = [];
    let nextToken: string | undefined;
    do {
      const page = await callAws(`ListImageBuildVersions ${imageVersionArn}`, () =>
        this.client.send(new ListImageBuildVersionsCommand({ imageVersionArn, nextToken })),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return { imageSummaryList: [], nextToken: undefined };
        throw error;
      });
      out.push(...(page.imageSummaryList ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    return out;
  }

  async recipes(): Promise<Array<{ arn: string; bakeKey: string | null }>> {
    const { keyed } = await this.names();
    return (await this.recipeVersions(keyed)).map((r) => ({ arn: r.arn, bakeKey: r.tags[BAKE_KEY_TAG] ?? null }));
  }

  async images(): Promise<BuiltImageResource[]> {
    const { deployed, keyed, stack } = await this.names();
    const recipes = [...(await this.recipeVersions(deployed)), ...(await this.recipeVersions(keyed))];
    const out: BuiltImageResource[] = [];
    for (const recipe of recipes) {
      const { prefix, name, version } = splitRecipeArn(recipe.arn);
      const imageVersionArn = `${prefix.replace(/:image-recipe$/, ':image')}/${name.toLowerCase()}/${version}`;
      for (const build of await this.builds(imageVersionArn)) {
        if (!build.arn) continue;
        const amiIds = (build.outputResources?.amis ?? []).flatMap((a) => (a.image ? [a.image] : []));
        const amis: BuiltImageResource['amis'] = [];
        if (amiIds.length) {
          const described = await callAws(`DescribeImages ${amiIds.join(' ')}`, () =>
            this.ec2.send(new DescribeImagesCommand({ ImageIds: amiIds })),
          ).catch((error: unknown) => {
            if (hasName(error, ...GONE)) return { Images: [] };
            throw error;
          });
          for (const ami of described.Images ?? []) {
            if (!ami.ImageId) continue;
            const tags = Object.fromEntries((ami.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
            amis.push({
              id: ami.ImageId,
              snapshots: (ami.BlockDeviceMappings ?? []).flatMap((m) => (m.Ebs?.SnapshotId ? [m.Ebs.SnapshotId] : [])),
              tagged: tags[STACK_TAG] === stack,
            });
          }
        }
        const tags = build.tags ?? {};
        out.push({
          arn: build.arn,
          recipeArn: recipe.arn,
          bakeId: tags[BAKE_ID_TAG] ?? null,
          bakeKey: tags[BAKE_KEY_TAG] ?? null,
          amis,
          // Each bake's own configuration is named after the pipeline and the bake.
          distributionArn: tags[BAKE_ID_TAG]
            ? `${prefix.replace(/:image-recipe$/, '')}:distribution-configuration/${distributionName(stack, tags[BAKE_ID_TAG]).toLowerCase()}`
            : null,
        });
      }
    }
    return out;
  }

  cacheUsers(bakeKey: string): Promise<{ imageArn: string | null; bakeIds: string[] }> {
    return this.cache.users(bakeKey);
  }

  async deleteImage(image: BuiltImageResource): Promise<void> {
    for (const ami of image.amis) {
      if (!ami.tagged) throw new BakeryError(`AMI ${ami.id} of ${image.arn} does not carry bakery's tags: left alone`);
      await this.ignoreGone(`DeregisterImage ${ami.id}`, () => this.ec2.send(new DeregisterImageCommand({ ImageId: ami.id })));
      for (const snapshot of ami.snapshots) {
        await this.ignoreGone(`DeleteSnapshot ${snapshot}`, () => this.ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot })));
      }
    }
    await this.ignoreGone(`DeleteImage ${image.arn}`, () => this.client.send(new DeleteImageCommand({ imageBuildVersionArn: image.arn })));
    // Only the bake's own configurations (named after the pipeline, one per bake).
    const { stack } = await this.names();
    if (image.distributionArn?.includes(`:distribution-configuration/${stack.toLowerCase()}-`)) {
      const arn = image.distributionArn;
      await this.ignoreGone(`DeleteDistributionConfiguration ${arn}`, () =>
        this.client.send(new DeleteDistributionConfigurationCommand({ distributionConfigurationArn: arn })),
      ).catch((error: unknown) => {
        // Another build of the same bake (a rebuild) still uses it.
        if (!hasName(error, 'ResourceDependencyException')) throw error;
      });
    }
  }

  async deleteRecipe(arn: string): Promise<void> {
    await this.ignoreGone(`DeleteImageRecipe ${arn}`, () => this.client.send(new DeleteImageRecipeCommand({ imageRecipeArn: arn })));
  }

  private async ignoreGone(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await callAws(what, call);
    } catch (error) {
      if (!hasName(error, ...GONE)) throw error;
    }
  }
}
