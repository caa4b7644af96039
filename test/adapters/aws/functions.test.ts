import { createHash } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  CreateAliasCommand,
  CreateFunctionCommand,
  DeleteAliasCommand,
  GetAliasCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  InvalidParameterValueException,
  LambdaClient,
  PreconditionFailedException,
  PublishVersionCommand,
  ResourceConflictException,
  ResourceNotFoundException,
  UpdateAliasCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LambdaFunctionRegistry } from '../../../src/adapters/aws/functions.ts';
import { DIRECT_UPLOAD_MAX_BYTES } from '../../../src/adapters/aws/layers.ts';
import { AliasConflictError, PublishVersionError, TransientBackendError } from '../../../src/errors.ts';
import type { FunctionVersionInput } from '../../../src/ports/lambda.ts';
import { tempDir } from './fixtures.ts';

const lambdaClient = new LambdaClient({ region: 'eu-west-1' });
const s3Client = new S3Client({ region: 'eu-west-1' });
const lambda = mockClient(lambdaClient);
const s3 = mockClient(s3Client);

const ROLE = 'arn:aws:iam::123456789012:role/bakery-functions';
const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:node22-runtime:4';
const FAST = { maxWaitTime: 1, minDelay: 0.01, maxDelay: 0.02 };
const notFound = () => new ResourceNotFoundException({ $metadata: { httpStatusCode: 404 }, message: 'Function not found' });

/** The names of the commands sent, in order. */
const sent = () => lambda.calls().map((call) => (call.args[0] as object).constructor.name);

