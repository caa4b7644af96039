import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { BakeryError, TransientBackendError } from '../../errors.ts';

/** The fetch the adapters download with; injectable so tests never touch the network. */
export type Fetch = (url: string) => Promise<Response>;

/**
 * Download a presigned URL (a layer's or a function's `Content.Location` / `Code.Location`)
 * to `file`, under a temporary name first: a cut download never sits at `file`.
 * `what` names the content in errors; the URL is never printed (it carries a signature).
 */
export async function downloadUrl(fetchImpl: Fetch, url: string, file: string, what: string): Promise<void> {
  let response: Response;
  try {
    response = await fetchImpl(url);
  } catch (cause) {
    throw new TransientBackendError(`downloading ${what} failed: ${(cause as Error).message}`, { cause });
  }
  if (!response.ok || !response.body) {
    const message = `downloading ${what} failed: HTTP ${response.status}`;
    throw response.status >= 500 || response.status === 429 ? new TransientBackendError(message) : new BakeryError(message);
  }
  await mkdir(path.dirname(file), { recursive: true });
  const temp = `${file}.${randomBytes(6).toString('hex')}.partial`;
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(temp));
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw new TransientBackendError(`downloading ${what} was cut: ${(error as Error).message}`, { cause: error });
  }
}
