import { TransientBackendError } from '../../errors.ts';

/**
 * Which backend failures are worth retrying. The SDK has already retried these a few
 * times with backoff by the time we see them; turning them into TransientBackendError
 * hands them to the ASL's Retry, which waits longer than a Lambda should.
 */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'ProvisionedThroughputExceededException',
  'TransactionConflictException',
  'SlowDown',
  'EC2ThrottledException',
]);

/** Errors of the connection itself (the request may never have reached AWS). */
const NETWORK = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'TimeoutError', 'RequestTimeout']);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** The error's name (SDK exceptions carry their AWS error code there). */
export function errorName(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

export const hasName = (error: unknown, ...names: string[]): boolean => names.includes(errorName(error) ?? '');

/** Throttling, a 5xx, or a broken connection. */
export function isTransient(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false;
  const e = error as SdkErrorShape;
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === 'number' && status >= 500) return true;
  if (typeof e.name === 'string' && (THROTTLING.has(e.name) || NETWORK.has(e.name))) return true;
  return typeof e.code === 'string' && NETWORK.has(e.code);
}

/** Transient failures become TransientBackendError (the ASL retries it); anything else goes on untouched. */
export function toBackendError(error: unknown, what: string): unknown {
  if (!isTransient(error)) return error;
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new TransientBackendError(`${what} failed transiently (${detail})`, { cause: error });
}

/** Run one backend call, mapping transient failures. `what` names the call in the message. */
export async function callAws<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toBackendError(error, what);
  }
}