describe('LambdaFunctionRegistry', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let registry: LambdaFunctionRegistry;
  let input: FunctionVersionInput;

  beforeEach(async () => {
    work = await tempDir();
    registry = new LambdaFunctionRegistry({ bucket: 'bakery-artefacts', role: ROLE, lambda: lambdaClient, s3: s3Client, wait: FAST });
    const codeFile = path.join(work.dir, 'hello.zip');
    await writeFile(codeFile, 'code zip');
    input = {
      name: 'hello',
      description: 'bake hello-1',
      codeFile,
      codeSha256: createHash('sha256').update('code zip').digest('base64'),
      handler: 'index.handler',
      runtime: 'provided.al2023',
      architecture: 'arm64',
      memorySize: 256,
      timeout: 10,
      environment: { GREETING: 'hi' },
      layers: [LAYER],
    };
    lambda.on(PublishVersionCommand).resolves({
      Version: '7',
      CodeSha256: input.codeSha256,
      Handler: 'index.handler',
      Runtime: 'provided.al2023',
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { GREETING: 'hi' } },
    });
  });

  afterEach(async () => {
    lambda.reset();
    s3.reset();
    await work.remove();
  });

  describe('publishVersion', () => {
    it('creates a missing function with the bakery role, waits until active, then publishes', async () => {
      // Prepare
      lambda
        .on(GetFunctionCommand)
        .rejectsOnce(notFound())
        .resolvesOnce({ Configuration: { State: 'Pending' } })
        .resolves({ Configuration: { State: 'Active' } });
      lambda.on(CreateFunctionCommand).resolves({});

      // Act
      const published = await registry.publishVersion(input);

      // Assess
      expect(published).toEqual({
        name: 'hello',
        version: '7',
        codeSha256: input.codeSha256,
        handler: 'index.handler',
        runtime: 'provided.al2023',
        layers: [LAYER],
        environment: { GREETING: 'hi' },
      });
      expect(lambda).toHaveReceivedCommandWith(CreateFunctionCommand, {
        FunctionName: 'hello',
        Role: ROLE,
        Runtime: 'provided.al2023',
        Handler: 'index.handler',
        Architectures: ['arm64'],
        MemorySize: 256,
        Timeout: 10,
        Environment: { Variables: { GREETING: 'hi' } },
        Layers: [LAYER],
        Publish: false,
      });
      const code = lambda.commandCalls(CreateFunctionCommand)[0]?.args[0].input.Code;
      expect(Buffer.from(code?.ZipFile as Uint8Array).toString()).toBe('code zip');
      expect(sent()).toEqual([
        'GetFunctionCommand',
        'CreateFunctionCommand',
        'GetFunctionCommand',
        'GetFunctionCommand',
        'PublishVersionCommand',
      ]);
      expect(lambda).toHaveReceivedCommandWith(PublishVersionCommand, {
        FunctionName: 'hello',
        CodeSha256: input.codeSha256,
        Description: 'bake hello-1',
      });
    });

    it('updates an existing function: code, wait, configuration, wait, publish with CodeSha256', async () => {
      // Prepare
      lambda.on(GetFunctionCommand).resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful', Role: 'their-role' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});
      lambda.on(UpdateFunctionConfigurationCommand).resolves({});

      // Act
      await registry.publishVersion(input);

      // Assess
      expect(sent()).toEqual([
        'GetFunctionCommand',
        'UpdateFunctionCodeCommand',
        'GetFunctionCommand',
        'UpdateFunctionConfigurationCommand',
        'GetFunctionCommand',
        'PublishVersionCommand',
      ]);
      expect(lambda).toHaveReceivedCommandWith(UpdateFunctionCodeCommand, {
        FunctionName: 'hello',
        Architectures: ['arm64'],
        Publish: false,
      });
      expect(lambda).toHaveReceivedCommandWith(UpdateFunctionConfigurationCommand, {
        FunctionName: 'hello',
        Handler: 'index.handler',
        Runtime: 'provided.al2023',
        Layers: [LAYER],
        Environment: { Variables: { GREETING: 'hi' } },
      });
      // An existing function keeps its own role.
      expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).not.toHaveProperty('Role');
      expect(lambda).toHaveReceivedCommandWith(PublishVersionCommand, { CodeSha256: input.codeSha256 });
      expect(lambda).not.toHaveReceivedCommand(CreateFunctionCommand);
    });

    it('waits for an update already in progress before sending its own', async () => {
      lambda
        .on(GetFunctionCommand)
        .resolvesOnce({ Configuration: { State: 'Active', LastUpdateStatus: 'InProgress' } })
        .resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});
      lambda.on(UpdateFunctionConfigurationCommand).resolves({});

      await registry.publishVersion(input);

      expect(sent().slice(0, 3)).toEqual(['GetFunctionCommand', 'GetFunctionCommand', 'UpdateFunctionCodeCommand']);
    });

    it('fails with PublishVersionError and Lambda’s reason when the update fails', async () => {
      // Prepare
      lambda
        .on(GetFunctionCommand)
        .resolvesOnce({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } })
        .resolves({ Configuration: { LastUpdateStatus: 'Failed', LastUpdateStatusReason: 'Layer version does not exist' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});

      // Act
      const publish = registry.publishVersion(input);

      // Assess
      await expect(publish).rejects.toThrow(PublishVersionError);
      await expect(publish).rejects.toThrow(/update failed: Layer version does not exist/);
      expect(lambda).not.toHaveReceivedCommand(PublishVersionCommand);
    });

    it('gives up waiting after the configured time with TransientBackendError', async () => {
      lambda
        .on(GetFunctionCommand)
        .resolvesOnce({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } })
        .resolves({ Configuration: { LastUpdateStatus: 'InProgress' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});
      const impatient = new LambdaFunctionRegistry({
        bucket: 'b',
        role: ROLE,
        lambda: lambdaClient,
        wait: { maxWaitTime: 0.1, minDelay: 0.01, maxDelay: 0.02 },
      });

      await expect(impatient.publishVersion(input)).rejects.toBeInstanceOf(TransientBackendError);
    });

    it('turns Lambda refusing the CodeSha256 into PublishVersionError', async () => {
      lambda.on(GetFunctionCommand).resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});
      lambda.on(UpdateFunctionConfigurationCommand).resolves({});
      lambda
        .on(PublishVersionCommand)
        .rejects(new InvalidParameterValueException({ $metadata: { httpStatusCode: 400 }, message: 'CodeSHA256 does not match' }));

      await expect(registry.publishVersion(input)).rejects.toMatchObject({
        name: 'PublishVersionError',
        message: /CodeSHA256 does not match/,
      });
    });

    it('sends code over the direct-upload limit through the artefacts bucket', async () => {
      // Prepare: a sparse file just over the limit.
      await truncate(input.codeFile, DIRECT_UPLOAD_MAX_BYTES + 1);
      lambda
        .on(GetFunctionCommand)
        .rejectsOnce(notFound())
        .resolves({ Configuration: { State: 'Active' } });
      lambda.on(CreateFunctionCommand).resolves({});
      s3.on(PutObjectCommand).resolves({});

      // Act
      await registry.publishVersion(input);

      // Assess
      const key = `code/hello/${Buffer.from(input.codeSha256, 'base64').toString('hex')}.zip`;
      expect(s3).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'bakery-artefacts', Key: key, ChecksumSHA256: input.codeSha256 });
      expect(lambda).toHaveReceivedCommandWith(CreateFunctionCommand, { Code: { S3Bucket: 'bakery-artefacts', S3Key: key } });
    });
    it('sends a zip of exactly 50 MiB through the artefacts bucket (base64 would make it too large), 49 MiB inline', async () => {
      // Prepare: sparse files at the boundary; the limit is fixed here, not read from the code.
      lambda.on(GetFunctionCommand).resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
      lambda.on(UpdateFunctionCodeCommand).resolves({});
      lambda.on(UpdateFunctionConfigurationCommand).resolves({});
      s3.on(PutObjectCommand).resolves({});

      // Act + Assess: 49 MiB goes inline.
      await truncate(input.codeFile, 49 * 1024 * 1024);
      await registry.publishVersion(input);
      expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
      const inline = lambda.commandCalls(UpdateFunctionCodeCommand)[0]?.args[0].input;
      expect(inline?.ZipFile?.byteLength).toBe(49 * 1024 * 1024);

      // 50 MiB goes through S3.
      lambda.resetHistory();
      await truncate(input.codeFile, 50 * 1024 * 1024);
      await registry.publishVersion(input);
      const key = `code/hello/${Buffer.from(input.codeSha256, 'base64').toString('hex')}.zip`;
      expect(s3).toHaveReceivedCommandWith(PutObjectCommand, { Bucket: 'bakery-artefacts', Key: key, ContentLength: 50 * 1024 * 1024 });
      expect(lambda).toHaveReceivedCommandWith(UpdateFunctionCodeCommand, { S3Bucket: 'bakery-artefacts', S3Key: key });
    });
  });

  describe('getVersion', () => {
    it('reads the numbered version, undefined when missing or not a number', async () => {
      // Prepare
      lambda
        .on(GetFunctionConfigurationCommand, { Qualifier: '7' })
        .resolves({ Version: '7', CodeSha256: 'c=', Handler: 'index.handler', Runtime: 'provided.al2023', Layers: [{ Arn: LAYER }] })
        .on(GetFunctionConfigurationCommand, { Qualifier: '8' })
        .rejects(notFound());

      // Act + Assess
      await expect(registry.getVersion('hello', '7')).resolves.toMatchObject({ version: '7', layers: [LAYER], environment: {} });
      await expect(registry.getVersion('hello', '8')).resolves.toBeUndefined();
      await expect(registry.getVersion('hello', 'live')).resolves.toBeUndefined();
      expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 2);
      expect(lambda).toHaveReceivedCommandWith(GetFunctionConfigurationCommand, { FunctionName: 'hello', Qualifier: '7' });
    });
  });

  describe('getAlias', () => {
    it('returns version and revision, undefined when there is no alias', async () => {
      lambda
        .on(GetAliasCommand, { Name: 'live' })
        .resolves({ FunctionVersion: '6', RevisionId: 'rev-1' })
        .on(GetAliasCommand, { Name: 'beta' })
        .rejects(notFound());

      await expect(registry.getAlias('hello', 'live')).resolves.toEqual({
        name: 'hello',
        alias: 'live',
        version: '6',
        revisionId: 'rev-1',
        weights: {},
      });
      await expect(registry.getAlias('hello', 'beta')).resolves.toBeUndefined();
    });
  });

  describe('setAlias', () => {
    it('moves an existing alias with the revision it read', async () => {
      // Prepare
      lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '7', RevisionId: 'rev-2' });

      // Act
      const moved = await registry.setAlias('hello', 'live', '7', 'rev-1');

      // Assess
      expect(moved).toEqual({ name: 'hello', alias: 'live', version: '7', revisionId: 'rev-2', weights: {} });
      expect(lambda).toHaveReceivedCommandWith(UpdateAliasCommand, {
        FunctionName: 'hello',
        Name: 'live',
        FunctionVersion: '7',
        RevisionId: 'rev-1',
        RoutingConfig: { AdditionalVersionWeights: {} },
      });
    });

    it('turns PreconditionFailed (the alias moved meanwhile) into AliasConflictError naming function and alias', async () => {
      // Prepare
      lambda
        .on(UpdateAliasCommand)
        .rejects(
          new PreconditionFailedException({ $metadata: { httpStatusCode: 412 }, message: 'The RevisionId provided does not match' }),
        );

      // Act
      const move = registry.setAlias('hello', 'live', '7', 'rev-1');

      // Assess
      await expect(move).rejects.toThrow(AliasConflictError);
      await expect(move).rejects.toThrow(/alias hello:live changed/);
    });

    it('creates an alias that must not exist yet; a concurrent creation is AliasConflictError', async () => {
      lambda
        .on(CreateAliasCommand, { Name: 'live' })
        .resolves({ FunctionVersion: '1', RevisionId: 'rev-a' })
        .on(CreateAliasCommand, { Name: 'taken' })
        .rejects(new ResourceConflictException({ $metadata: { httpStatusCode: 409 }, message: 'Alias already exists' }));

      await expect(registry.setAlias('hello', 'live', '1', null)).resolves.toMatchObject({ version: '1', revisionId: 'rev-a' });
      await expect(registry.setAlias('hello', 'taken', '1', null)).rejects.toMatchObject({ name: 'AliasConflictError' });
      expect(lambda).not.toHaveReceivedCommand(UpdateAliasCommand);
    });
  });

  describe('deleteAlias', () => {
    it('deletes the alias only while it is still at the revision bakery left it', async () => {
      // Prepare
      lambda.on(GetAliasCommand).resolves({ FunctionVersion: '2', RevisionId: 'rev-ours' }).on(DeleteAliasCommand).resolves({});

      // Act
      await registry.deleteAlias('hello', 'live', 'rev-ours');

      // Assess
      expect(lambda).toHaveReceivedCommandWith(DeleteAliasCommand, { FunctionName: 'hello', Name: 'live' });
    });

    it('refuses, and deletes nothing, when the alias moved since', async () => {
      // Prepare
      lambda.on(GetAliasCommand).resolves({ FunctionVersion: '3', RevisionId: 'rev-theirs' });

      // Act
      const removal = registry.deleteAlias('hello', 'live', 'rev-ours');

      // Assess
      await expect(removal).rejects.toThrow(AliasConflictError);
      expect(lambda).not.toHaveReceivedCommand(DeleteAliasCommand);
    });
  });
});
