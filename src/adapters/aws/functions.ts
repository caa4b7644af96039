import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import {
  type AliasConfiguration,
  type Architecture,
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteAliasCommand,
  DeleteFunctionCommand,
  type FunctionCode,
  type FunctionConfiguration,
  GetAliasCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  type GetFunctionResponse,
  type LambdaClient,
  ListAliasesCommand,
  ListVersionsByFunctionCommand,
  PublishVersionCommand,
  type Runtime,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitForFunctionActiveV2,
  waitForFunctionUpdatedV2,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AliasConflictError, BakeryError, PublishVersionError, TransientBackendError } from '../../errors.ts';
import type { AliasInfo, FunctionRegistry, FunctionVersionInfo, FunctionVersionInput } from '../../ports/lambda.ts';
import { lambdaClient, s3Client } from './clients.ts';
import { resolveSetting, type Setting } from './config.ts';
import { downloadUrl, type Fetch } from './download.ts';
import { callAws, hasName } from './errors.ts';
import { DIRECT_UPLOAD_MAX_BYTES } from './layers.ts';
import { s3Uri } from './s3.ts';

/** Waiter timing in seconds (the SDK's units). */
export interface WaitOptions {
  maxWaitTime: number;
  minDelay: number;
  maxDelay: number;
}

/** Function updates usually settle in seconds; five minutes leaves the 15-minute Lambda room to report. */
export const DEFAULT_WAIT: WaitOptions = { maxWaitTime: 300, minDelay: 1, maxDelay: 10 };

function versionInfo(name: string, c: FunctionConfiguration, what: string): FunctionVersionInfo {
  if (!c.Version || !c.CodeSha256) throw new BakeryError(`${what} returned an incomplete configuration for ${name}`);
  return {
    name,
    version: c.Version,
    codeSha256: c.CodeSha256,
    handler: c.Handler ?? '',
    runtime: c.Runtime ?? '',
    layers: (c.Layers ?? []).flatMap((l) => (l.Arn ? [l.Arn] : [])),
    environment: c.Environment?.Variables ?? {},
    ...(c.MemorySize === undefined ? {} : { memorySize: c.MemorySize }),
    ...(c.Timeout === undefined ? {} : { timeout: c.Timeout }),
  };
}

function aliasInfo(name: string, alias: string, a: AliasConfiguration, what: string): AliasInfo {
  if (!a.FunctionVersion || !a.RevisionId) throw new BakeryError(`${what} returned an incomplete alias ${name}:${alias}`);
  return { name, alias, version: a.FunctionVersion, revisionId: a.RevisionId, weights: { ...a.RoutingConfig?.AdditionalVersionWeights } };
}

/**
 * Functions in Lambda: bakery creates a function the first time (with FUNCTION_ROLE_ARN),
 * then updates its code and configuration and publishes an immutable version. Aliases
 * move only by compare-and-swap on their RevisionId.
 */
export class LambdaFunctionRegistry implements FunctionRegistry {
  private readonly lambda: LambdaClient;
  private readonly s3: S3Client;
  private readonly bucket: Setting;
  private readonly role: Setting;
  private readonly wait: WaitOptions;
  private readonly fetch: Fetch;

  constructor(options: {
    bucket: Setting;
    role: Setting;
    lambda?: LambdaClient;
    s3?: S3Client;
    wait?: Partial<WaitOptions>;
    fetch?: Fetch;
  }) {
    this.lambda = options.lambda ?? lambdaClient;
    this.s3 = options.s3 ?? s3Client;
    this.bucket = options.bucket;
    this.role = options.role;
    this.wait = { ...DEFAULT_WAIT, ...options.wait };
    this.fetch = options.fetch ?? ((url) => fetch(url));
  }

