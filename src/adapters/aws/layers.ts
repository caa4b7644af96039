import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import {
  type Architecture,
  DeleteLayerVersionCommand,
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  type GetLayerVersionResponse,
  type LambdaClient,
  type LayerVersionContentInput,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  type Runtime,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { BakeryError } from '../../errors.ts';
import type { LayerPublishInput, LayerRegistry, LayerVersionDetails } from '../../ports/lambda.ts';
import type { LayerVersionInfo } from '../../state.ts';
import { lambdaClient, s3Client } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { downloadUrl, type Fetch } from './download.ts';
import { callAws, hasName } from './errors.ts';
import { s3Uri } from './s3.ts';

/**
 * The largest zip sent inline (function code and layers alike); anything bigger is
 * uploaded to S3 first. Lambda documents 50 MB for a direct upload, but the zip travels
 * base64-encoded inside a JSON request whose limit is about 70 MB: a zip of exactly
 * 50 MiB becomes 69.9 MB of base64 before the rest of the request, and is refused. 49 MiB
 * leaves room for the envelope (#13.3).
 */
export const DIRECT_UPLOAD_MAX_BYTES = 49 * 1024 * 1024;

/** How many of a layer's newest versions are checked for a matching CodeSha256. */
export const REUSE_SEARCH_LIMIT = 50;

const LAYER_VERSION_ARN = /^arn:aws[\w-]*:lambda:[\w-]+:\d{12}:layer:([A-Za-z0-9_-]+):(\d+)$/;

function parseArn(arn: string): { name: string; version: number } | undefined {
  const match = LAYER_VERSION_ARN.exec(arn);
  return match ? { name: match[1] as string, version: Number(match[2]) } : undefined;
}

function infoOf(name: string, out: GetLayerVersionResponse, what: string): LayerVersionInfo {
  const { LayerVersionArn, Version, Content } = out;
  if (!LayerVersionArn || Version === undefined || !Content?.CodeSha256 || Content.CodeSize === undefined) {
    throw new BakeryError(`${what} returned an incomplete layer version (${LayerVersionArn ?? 'no ARN'})`);
  }
  return { name, arn: LayerVersionArn, version: Version, codeSha256: Content.CodeSha256, size: Content.CodeSize };
}

/** Layer versions in Lambda; big zips go through the artefacts bucket. */
export class LambdaLayerRegistry implements LayerRegistry {
  private readonly lambda: LambdaClient;
  private readonly s3: S3Client;
  private readonly bucket: Setting;
  private readonly searchLimit: number;
  private readonly fetch: Fetch;

  constructor(options: { bucket: Setting; lambda?: LambdaClient; s3?: S3Client; searchLimit?: number; fetch?: Fetch }) {
    this.lambda = options.lambda ?? lambdaClient;
    this.s3 = options.s3 ?? s3Client;
    this.bucket = options.bucket;
    this.searchLimit = options.searchLimit ?? REUSE_SEARCH_LIMIT;
    this.fetch = options.fetch ?? ((url) => fetch(url));
  }

  /**
   * ListLayerVersions (newest first) does not return CodeSha256, so each version costs a
   * GetLayerVersion. The search stops after the newest {@link REUSE_SEARCH_LIMIT}: a
   * match older than that is not found and the layer is published again, which wastes
   * a version but is still correct (the new version holds the same bytes).
   */
  async findByCodeSha256(name: string, codeSha256: string): Promise<LayerVersionInfo | undefined> {
    let marker: string | undefined;
    let checked = 0;
    do {
      const page = await callAws(`ListLayerVersions ${name}`, () =>
        this.lambda.send(
          new ListLayerVersionsCommand({
            LayerName: name,
            MaxItems: Math.min(this.searchLimit, 50),
            ...(marker ? { Marker: marker } : {}),
          }),
        ),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return { LayerVersions: [], NextMarker: undefined };
        throw error;
      });
      for (const listed of page.LayerVersions ?? []) {
        if (checked >= this.searchLimit) return undefined;
        if (listed.Version === undefined) continue;
        checked += 1;
        const version = listed.Version;
        const out = await callAws(`GetLayerVersion ${name}:${version}`, () =>
          this.lambda.send(new GetLayerVersionCommand({ LayerName: name, VersionNumber: version })),
        ).catch((error: unknown) => {
          // Deleted between the listing and now: not a candidate.
          if (hasName(error, 'ResourceNotFoundException')) return undefined;
          throw error;
        });
        if (out?.Content?.CodeSha256 === codeSha256) return infoOf(name, out, `GetLayerVersion ${name}:${version}`);
      }
      marker = page.NextMarker;
    } while (marker && checked < this.searchLimit);
    return undefined;
  }

  async publish(input: LayerPublishInput): Promise<LayerVersionInfo> {
    const content = await this.content(input);
    const out = await callAws(`PublishLayerVersion ${input.name}`, () =>
      this.lambda.send(
        new PublishLayerVersionCommand({
          LayerName: input.name,
          Description: input.description,
          Content: content,
          CompatibleRuntimes: input.compatibleRuntimes as Runtime[],
          CompatibleArchitectures: input.architectures as Architecture[],
        }),
      ),
    );
    // The CodeSha256 Lambda reports is returned as is: the core compares it with the build.
    return infoOf(input.name, out, `PublishLayerVersion ${input.name}`);
  }

  private async content(input: LayerPublishInput): Promise<LayerVersionContentInput> {
    if (input.size <= DIRECT_UPLOAD_MAX_BYTES) return { ZipFile: await readFile(input.zipFile) };
    const bucket = resolveSetting(this.bucket);
    const key = `layers/${input.name}/${Buffer.from(input.sha256Base64, 'base64').toString('hex')}.zip`;
    await callAws(`PutObject ${s3Uri(bucket, key)}`, () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: createReadStream(input.zipFile),
          ContentLength: input.size,
          // S3 rejects the upload unless the bytes hash to what was built.
          ChecksumSHA256: input.sha256Base64,
        }),
      ),
    );
    return { S3Bucket: bucket, S3Key: key };
  }

  async get(arn: string): Promise<LayerVersionInfo | undefined> {
    const details = await this.describe(arn);
    if (!details) return undefined;
    const { compatibleRuntimes: _runtimes, architectures: _architectures, ...info } = details;
    return info;
  }

  async describe(arn: string): Promise<LayerVersionDetails | undefined> {
    const name = parseArn(arn)?.name;
    if (!name) return undefined;
    try {
      const out = await callAws(`GetLayerVersionByArn ${arn}`, () => this.lambda.send(new GetLayerVersionByArnCommand({ Arn: arn })));
      return {
        ...infoOf(name, out, `GetLayerVersionByArn ${arn}`),
        compatibleRuntimes: out.CompatibleRuntimes ?? [],
        architectures: out.CompatibleArchitectures ?? [],
      };
    } catch (error) {
      // Another account's layer this account may not use is, to bakery, one that is not there.
      if (hasName(error, 'ResourceNotFoundException', 'AccessDeniedException')) return undefined;
      throw error;
    }
  }

  /** GetLayerVersion gives a presigned `Content.Location` (valid for minutes): the bytes Lambda stores. */
  async download(arn: string, file: string): Promise<boolean> {
    const parsed = parseArn(arn);
    if (!parsed) return false;
    const what = `GetLayerVersion ${parsed.name}:${parsed.version}`;
    const out = await callAws(what, () =>
      this.lambda.send(new GetLayerVersionCommand({ LayerName: parsed.name, VersionNumber: parsed.version })),
    ).catch((error: unknown) => {
      if (hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    });
    if (!out) return false;
    const location = out.Content?.Location;
    if (!location) throw new BakeryError(`${what} returned no Content.Location`);
    await downloadUrl(this.fetch, location, file, `the content of ${arn}`);
    return true;
  }

  async listVersions(name: string): Promise<Array<{ name: string; arn: string; version: number }>> {
    const out: Array<{ name: string; arn: string; version: number }> = [];
    let marker: string | undefined;
    do {
      const page = await callAws(`ListLayerVersions ${name}`, () =>
        this.lambda.send(new ListLayerVersionsCommand({ LayerName: name, MaxItems: 50, ...(marker ? { Marker: marker } : {}) })),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return { LayerVersions: [], NextMarker: undefined };
        throw error;
      });
      for (const listed of page.LayerVersions ?? []) {
        if (listed.Version !== undefined && listed.LayerVersionArn)
          out.push({ name, arn: listed.LayerVersionArn, version: listed.Version });
      }
      marker = page.NextMarker;
    } while (marker);
    return out;
  }

  async deleteVersion(arn: string): Promise<void> {
    const parsed = parseArn(arn);
    if (!parsed) throw new BakeryError(`not a layer version ARN: ${arn}`);
    // Lambda answers a version that is gone already with success, as the port wants.
    await callAws(`DeleteLayerVersion ${parsed.name}:${parsed.version}`, () =>
      this.lambda.send(new DeleteLayerVersionCommand({ LayerName: parsed.name, VersionNumber: parsed.version })),
    );
  }
}
