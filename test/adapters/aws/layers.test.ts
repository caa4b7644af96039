import { createHash } from 'node:crypto';
import { truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GetLayerVersionByArnCommand,
  GetLayerVersionCommand,
  LambdaClient,
  ListLayerVersionsCommand,
  PublishLayerVersionCommand,
  ResourceNotFoundException,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIRECT_UPLOAD_MAX_BYTES, LambdaLayerRegistry } from '../../../src/adapters/aws/layers.ts';
import { TransientBackendError } from '../../../src/errors.ts';
import { tempDir } from './fixtures.ts';

const lambdaClient = new LambdaClient({ region: 'eu-west-1' });
const s3Client = new S3Client({ region: 'eu-west-1' });
const lambda = mockClient(lambdaClient);
const s3 = mockClient(s3Client);

const NAME = 'node22-runtime';
const arnOf = (v: number) => `arn:aws:lambda:eu-west-1:123456789012:layer:${NAME}:${v}`;
const version = (v: number, codeSha256: string, size = 1000) => ({
  LayerVersionArn: arnOf(v),
  Version: v,
  Content: { CodeSha256: codeSha256, CodeSize: size },
});
const notFound = () => new ResourceNotFoundException({ $metadata: { httpStatusCode: 404 }, message: 'not found' });

