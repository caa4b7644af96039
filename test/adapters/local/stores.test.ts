import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalFunctionRegistry, LocalLayerRegistry } from '../../../src/adapters/local/registries.ts';
import { LocalApprovalStore, LocalLedger, LocalTaskCallbacks } from '../../../src/adapters/local/stores.ts';
import { AliasConflictError, AlreadyDecidedError, StateDirError } from '../../../src/errors.ts';
import type { ApprovalRecord } from '../../../src/ports/approval.ts';
import type { FunctionVersionInput } from '../../../src/ports/lambda.ts';
import { createFileExclusive, sha256File } from '../../../src/util/fsx.ts';

describe('local backend stores', () => {
  let root: string;
  let home: LocalHome;

  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-local-'));
    home = new LocalHome(path.join(root, 'home'));
    await home.ensure();
  });

  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  describe('createFileExclusive', () => {
    it('lets exactly one of many concurrent writers create the file', async () => {
      const target = path.join(root, 'once.json');
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => createFileExclusive(target, `writer ${i}`)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect((await readdir(root)).filter((n) => n.includes('.tmp'))).toEqual([]);
    });
  });

  describe('LocalHome', () => {
    it('refuses a state directory that is a file', async () => {
      const file = path.join(root, 'file');
      await writeFile(file, 'x');
      await expect(new LocalHome(file).ensure()).rejects.toThrow(StateDirError);
    });

    it('writes nothing when asked not to create', async () => {
      const missing = path.join(root, 'missing');
      await new LocalHome(missing).ensure({ create: false });
      await expect(readdir(missing)).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  describe('LocalLedger', () => {
    it('appends entries in order and ignores a line torn by a crash', async () => {
      const ledger = new LocalLedger(home);
      const entry = (bakeId: string) =>
        ({ type: 'failed', bakeId, at: '2026-01-01T00:00:00.000Z', state: 'Validate', error: 'E', cause: 'c', manifest: null }) as const;
      await ledger.append(entry('a'));
      await ledger.append(entry('b'));
      // A writer killed mid-append leaves a partial line without its newline.
      await appendFile(home.path('ledger.jsonl'), '{"type":"released","bakeId":"c","at":');
      const entries = await ledger.list();
      expect(entries.map((e) => e.bakeId)).toEqual(['a', 'b']);
    });

    it('appends a bake end once: a retry finds it (endOf) and appends nothing, other bakes and types are their own', async () => {
      // Prepare
      const ledger = new LocalLedger(home);
      const failed = (bakeId: string, at: string) =>
        ({ type: 'failed', bakeId, at, state: 'Validate', error: 'E', cause: 'c', manifest: null }) as const;

      // Act: RecordFailure, retried twice (each attempt with its own time), and another bake.
      await ledger.append(failed('hello-1', '2026-01-01T00:00:00.000Z'));
      await ledger.append(failed('hello-1', '2026-01-01T00:00:05.000Z'));
      await ledger.append(failed('hello-1', '2026-01-01T00:00:15.000Z'));
      await ledger.append(failed('hello-2', '2026-01-01T00:01:00.000Z'));

      // Assess
      const lines = (await readFile(home.path('ledger.jsonl'), 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(await ledger.list()).toEqual([failed('hello-1', '2026-01-01T00:00:00.000Z'), failed('hello-2', '2026-01-01T00:01:00.000Z')]);
      expect(await ledger.endOf('hello-1', 'failed')).toEqual(failed('hello-1', '2026-01-01T00:00:00.000Z'));
      expect(await ledger.endOf('hello-1', 'released')).toBeUndefined();
    });

    it('completes a claimed bake end whose line a crash cut off, and shows one entry when two recorders raced', async () => {
      // Prepare: the claim of hello-1 exists, its line does not (killed in between).
      const ledger = new LocalLedger(home);
      const failed = (bakeId: string, at: string) =>
        ({ type: 'failed', bakeId, at, state: 'Validate', error: 'E', cause: 'c', manifest: null }) as const;
      await ledger.append(failed('hello-1', '2026-01-01T00:00:00.000Z'));
      await writeFile(home.path('ledger.jsonl'), '');

      // Act
      await ledger.append(failed('hello-1', '2026-01-01T00:00:09.000Z'));
      // Two recorders that both saw no line, each appending it.
      await appendFile(home.path('ledger.jsonl'), `${JSON.stringify(failed('hello-1', '2026-01-01T00:00:09.500Z'))}\n`);

      // Assess: the claimed (first) entry, once.
      expect(await ledger.list()).toEqual([failed('hello-1', '2026-01-01T00:00:00.000Z')]);
    });

    it('is empty before anything happened', async () => {
      await expect(new LocalLedger(new LocalHome(path.join(root, 'none'))).list()).resolves.toEqual([]);
    });
  });

  describe('LocalLayerRegistry', () => {
    it('numbers versions 1, 2, 3 under concurrency and reports the stored bytes hash', async () => {
      const layers = new LocalLayerRegistry(home);
      const zips = await Promise.all(
        [1, 2, 3].map(async (i) => {
          const file = path.join(root, `l${i}.zip`);
          await writeFile(file, `zip ${i}`);
          return { file, sha: await sha256File(file) };
        }),
      );
      const published = await Promise.all(
        zips.map((z) =>
          layers.publish({
            name: 'rt',
            description: 'd',
            zipFile: z.file,
            sha256Base64: z.sha.base64,
            size: z.sha.size,
            compatibleRuntimes: ['provided.al2023'],
            architectures: ['x86_64'],
          }),
        ),
      );
      expect(published.map((p) => p.version).sort()).toEqual([1, 2, 3]);
      for (const [i, p] of published.entries()) {
        expect(p.codeSha256).toBe(zips[i]?.sha.base64);
        expect(p.arn).toBe(`arn:aws:lambda:local:000000000000:layer:rt:${p.version}`);
      }
      const found = await layers.findByCodeSha256('rt', zips[1]?.sha.base64 ?? '');
      expect(found?.version).toBe(published[1]?.version);
      await expect(layers.findByCodeSha256('rt', 'nope')).resolves.toBeUndefined();
      await expect(layers.get(published[0]?.arn ?? '')).resolves.toMatchObject({ codeSha256: zips[0]?.sha.base64 });
    });
  });

  describe('LocalFunctionRegistry', () => {
    async function input(code: string, overrides: Partial<FunctionVersionInput> = {}): Promise<FunctionVersionInput> {
      const file = path.join(root, `${code}.zip`);
      await writeFile(file, code);
      const sha = await sha256File(file);
      return {
        name: 'fn',
        description: 'd',
        codeFile: file,
        codeSha256: sha.base64,
        handler: 'index.handler',
        runtime: 'provided.al2023',
        architecture: 'x86_64',
        memorySize: 128,
        timeout: 3,
        environment: {},
        layers: ['arn:aws:lambda:local:000000000000:layer:rt:1'],
        ...overrides,
      };
    }

    it('returns the latest version when nothing changed, a new one otherwise', async () => {
      const functions = new LocalFunctionRegistry(home);
      const one = await functions.publishVersion(await input('a'));
      const same = await functions.publishVersion(await input('a'));
      const env = await functions.publishVersion(await input('a', { environment: { X: '1' } }));
      const code = await functions.publishVersion(await input('b', { environment: { X: '1' } }));
      expect([one.version, same.version, env.version, code.version]).toEqual(['1', '1', '2', '3']);
    });

    it('moves an alias only from the revision that was read', async () => {
      const functions = new LocalFunctionRegistry(home);
      await functions.publishVersion(await input('a'));
      await functions.publishVersion(await input('b'));
      const created = await functions.setAlias('fn', 'live', '1', null);
      await expect(functions.setAlias('fn', 'live', '2', null)).rejects.toThrow(AliasConflictError);
      const moved = await functions.setAlias('fn', 'live', '2', created.revisionId);
      expect(moved.version).toBe('2');
      await expect(functions.setAlias('fn', 'live', '1', created.revisionId)).rejects.toThrow(AliasConflictError);
      await expect(functions.getAlias('fn', 'live')).resolves.toMatchObject({ version: '2', revisionId: moved.revisionId });
    });

    it('deletes an alias only from the revision that was read', async () => {
      const functions = new LocalFunctionRegistry(home);
      await functions.publishVersion(await input('a'));
      await functions.publishVersion(await input('b'));
      const created = await functions.setAlias('fn', 'live', '1', null);
      const moved = await functions.setAlias('fn', 'live', '2', created.revisionId);
      await expect(functions.deleteAlias('fn', 'live', created.revisionId)).rejects.toThrow(AliasConflictError);
      await functions.deleteAlias('fn', 'live', moved.revisionId);
      await expect(functions.getAlias('fn', 'live')).resolves.toBeUndefined();
    });

    it('lets only one of two concurrent moves from the same revision win', async () => {
      const functions = new LocalFunctionRegistry(home);
      await functions.publishVersion(await input('a'));
      await functions.publishVersion(await input('b'));
      await functions.publishVersion(await input('c'));
      const created = await functions.setAlias('fn', 'live', '1', null);
      const results = await Promise.allSettled([
        functions.setAlias('fn', 'live', '2', created.revisionId),
        functions.setAlias('fn', 'live', '3', created.revisionId),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(rejected.reason).toBeInstanceOf(AliasConflictError);
    });
  });

  describe('LocalApprovalStore', () => {
    const record: ApprovalRecord = {
      id: 'apr-1',
      bakeId: 'hello-1',
      taskToken: 'RequestApproval-abc',
      digest: 'd',
      approvers: [],
      createdAt: '2026-01-01T00:00:00.000Z',
      expiresAt: '2026-01-02T00:00:00.000Z',
      summary: {
        functions: [],
        layer: { arn: 'a', codeSha256: 'b', sha256Hex: 'c' },
        runtime: 'r',
        validation: { passed: true, cases: 1 },
      },
      message: null,
      decision: null,
    };

    it('decides once, even when two decisions race', async () => {
      const approvals = new LocalApprovalStore(home);
      await approvals.create(record);
      const at = '2026-01-01T01:00:00.000Z';
      const results = await Promise.allSettled([
        approvals.decide('apr-1', { outcome: 'approved', by: 'a', at, reason: null }),
        approvals.decide('apr-1', { outcome: 'rejected', by: 'b', at, reason: 'no' }),
      ]);
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toBeInstanceOf(AlreadyDecidedError);
      const stored = await approvals.get('apr-1');
      const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<ApprovalRecord>).value;
      expect(stored?.decision).toEqual(winner.decision);
      await expect(approvals.findByBake('hello-1')).resolves.toMatchObject({ id: 'apr-1' });
    });

    it('keeps where the request was posted, and finds the record by bake with it', async () => {
      const approvals = new LocalApprovalStore(home);
      await approvals.create(record);

      await approvals.setMessage('apr-1', { channel: 'C1', ts: '1.5' });

      await expect(approvals.get('apr-1')).resolves.toEqual({ ...record, message: { channel: 'C1', ts: '1.5' } });
      await expect(approvals.findByBake('hello-1')).resolves.toMatchObject({ id: 'apr-1', message: { channel: 'C1', ts: '1.5' } });
      await expect(approvals.setMessage('apr-none', { channel: 'C1', ts: '1' })).rejects.toThrow('no approval apr-none');
    });

    it('renews an undecided record with a new token, and a decision then carries that token', async () => {
      // Prepare
      const approvals = new LocalApprovalStore(home);
      await approvals.create(record);

      // Act
      const renewed = await approvals.renew('apr-1', { taskToken: 'RequestApproval-retry', expiresAt: '2026-01-03T00:00:00.000Z' });
      const decided = await approvals.decide('apr-1', { outcome: 'approved', by: 'a', at: '2026-01-01T02:00:00.000Z', reason: null });

      // Assess
      expect(renewed).toMatchObject({ taskToken: 'RequestApproval-retry', expiresAt: '2026-01-03T00:00:00.000Z', decision: null });
      expect(decided.taskToken).toBe('RequestApproval-retry');
      await expect(approvals.renew('apr-1', { taskToken: 'x', expiresAt: 'y' })).rejects.toThrow(AlreadyDecidedError);
      expect((await approvals.get('apr-1'))?.taskToken).toBe('RequestApproval-retry');
    });
  });

  describe('LocalTaskCallbacks', () => {
    it('settles a token once and hands the outcome to the waiter', async () => {
      const callbacks = new LocalTaskCallbacks(home);
      const waiting = callbacks.wait('tok-1', undefined, 10);
      await callbacks.succeed('tok-1', { ok: 1 });
      await expect(waiting).resolves.toEqual({ status: 'succeeded', output: { ok: 1 } });
      await expect(callbacks.fail('tok-1', 'E', 'c')).rejects.toThrow(AlreadyDecidedError);
    });

    it('stops waiting when aborted', async () => {
      const callbacks = new LocalTaskCallbacks(home);
      const abort = new AbortController();
      const waiting = callbacks.wait('tok-2', abort.signal, 10);
      abort.abort(new Error('execution ended'));
      await expect(waiting).rejects.toThrow('execution ended');
    });
  });
});
