import { existsSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  GetAliasCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  PreconditionFailedException,
  UpdateAliasCommand,
} from '@aws-sdk/client-lambda';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { handler as recordSuccess } from '../../functions/record-success/handler.ts';
import { handler as release } from '../../functions/release/handler.ts';
import { logger } from '../../src/lambda.ts';
import { TASKS } from '../../src/tasks.ts';
import { publishedLayer, resolvedBake } from '../helpers/fixtures.ts';
import { lambdaContext } from '../helpers/lambda-context.ts';
import { rejection } from '../helpers/rejection.ts';

// The handlers use the module-scope clients of src/adapters/aws/clients.ts: mock the classes.
const lambda = mockClient(LambdaClient);
const s3 = mockClient(S3Client);

const context = lambdaContext('bakery-release');

const versions = { functions: [{ name: 'hello', version: '7', codeSha256: 'c=', alias: 'live' }] };

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

describe('Lambda handlers', () => {
  beforeEach(() => {
    // Keep the test output readable; the logger's own behaviour is Powertools'.
    vi.spyOn(logger, 'error').mockImplementation(() => {});
    vi.spyOn(logger, 'info').mockImplementation(() => {});
  });

  afterEach(() => {
    lambda.reset();
    s3.reset();
  });

  afterAll(() => {
    lambda.restore();
    s3.restore();
  });

  it.each(Object.keys(TASKS))('has functions/<kebab>/handler.ts exporting a handler for %s', async (task) => {
    // serverless.yml points at functions/<kebab-name>/handler.handler.
    const file = path.resolve('functions', kebab(task), 'handler.ts');
    expect(existsSync(file)).toBe(true);
    const module = (await import(pathToFileURL(file).href)) as { handler?: unknown };
    expect(typeof module.handler).toBe('function');
  });

  it('releases through the middy chain: reads the alias, moves it with its revision', async () => {
    // Prepare: no configuration at all — Release only needs Lambda.
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'rev-6' });
    lambda.on(UpdateAliasCommand).resolves({ FunctionVersion: '7', RevisionId: 'rev-7' });

    // Act
    const result = await release({ versions }, context);

    // Assess
    expect(result).toEqual({ functions: [{ name: 'hello', alias: 'live', from: '6', to: '7', changed: true }], gradual: null });
    expect(lambda).toHaveReceivedCommandWith(UpdateAliasCommand, {
      FunctionName: 'hello',
      Name: 'live',
      FunctionVersion: '7',
      RevisionId: 'rev-6',
      RoutingConfig: { AdditionalVersionWeights: {} },
    });
  });

  it('keeps the error name the ASL matches on when the alias moved meanwhile', async () => {
    // Prepare
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda.on(GetAliasCommand).resolves({ FunctionVersion: '6', RevisionId: 'rev-6' });
    lambda
      .on(UpdateAliasCommand)
      .rejects(new PreconditionFailedException({ $metadata: { httpStatusCode: 412 }, message: 'RevisionId mismatch' }));

    // Act
    const error = await rejection(release({ versions }, context));

    // Assess
    expect(error.name).toBe('AliasConflictError');
    expect(error.message).toContain('hello:live');
    expect(logger.error).toHaveBeenCalledWith('release failed', expect.objectContaining({ error }));
  });

  it('turns throttling into TransientBackendError, which the ASL retries', async () => {
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', CodeSha256: 'c=' });
    lambda
      .on(GetAliasCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'TooManyRequestsException', $metadata: { httpStatusCode: 429 } }));

    const error = await rejection(release({ versions }, context));

    expect(error.name).toBe('TransientBackendError');
  });

  it('fails a task whose settings are missing with ConfigError, before any AWS call', async () => {
    // Prepare
    // RecordSuccess claims the bake's ledger entry (the table) before it writes the manifest (the bucket).
    vi.stubEnv('TABLE_NAME', '');
    const state = {
      bake: resolvedBake({ bakeId: 'hello-1' }),
      layer: publishedLayer({ arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:node22-runtime:4', version: 4, codeSha256: 'c=' }),
      release: { functions: [], gradual: null },
    };

    // Act
    const error = await rejection(recordSuccess(state, context));

    // Assess
    expect(error.name).toBe('ConfigError');
    expect(error.message).toContain('TABLE_NAME is not set');
    expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
    expect(lambda.calls()).toHaveLength(0);
  });

  it('fails a task whose input breaks the state contract with StateContractError naming the state and field, before any AWS call', async () => {
    // Prepare: the layer as an older PublishLayer might have left it, without its hex digest.
    const { sha256Hex: _dropped, ...layer } = publishedLayer();
    const state = { bake: resolvedBake({ bakeId: 'hello-1' }), layer, release: { functions: [], gradual: null } };

    // Act
    const error = await rejection(recordSuccess(state, context));

    // Assess
    expect(error.name).toBe('StateContractError');
    expect(error.message).toBe('RecordSuccess: $.layer.sha256Hex: expected string, received undefined');
    expect(s3).not.toHaveReceivedCommand(PutObjectCommand);
  });
});
