import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { GetObjectCommandOutput } from '@aws-sdk/client-s3';
import type { ApprovalRecord } from '../../../src/ports/approval.ts';
import { type ZipResult, zipTree } from '../../../src/zip/deterministic.ts';

/** A fresh temporary directory and its removal. */
export async function tempDir(prefix = 'bakery-aws-test-'): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** Write `files` (path → content; a leading `!` in the path marks it executable) under `root`. */
export async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(files)) {
    const executable = name.startsWith('!');
    const file = path.join(root, executable ? name.slice(1) : name);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
    if (executable) await chmod(file, 0o755);
  }
}

/** Zip `files` reproducibly into `<work>/<name>.zip`. */
export async function zipOf(work: string, name: string, files: Record<string, string>): Promise<ZipResult> {
  const root = path.join(work, `${name}-tree`);
  await writeTree(root, files);
  return zipTree(root, path.join(work, `${name}.zip`));
}

/** A GetObject body as the SDK gives it in Node: a readable stream. */
export const body = (bytes: Uint8Array | string): NonNullable<GetObjectCommandOutput['Body']> =>
  Readable.from([Buffer.from(bytes)]) as unknown as NonNullable<GetObjectCommandOutput['Body']>;

/** An SDK-shaped service error (what aws-sdk-client-mock rejects with). */
export function awsError(name: string, status = 400, extra: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`${name} (mocked)`), {
    name,
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status },
    ...extra,
  });
}

export const TASK_TOKEN = 'AQCEAAAAKgAAAAMAAAAAAAAAAXN0ZXAtZnVuY3Rpb25zLXRhc2stdG9rZW4tc2VjcmV0';

export function approvalRecord(overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id: 'apr-0123456789abcdef',
    bakeId: 'hello-20261122T073000-3f9a',
    taskToken: TASK_TOKEN,
    digest: 'a'.repeat(64),
    approvers: ['U024BE7LH'],
    createdAt: '2026-11-22T07:30:00.000Z',
    expiresAt: '2026-11-23T07:30:00.000Z',
    summary: {
      functions: [
        { name: 'hello', version: '7', alias: 'live', live: '6' },
        { name: 'goodbye', version: '1', alias: 'live', live: null },
      ],
      layer: {
        arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:node22-runtime:4',
        codeSha256: 'q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=',
        sha256Hex: 'abcdef1234567890abcdef1234567890abcdef1234567890abcdef1234567890',
      },
      runtime: 'node22 (NodeVersion 22.23.3)',
      validation: { passed: true, cases: 3 },
    },
    message: null,
    decision: null,
    ...overrides,
  };
}

/** Credentials in the environment, as `bakery --backend aws` checks for before any call (mocked clients never use them). */
export const FAKE_CREDENTIALS = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'not-a-secret' } as const;
