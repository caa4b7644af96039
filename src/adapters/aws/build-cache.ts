import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BakeryError } from '../../errors.ts';
import type { BuildCache } from '../../ports/image-build.ts';
import type { BuiltImage } from '../../state.ts';
import { documentClient } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { callAws, hasName } from './errors.ts';

/** The item of a bake key's build: `BUILDCACHE#<bakeKey>` / `BUILT`. */
export const buildCacheKey = (bakeKey: string) => ({ pk: `BUILDCACHE#${bakeKey}`, sk: 'BUILT' });

/**
 * The AWS build cache: one DynamoDB item per bake key, holding the BuiltImage that the
 * image build event handler recorded once the build's runtime zip was found and its
 * SHA-256 known. Written once, conditionally: a second build of the same key (two bakes
 * at once) leaves the first one's record; only the build a ticket says it replaces (a
 * forced rebuild, or a cached runtime found gone) may overwrite it.
 */
export class DynamoBuildCache implements BuildCache {
  private readonly db: DynamoDBDocumentClient;
  private readonly table: Setting;
  private readonly clock: { now(): Date };

  constructor(options: { table: Setting; client?: DynamoDBDocumentClient; clock?: { now(): Date } }) {
    this.db = options.client ?? documentClient;
    this.table = options.table;
    this.clock = options.clock ?? { now: () => new Date() };
  }

  async get(bakeKey: string): Promise<BuiltImage | undefined> {
    const out = await callAws(`GetItem build cache ${bakeKey}`, () =>
      this.db.send(new GetCommand({ TableName: resolveSetting(this.table), Key: buildCacheKey(bakeKey), ConsistentRead: true })),
    );
    const image = out.Item?.image as BuiltImage | undefined;
    if (!image) return undefined;
    if (image.bakeKey !== bakeKey || typeof image.runtime?.uri !== 'string' || typeof image.runtime.sha256Hex !== 'string') {
      throw new BakeryError(`the build cache item of bake key ${bakeKey} does not hold a build of that key`);
    }
    return image;
  }

  async record(image: BuiltImage, replaces: string | null): Promise<boolean> {
    const stored: BuiltImage = { ...image, cacheHit: false };
    try {
      await callAws(`PutItem build cache ${image.bakeKey}`, () =>
        this.db.send(
          new PutCommand({
            TableName: resolveSetting(this.table),
            Item: {
              ...buildCacheKey(image.bakeKey),
              imageArn: image.imageArn ?? 'none',
              image: stored,
              recordedAt: this.clock.now().toISOString(),
            },
            ConditionExpression: replaces === null ? 'attribute_not_exists(pk)' : 'attribute_not_exists(pk) OR imageArn = :replaces',
            ...(replaces === null ? {} : { ExpressionAttributeValues: { ':replaces': replaces } }),
          }),
        ),
      );
      return true;
    } catch (error) {
      if (hasName(error, 'ConditionalCheckFailedException')) return false;
      throw error;
    }
  }

  async use(bakeKey: string, bakeId: string): Promise<void> {
    await callAws(`UpdateItem build cache ${bakeKey}`, () =>
      this.db.send(
        new UpdateCommand({
          TableName: resolveSetting(this.table),
          Key: buildCacheKey(bakeKey),
          // A string set: each bake once, however often its task is retried.
          UpdateExpression: 'ADD #users :bake',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#users': 'users' },
          ExpressionAttributeValues: { ':bake': new Set([bakeId]) },
        }),
      ),
    ).catch((error: unknown) => {
      // The record went in between (a rebuild replaced it): nothing to note on.
      if (!hasName(error, 'ConditionalCheckFailedException')) throw error;
    });
  }

  /** The build recorded under `bakeKey` and the bakes that took it from the cache. */
  async users(bakeKey: string): Promise<{ imageArn: string | null; bakeIds: string[] }> {
    const out = await callAws(`GetItem build cache ${bakeKey}`, () =>
      this.db.send(new GetCommand({ TableName: resolveSetting(this.table), Key: buildCacheKey(bakeKey), ConsistentRead: true })),
    );
    const users = out.Item?.users;
    const imageArn = out.Item?.imageArn;
    return {
      imageArn: typeof imageArn === 'string' ? imageArn : null,
      bakeIds: users instanceof Set ? [...users].map(String).sort() : [],
    };
  }
}