describe('LambdaLayerRegistry', () => {
  let work: Awaited<ReturnType<typeof tempDir>>;
  let registry: LambdaLayerRegistry;

  beforeEach(async () => {
    work = await tempDir();
    registry = new LambdaLayerRegistry({ bucket: 'bakery-artefacts', lambda: lambdaClient, s3: s3Client });
  });

  afterEach(async () => {
    lambda.reset();
    s3.reset();
    await work.remove();
  });

  describe('findByCodeSha256', () => {
    it('finds a reusable version through GetLayerVersion, newest first, and stops at the match', async () => {
      // Prepare
      lambda.on(ListLayerVersionsCommand).resolves({ LayerVersions: [{ Version: 3 }, { Version: 2 }, { Version: 1 }] });
      lambda
        .on(GetLayerVersionCommand, { VersionNumber: 3 })
        .resolves(version(3, 'other='))
        .on(GetLayerVersionCommand, { VersionNumber: 2 })
        .resolves(version(2, 'wanted=', 4242))
        .on(GetLayerVersionCommand, { VersionNumber: 1 })
        .resolves(version(1, 'wanted='));

      // Act
      const found = await registry.findByCodeSha256(NAME, 'wanted=');

      // Assess
      expect(found).toEqual({ name: NAME, arn: arnOf(2), version: 2, codeSha256: 'wanted=', size: 4242 });
      expect(lambda).toHaveReceivedCommandWith(ListLayerVersionsCommand, { LayerName: NAME });
      expect(lambda).toHaveReceivedCommandTimes(GetLayerVersionCommand, 2);
      expect(lambda).not.toHaveReceivedCommandWith(GetLayerVersionCommand, { VersionNumber: 1 });
    });

    it('follows the pagination marker', async () => {
      // Prepare
      lambda
        .on(ListLayerVersionsCommand)
        .resolvesOnce({ LayerVersions: [{ Version: 9 }], NextMarker: 'page-2' })
        .resolvesOnce({ LayerVersions: [{ Version: 8 }] });
      lambda
        .on(GetLayerVersionCommand, { VersionNumber: 9 })
        .resolves(version(9, 'no='))
        .on(GetLayerVersionCommand, { VersionNumber: 8 })
        .resolves(version(8, 'yes='));

      // Act
      const found = await registry.findByCodeSha256(NAME, 'yes=');

      // Assess
      expect(found?.version).toBe(8);
      expect(lambda).toHaveReceivedNthCommandWith(ListLayerVersionsCommand, 2, { LayerName: NAME, Marker: 'page-2' });
    });

    it('checks at most the bounded number of versions', async () => {
      // Prepare
      const bounded = new LambdaLayerRegistry({ bucket: 'b', lambda: lambdaClient, s3: s3Client, searchLimit: 2 });
      lambda.on(ListLayerVersionsCommand).resolves({ LayerVersions: [{ Version: 3 }, { Version: 2 }, { Version: 1 }], NextMarker: 'more' });
      lambda.on(GetLayerVersionCommand).callsFake((input: { VersionNumber: number }) => version(input.VersionNumber, 'other='));

      // Act
      const found = await bounded.findByCodeSha256(NAME, 'wanted=');

      // Assess
      expect(found).toBeUndefined();
      expect(lambda).toHaveReceivedCommandTimes(GetLayerVersionCommand, 2);
      expect(lambda).toHaveReceivedCommandTimes(ListLayerVersionsCommand, 1);
    });

    it('is undefined for a layer that does not exist yet', async () => {
      lambda.on(ListLayerVersionsCommand).rejects(notFound());
      await expect(registry.findByCodeSha256(NAME, 'x=')).resolves.toBeUndefined();
    });

    it('turns throttling into TransientBackendError', async () => {
      lambda
        .on(ListLayerVersionsCommand)
        .rejects(new TooManyRequestsException({ $metadata: { httpStatusCode: 429 }, message: 'Rate exceeded' }));
      await expect(registry.findByCodeSha256(NAME, 'x=')).rejects.toBeInstanceOf(TransientBackendError);
    });
  });

  describe('publish', () => {
    it('sends a small zip inline and returns what Lambda stored', async () => {
      // Prepare
      const zipFile = path.join(work.dir, 'layer.zip');
      await writeFile(zipFile, 'layer zip bytes');
      lambda.on(PublishLayerVersionCommand).resolves(version(5, 'reported-by-lambda=', 15));

      // Act
      const published = await registry.publish({
        name: NAME,
        description: 'node22 runtime',
        zipFile,
        sha256Base64: 'built=',
        size: 15,
        compatibleRuntimes: ['provided.al2023'],
        architectures: ['x86_64'],
      });

      // Assess: Lambda's CodeSha256 is returned untouched, for the core to compare.
      expect(published).toEqual({ name: NAME, arn: arnOf(5), version: 5, codeSha256: 'reported-by-lambda=', size: 15 });
      expect(lambda).toHaveReceivedCommandWith(PublishLayerVersionCommand, {
        LayerName: NAME,
        Description: 'node22 runtime',
        CompatibleRuntimes: ['provided.al2023'],
        CompatibleArchitectures: ['x86_64'],
      });
      const content = lambda.commandCalls(PublishLayerVersionCommand)[0]?.args[0].input.Content;
      expect(Buffer.from(content?.ZipFile as Uint8Array).toString()).toBe('layer zip bytes');
      expect(s3).not.toHaveReceivedAnyCommand();
    });

    it('uploads a zip over the direct-upload limit to the artefacts bucket and publishes from S3', async () => {
      // Prepare: a sparse file just over the limit.
      const zipFile = path.join(work.dir, 'big.zip');
      await writeFile(zipFile, '');
      await truncate(zipFile, DIRECT_UPLOAD_MAX_BYTES + 1);
      const digest = createHash('sha256').update('pretend').digest();
      s3.on(PutObjectCommand).resolves({});
      lambda.on(PublishLayerVersionCommand).resolves(version(6, digest.toString('base64')));

      // Act
      await registry.publish({
        name: NAME,
        description: 'big',
        zipFile,
        sha256Base64: digest.toString('base64'),
        size: DIRECT_UPLOAD_MAX_BYTES + 1,
        compatibleRuntimes: ['provided.al2023'],
        architectures: ['arm64'],
      });

      // Assess
      const key = `layers/${NAME}/${digest.toString('hex')}.zip`;
      expect(s3).toHaveReceivedCommandWith(PutObjectCommand, {
        Bucket: 'bakery-artefacts',
        Key: key,
        ChecksumSHA256: digest.toString('base64'),
        ContentLength: DIRECT_UPLOAD_MAX_BYTES + 1,
      });
      expect(lambda).toHaveReceivedCommandWith(PublishLayerVersionCommand, { Content: { S3Bucket: 'bakery-artefacts', S3Key: key } });
    });
    it('publishes a zip of exactly 50 MiB from S3 (base64 would make it too large), 49 MiB inline', async () => {
      // Prepare: sparse files at the boundary; the limit is fixed here, not read from the code.
      const digest = createHash('sha256').update('pretend').digest();
      s3.on(PutObjectCommand).resolves({});
      lambda.on(PublishLayerVersionCommand).resolves(version(6, digest.toString('base64')));
      const publish = async (size: number) => {
        const zipFile = path.join(work.dir, `${size}.zip`);
        await writeFile(zipFile, '');
        await truncate(zipFile, size);
        const common = { name: NAME, description: 'boundary', sha256Base64: digest.toString('base64') };
        await registry.publish({ ...common, zipFile, size, compatibleRuntimes: ['provided.al2023'], architectures: ['arm64'] });
      };

      // Act + Assess
      await publish(49 * 1024 * 1024);
      expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
      expect(lambda.commandCalls(PublishLayerVersionCommand)[0]?.args[0].input.Content?.ZipFile?.byteLength).toBe(49 * 1024 * 1024);
      await publish(50 * 1024 * 1024);
      const key = `layers/${NAME}/${digest.toString('hex')}.zip`;
      expect(s3).toHaveReceivedCommandWith(PutObjectCommand, { Key: key, ContentLength: 50 * 1024 * 1024 });
      expect(lambda.commandCalls(PublishLayerVersionCommand)[1]?.args[0].input.Content).toEqual({
        S3Bucket: 'bakery-artefacts',
        S3Key: key,
      });
    });
  });

  describe('get', () => {
    it('reads a version by ARN, undefined when it does not exist', async () => {
      // Prepare
      lambda
        .on(GetLayerVersionByArnCommand, { Arn: arnOf(4) })
        .resolves(version(4, 'c='))
        .on(GetLayerVersionByArnCommand, { Arn: arnOf(99) })
        .rejects(notFound());

      // Act + Assess
      await expect(registry.get(arnOf(4))).resolves.toEqual({ name: NAME, arn: arnOf(4), version: 4, codeSha256: 'c=', size: 1000 });
      await expect(registry.get(arnOf(99))).resolves.toBeUndefined();
    });

    it('is undefined for something that is not a layer version ARN, without asking Lambda', async () => {
      await expect(registry.get('arn:aws:lambda:eu-west-1:123456789012:function:hello')).resolves.toBeUndefined();
      expect(lambda).not.toHaveReceivedAnyCommand();
    });
  });
});