  async publishVersion(input: FunctionVersionInput): Promise<FunctionVersionInfo> {
    const name = input.name;
    const existing = await this.getFunction(name);
    const code = await this.code(input);
    const configuration = {
      Runtime: input.runtime as Runtime,
      Handler: input.handler,
      MemorySize: input.memorySize,
      Timeout: input.timeout,
      Environment: { Variables: input.environment },
      Layers: input.layers,
    };
    let created = false;
    if (!existing) {
      created = await callAws(`CreateFunction ${name}`, () =>
        this.lambda.send(
          new CreateFunctionCommand({
            FunctionName: name,
            Role: resolveSetting(this.role),
            PackageType: 'Zip',
            Architectures: [input.architecture as Architecture],
            Code: code,
            Description: 'managed by bakery',
            // Unpublished: the version is published below, with the CodeSha256 check.
            Publish: false,
            ...configuration,
          }),
        ),
      ).then(
        () => true,
        (error: unknown) => {
          // Created concurrently by someone else: carry on as an update.
          if (hasName(error, 'ResourceConflictException')) return false;
          throw error;
        },
      );
    }
    if (created) {
      await this.settle(name, 'active');
    } else {
      // An update still in progress (ours from a retried attempt, or someone's) would refuse ours.
      if (existing?.Configuration?.LastUpdateStatus === 'InProgress' || existing?.Configuration?.State === 'Pending') {
        await this.settle(name, 'updated');
      }
      await callAws(`UpdateFunctionCode ${name}`, () =>
        this.lambda.send(
          new UpdateFunctionCodeCommand({
            FunctionName: name,
            ...code,
            Architectures: [input.architecture as Architecture],
            Publish: false,
          }),
        ),
      );
      await this.settle(name, 'updated');
      await callAws(`UpdateFunctionConfiguration ${name}`, () =>
        this.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: name, ...configuration })),
      );
      await this.settle(name, 'updated');
    }
    try {
      const published = await callAws(`PublishVersion ${name}`, () =>
        this.lambda.send(
          // CodeSha256: Lambda refuses to publish if the code changed underneath us since the update.
          new PublishVersionCommand({ FunctionName: name, CodeSha256: input.codeSha256, Description: input.description }),
        ),
      );
      return versionInfo(name, published, `PublishVersion ${name}`);
    } catch (error) {
      if (hasName(error, 'PreconditionFailedException', 'InvalidParameterValueException')) {
        throw new PublishVersionError(`Lambda refused to publish ${name}: ${(error as Error).message}`, {
          cause: error,
          hint: 'The function was changed concurrently (code not the one bakery uploaded); rerun the bake.',
        });
      }
      throw error;
    }
  }

  private async getFunction(name: string): Promise<GetFunctionResponse | undefined> {
    try {
      return await callAws(`GetFunction ${name}`, () => this.lambda.send(new GetFunctionCommand({ FunctionName: name })));
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  private async code(input: FunctionVersionInput): Promise<FunctionCode> {
    const { size } = await stat(input.codeFile);
    if (size <= DIRECT_UPLOAD_MAX_BYTES) return { ZipFile: await readFile(input.codeFile) };
    const bucket = resolveSetting(this.bucket);
    // The same content-addressed key ResolveBake staged the code under: same bytes, same object.
    const key = `code/${input.name}/${Buffer.from(input.codeSha256, 'base64').toString('hex')}.zip`;
    await callAws(`PutObject ${s3Uri(bucket, key)}`, () =>
      this.s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: key,
          Body: createReadStream(input.codeFile),
          ContentLength: size,
          ChecksumSHA256: input.codeSha256,
        }),
      ),
    );
    return { S3Bucket: bucket, S3Key: key };
  }

  /** Wait for the function to be Active (after create) or its last update Successful. */
  private async settle(name: string, until: 'active' | 'updated'): Promise<void> {
    const params = { client: this.lambda, ...this.wait };
    const result =
      until === 'active'
        ? await waitForFunctionActiveV2(params, { FunctionName: name })
        : await waitForFunctionUpdatedV2(params, { FunctionName: name });
    const state = String(result.state);
    if (state === 'SUCCESS') return;
    if (state === 'FAILURE') {
      const c = (result.reason as GetFunctionResponse | undefined)?.Configuration;
      const why =
        until === 'active'
          ? `${c?.StateReasonCode ?? ''} ${c?.StateReason ?? ''}`
          : `${c?.LastUpdateStatusReasonCode ?? ''} ${c?.LastUpdateStatusReason ?? ''}`;
      throw new PublishVersionError(
        `${name} ${until === 'active' ? 'could not be created' : 'update failed'}: ${why.trim() || 'no reason given'}`,
      );
    }
    throw new TransientBackendError(
      `${name} was not ${until === 'active' ? 'active' : 'updated'} after ${this.wait.maxWaitTime} s (waiter ${state.toLowerCase()})`,
    );
  }

  async getVersion(name: string, version: string): Promise<FunctionVersionInfo | undefined> {
    // Only numbered versions: never resolve $LATEST or an alias by accident.
    if (!/^\d+$/.test(version)) return undefined;
    try {
      const c = await callAws(`GetFunctionConfiguration ${name}:${version}`, () =>
        this.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name, Qualifier: version })),
      );
      return versionInfo(name, c, `GetFunctionConfiguration ${name}:${version}`);
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  async getAlias(name: string, alias: string): Promise<AliasInfo | undefined> {
    try {
      const a = await callAws(`GetAlias ${name}:${alias}`, () =>
        this.lambda.send(new GetAliasCommand({ FunctionName: name, Name: alias })),
      );
      return aliasInfo(name, alias, a, `GetAlias ${name}:${alias}`);
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException')) return undefined;
      throw error;
    }
  }

  async setAlias(
    name: string,
    alias: string,
    version: string,
    expectedRevisionId: string | null,
    weights: Record<string, number> = {},
  ): Promise<AliasInfo> {
    const routing = Object.keys(weights).length ? { RoutingConfig: { AdditionalVersionWeights: weights } } : {};
    if (expectedRevisionId === null) {
      try {
        const a = await callAws(`CreateAlias ${name}:${alias}`, () =>
          this.lambda.send(new CreateAliasCommand({ FunctionName: name, Name: alias, FunctionVersion: version, ...routing })),
        );
        return aliasInfo(name, alias, a, `CreateAlias ${name}:${alias}`);
      } catch (error) {
        if (hasName(error, 'ResourceConflictException')) {
          throw new AliasConflictError(`alias ${name}:${alias} was created by someone else while we were releasing`, {
            cause: error,
            hint: 'Check `bakery status` and bake again.',
          });
        }
        throw error;
      }
    }
    try {
      const a = await callAws(`UpdateAlias ${name}:${alias}`, () =>
        this.lambda.send(
          new UpdateAliasCommand({
            FunctionName: name,
            Name: alias,
            FunctionVersion: version,
            // Compare-and-swap: Lambda refuses if the alias changed since we read it.
            RevisionId: expectedRevisionId,
            // The weights of a gradual release step; otherwise all traffic on `version`
            // (an empty map clears the weights an earlier step set).
            RoutingConfig: { AdditionalVersionWeights: weights },
          }),
        ),
      );
      return aliasInfo(name, alias, a, `UpdateAlias ${name}:${alias}`);
    } catch (error) {
      if (hasName(error, 'PreconditionFailedException')) {
        throw new AliasConflictError(
          `alias ${name}:${alias} changed while we were releasing (its revision is no longer ${expectedRevisionId})`,
          {
            cause: error,
            hint: 'Someone else moved it; check `bakery status` and bake again.',
          },
        );
      }
      throw error;
    }
  }

  async deleteAlias(name: string, alias: string, expectedRevisionId: string): Promise<void> {
    // DeleteAlias takes no RevisionId: read the revision first so that an alias someone
    // else moved meanwhile is refused, leaving only the short window between the calls.
    const current = await this.getAlias(name, alias);
    if (!current) return;
    if (current.revisionId !== expectedRevisionId) {
      throw new AliasConflictError(`alias ${name}:${alias} changed since bakery created it; it was left in place`, {
        hint: 'Check `bakery status`.',
      });
    }
    await callAws(`DeleteAlias ${name}:${alias}`, () => this.lambda.send(new DeleteAliasCommand({ FunctionName: name, Name: alias })));
  }

  async listVersions(name: string): Promise<FunctionVersionInfo[]> {
    const out: FunctionVersionInfo[] = [];
    let marker: string | undefined;
    do {
      const page = await callAws(`ListVersionsByFunction ${name}`, () =>
        this.lambda.send(new ListVersionsByFunctionCommand({ FunctionName: name, MaxItems: 50, ...(marker ? { Marker: marker } : {}) })),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return { Versions: [], NextMarker: undefined };
        throw error;
      });
      for (const c of page.Versions ?? []) out.push(versionInfo(name, c, `ListVersionsByFunction ${name}`));
      marker = page.NextMarker;
    } while (marker);
    return out;
  }

  async listAliases(name: string): Promise<AliasInfo[]> {
    const out: AliasInfo[] = [];
    let marker: string | undefined;
    do {
      const page = await callAws(`ListAliases ${name}`, () =>
        this.lambda.send(new ListAliasesCommand({ FunctionName: name, MaxItems: 50, ...(marker ? { Marker: marker } : {}) })),
      ).catch((error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return { Aliases: [], NextMarker: undefined };
        throw error;
      });
      for (const a of page.Aliases ?? []) out.push(aliasInfo(name, a.Name ?? '', a, `ListAliases ${name}`));
      marker = page.NextMarker;
    } while (marker);
    return out;
  }

  /** GetFunction on the version gives a presigned `Code.Location`: the bytes Lambda runs. */
  async downloadCode(name: string, version: string, file: string): Promise<boolean> {
    if (!/^\d+$/.test(version)) return false;
    const what = `GetFunction ${name}:${version}`;
    const out = await callAws(what, () => this.lambda.send(new GetFunctionCommand({ FunctionName: name, Qualifier: version }))).catch(
      (error: unknown) => {
        if (hasName(error, 'ResourceNotFoundException')) return undefined;
        throw error;
      },
    );
    if (!out) return false;
    const location = out.Code?.Location;
    if (!location) throw new BakeryError(`${what} returned no Code.Location`);
    await downloadUrl(this.fetch, location, file, `the code of ${name}:${version}`);
    return true;
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    // Without a qualifier DeleteFunction deletes the whole function: never send one that is not a version number.
    if (!/^\d+$/.test(version)) throw new BakeryError(`${name}: only numbered versions can be deleted, not ${version}`);
    try {
      await callAws(`DeleteFunction ${name}:${version}`, () =>
        this.lambda.send(new DeleteFunctionCommand({ FunctionName: name, Qualifier: version })),
      );
    } catch (error) {
      if (hasName(error, 'ResourceNotFoundException')) return;
      if (hasName(error, 'ResourceConflictException')) {
        throw new AliasConflictError(`${name}:${version} is in use by an alias; it was not deleted`, { cause: error });
      }
      throw error;
    }
  }
}
