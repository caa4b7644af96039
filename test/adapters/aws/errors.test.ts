import { TooManyRequestsException } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { callAws, isTransient, toBackendError } from '../../../src/adapters/aws/errors.ts';
import { TransientBackendError } from '../../../src/errors.ts';
import { awsError } from './fixtures.ts';

describe('isTransient', () => {
  it.each([
    ['a Lambda throttle', new TooManyRequestsException({ $metadata: { httpStatusCode: 429 }, message: 'Rate exceeded' })],
    ['a DynamoDB throttle', awsError('ProvisionedThroughputExceededException')],
    ['a generic throttle', awsError('ThrottlingException')],
    ['a 5xx', awsError('ServiceException', 503)],
    ['a $retryable error', awsError('Whatever', 400, { $retryable: { throttling: false } })],
    ['a reset connection', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('is true for %s', (_what, error) => {
    expect(isTransient(error)).toBe(true);
  });

  it.each([
    ['a missing resource', awsError('ResourceNotFoundException', 404)],
    ['a denied call', awsError('AccessDeniedException', 403)],
    ['a plain error', new Error('boom')],
    ['a non-error', 'boom'],
  ])('is false for %s', (_what, error) => {
    expect(isTransient(error)).toBe(false);
  });
});

describe('toBackendError', () => {
  it('wraps transient errors in TransientBackendError, keeping the cause', () => {
    // Prepare
    const throttle = awsError('ThrottlingException');

    // Act
    const mapped = toBackendError(throttle, 'PutItem ledger entry');

    // Assess
    expect(mapped).toBeInstanceOf(TransientBackendError);
    expect((mapped as Error).name).toBe('TransientBackendError');
    expect((mapped as Error).message).toContain('PutItem ledger entry');
    expect((mapped as Error).cause).toBe(throttle);
  });

  it('passes other errors through untouched', () => {
    const denied = awsError('AccessDeniedException', 403);
    expect(toBackendError(denied, 'x')).toBe(denied);
  });
});

describe('callAws', () => {
  it('returns the result, or throws the mapped error', async () => {
    await expect(callAws('ok', async () => 42)).resolves.toBe(42);
    await expect(
      callAws('GetAlias', async () => {
        throw awsError('InternalFailure', 500);
      }),
    ).rejects.toMatchObject({ name: 'TransientBackendError' });
  });
});
