import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { decideApproval } from '../../src/cores/approval.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { listExecutions } from '../../src/local/journal.ts';
import type { ServeInfo } from '../../src/serve/serve.ts';
import { type ServeHandle, startServe } from '../../src/serve/serve.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { CACHED_START, makeWorkspace, NODE22, type Workspace } from '../helpers/local-bake.ts';

const CHILD = path.join(PROJECT_ROOT, 'test', 'helpers', 'serve-child.ts');

/** Poll `probe` until it gives a value; bounded, so a server that went wrong fails the test instead of hanging it. */
async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('bakery serve survives a restart', () => {
  let ws: Workspace | undefined;
  let child: ChildProcess | undefined;
  let serve: ServeHandle | undefined;

  afterEach(async () => {
    child?.kill('SIGKILL');
    await serve?.close();
    await ws?.cleanup();
  });

  /** serve in a child process (stopping every bake at `pauseAt`, if given), and an upload of the example to it. */
  async function serveChildWithUpload(workspace: Workspace, pauseAt?: string) {
    const proc = spawn(NODE22, [...CACHED_START, CHILD, workspace.dir, ...(pauseAt ? [pauseAt] : [])], { cwd: PROJECT_ROOT });
    child = proc;
    let output = '';
    proc.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    proc.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<void>((resolve) => proc.on('close', () => resolve()));
    await waitFor(() => {
      if (proc.exitCode !== null) throw new Error(`serve ended:\n${output}`);
      return output.includes('ready\n') ? true : undefined;
    }, 'serve to start');
    const info = JSON.parse(await readFile(workspace.home.path('serve.json'), 'utf8')) as ServeInfo;
    const bundle = await readFile((await zipTree(path.dirname(workspace.specFile), path.join(workspace.dir, 'bundle.zip'))).file);
    const s3 = new S3Client({
      endpoint: info.s3.endpoint,
      forcePathStyle: true,
      region: info.s3.region,
      credentials: { accessKeyId: info.s3.accessKeyId, secretAccessKey: info.s3.secretAccessKey },
    });
    await s3.send(new PutObjectCommand({ Bucket: info.s3.bucket, Key: 'bakes/hello.zip', Body: bundle }));
    return { proc, exited, output: () => output };
  }

  it('a bake killed with serve in the middle of Validate is resumed by the next serve there, waits for approval, and releases once', async () => {
    // Prepare
    ws = await makeWorkspace();
    const home = ws.home;
    const { proc, exited, output } = await serveChildWithUpload(ws, 'Validate:entered');
    await waitFor(() => (output().includes('paused at Validate:entered') ? true : undefined), 'the bake to reach Validate');
    proc.kill('SIGKILL');
    await exited;
    const [interrupted] = await listExecutions(home);

    // Act
    serve = await startServe({ home, deps: ws.deps, user: 'tester', runOptions: { retryIntervalMs: 0, waitMs: 0 } });
    const approval = await waitFor(async () => {
      const [execution] = await listExecutions(home);
      return execution?.status === 'waiting' ? ws?.deps.approvals.findByBake(execution.bakeId) : undefined;
    }, 'the resumed bake to wait for approval');
    await decideApproval({ ref: approval.id, outcome: 'approved', by: 'tester' }, ws.deps);
    await serve.executions.settled();

    // Assess
    expect(interrupted).toMatchObject({ status: 'interrupted', state: 'Validate' });
    expect(serve.resumed).toEqual([interrupted?.bakeId]);
    const record = await serve.executions.get(interrupted?.bakeId ?? '');
    expect(record).toMatchObject({ status: 'succeeded', failure: null, restarts: 1 });
    // Resumed where it was: the states before Validate did not run again.
    expect(record?.states.map((s) => s.name).slice(0, 2)).toEqual(['Validate', 'RequestApproval']);
    expect((await ws.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1']);
    expect((await ws.deps.ledger.list()).filter((e) => e.bakeId === interrupted?.bakeId).map((e) => e.type)).toEqual(['released']);
  }, 120_000);

  it('a bake waiting for approval when serve is killed keeps waiting in the next serve, and approving it there releases it once', async () => {
    // Prepare: serve in a child process, and an upload that bakes up to the approval.
    ws = await makeWorkspace();
    const { proc, exited } = await serveChildWithUpload(ws);
    const home = ws.home;
    const waiting = await waitFor(
      async () => (await listExecutions(home)).find((e) => e.status === 'waiting'),
      'the bake to wait for approval',
    );

    // Act: kill serve (no clean stop), start it again on the same state directory.
    proc.kill('SIGKILL');
    await exited;
    serve = await startServe({ home: ws.home, deps: ws.deps, user: 'tester', runOptions: { retryIntervalMs: 0, waitMs: 0 } });

    // Assess: the interrupted bake was taken over and waits on the same approval.
    expect(serve.resumed).toEqual([waiting.bakeId]);
    const approval = await waitFor(async () => {
      const [execution] = await listExecutions(home);
      return execution?.status === 'waiting' ? ws?.deps.approvals.findByBake(waiting.bakeId) : undefined;
    }, 'the resumed bake to wait again');
    expect(approval.decision).toBeNull();
    expect(await ws.deps.functions.getAlias('hello', 'live')).toBeUndefined();

    await decideApproval({ ref: approval.id, outcome: 'approved', by: 'tester' }, ws.deps);
    await serve.executions.settled();
    expect(await serve.executions.get(waiting.bakeId)).toMatchObject({ status: 'succeeded', failure: null });
    expect((await ws.deps.functions.getAlias('hello', 'live'))?.version).toBe('1');
    expect((await ws.deps.ledger.list()).filter((e) => e.type === 'released' && e.bakeId === waiting.bakeId)).toHaveLength(1);
  }, 120_000);
});
