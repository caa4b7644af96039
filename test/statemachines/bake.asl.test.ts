/**
 * The real `statemachines/bake.asl.json`, run in-process by the local runner through
 * its success path and every Catch path. The ports are the local adapters on a fresh
 * state directory; single ports are swapped for fakes to make one stage fail, and the
 * image build is faked except where a test says otherwise.
 */
import { createHash } from 'node:crypto';
import { appendFile, copyFile, readFile, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { renderTo } from '../../src/cli/render.ts';
import { decideApproval } from '../../src/cores/approval.ts';
import { manifestKey, type PinManifest } from '../../src/cores/record.ts';
import { AlreadyDecidedError, ApprovalExpiredError, PublishVersionError, StateDirError, TransientBackendError } from '../../src/errors.ts';
import { type RunOutcome, runBake, type UpToDateOutcome } from '../../src/local/runner.ts';
import type { LedgerEntry } from '../../src/ports/storage.ts';
import { networkIsolation } from '../../src/runtime-api/sandbox.ts';
import type { ValidationReport } from '../../src/state.ts';
import { unzipTo } from '../../src/zip/deterministic.ts';
import { listTree } from '../../src/zip/tree.ts';
import {
  approvalRequested,
  FakeImageBuilder,
  makeWorkspace,
  type SpecJson,
  seedLiveRelease,
  type Workspace,
} from '../helpers/local-bake.ts';
import { rejection } from '../helpers/rejection.ts';

const TASK_STATES = [
  'ResolveBake',
  'BuildImage',
  'PublishLayer',
  'PublishVersion',
  'Validate',
  'RequestApproval',
  'Release',
  'RecordSuccess',
];
const LAYER = 'hello-node22';
const sha256Of = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

let workspaces: Workspace[] = [];
afterEach(async () => {
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

async function workspace(options: Parameters<typeof makeWorkspace>[0] = {}): Promise<Workspace> {
  const ws = await makeWorkspace(options);
  workspaces.push(ws);
  return ws;
}

async function bake(
  ws: Workspace,
  bakeId: string,
  options: { approve?: 'auto' | 'wait'; lines?: string[] } = {},
): Promise<RunOutcome | UpToDateOutcome> {
  const lines = options.lines ?? [];
  return runBake(ws.request(bakeId), {
    deps: ws.deps,
    approve: options.approve ?? 'auto',
    approver: 'tester',
    retryIntervalMs: 0,
    onEvent: renderTo((line) => lines.push(line)),
  });
}

/** The bake released; otherwise the test fails saying where and why the bake failed. */
function expectSucceeded(outcome: RunOutcome | UpToDateOutcome): asserts outcome is Extract<RunOutcome, { status: 'succeeded' }> {
  if (outcome.status !== 'succeeded')
    expect.fail(
      outcome.status === 'failed' ? `bake failed in ${outcome.state}: ${outcome.error}: ${outcome.cause}` : 'the bake ended up to date',
    );
}

/** The outcome is a failure in `state` with the original error; the ledger's last entry says the same. */
async function expectFailure(ws: Workspace, outcome: RunOutcome | UpToDateOutcome, state: string, error: string, cause: string | RegExp) {
  expect(outcome).toMatchObject({ status: 'failed', state, error });
  if (outcome.status !== 'failed') return;
  if (typeof cause === 'string') expect(outcome.cause).toContain(cause);
  else expect(outcome.cause).toMatch(cause);
  const ledger = await ws.deps.ledger.list();
  expect(ledger).toHaveLength(1);
  expect(ledger[0]).toMatchObject({ type: 'failed', state, error, cause: outcome.cause });
}

const validationReport = (ws: Workspace, bakeId: string) =>
  ws.deps.artefacts.getJson<ValidationReport>(`reports/${bakeId}/validation.json`);
const manifest = (ws: Workspace, bakeId: string) => ws.deps.artefacts.getJson<PinManifest>(manifestKey(bakeId));
const liveAlias = (ws: Workspace) => ws.deps.functions.getAlias('hello', 'live');
const entered = (lines: string[]) => lines.filter((l) => l.startsWith('▸ ')).map((l) => l.slice(2));

describe('bake.asl.json on the local runner', () => {
  describe('success path', () => {
    it('releases: the alias points at the new version, one released ledger entry, the manifest stored', async () => {
      // Prepare: the example's three validation cases.
      const ws = await workspace({ cases: 'all' });
      const before = await seedLiveRelease(ws);
      const lines: string[] = [];

      // Act
      const outcome = await bake(ws, 'bake-ok', { lines });

      // Assess
      expectSucceeded(outcome);
      expect(entered(lines)).toEqual(TASK_STATES);
      const versions = await ws.deps.functions.listVersions('hello');
      expect(versions.map((v) => v.version)).toEqual(['1', '2']);
      const layers = await ws.deps.layers.list(LAYER);
      expect(layers).toHaveLength(1);
      const [layer] = layers;
      if (!layer) return;
      expect(versions[1]?.layers).toEqual([layer.arn]);
      expect(await liveAlias(ws)).toMatchObject({ version: '2' });
      expect((await liveAlias(ws))?.revisionId).not.toBe(before.revisionId);

      const ledger = await ws.deps.ledger.list();
      expect(ledger).toEqual([
        {
          type: 'released',
          bakeId: 'bake-ok',
          at: expect.any(String),
          trigger: { type: 'cli', user: 'tester' },
          layer: { arn: layer.arn, version: 1, codeSha256: layer.codeSha256 },
          functions: [{ name: 'hello', alias: 'live', from: '1', to: '2', changed: true }],
          manifest: outcome.output.record.manifest,
        },
      ] satisfies LedgerEntry[]);

      const stored = await manifest(ws, 'bake-ok');
      expect(outcome.output.record.manifest.uri).toBe(pathToFileURL(ws.home.path('artefacts', manifestKey('bake-ok'))).href);
      expect(stored).toMatchObject({
        schemaVersion: 1,
        bakeId: 'bake-ok',
        status: 'released',
        layer: { arn: layer.arn, codeSha256: layer.codeSha256 },
        functions: [{ name: 'hello', version: '2', alias: 'live' }],
        approval: { decision: 'approved', by: 'tester' },
        release: { functions: [{ name: 'hello', from: '1', to: '2', changed: true }] },
        failure: null,
      });
      // Validation ran the function through the real bootstrap on the project's Node 22.
      const report = await validationReport(ws, 'bake-ok');
      expect(report?.passed).toBe(true);
      expect(report?.functions[0]?.cases.map((c) => c.passed)).toEqual([true, true, true]);
    });

    it('builds the runtime image once and releases a first version on it', { timeout: 60_000 }, async () => {
      // Prepare: the real local build of the node22 documents, with a stand-in node (the
      // 120 MB binary is what test/recipes/node22.test.ts and the CLI's e2e test build).
      const ws = await workspace({ realBuild: 'fixture' });

      // Act
      const outcome = await bake(ws, 'bake-real');

      // Assess
      expectSucceeded(outcome);
      expect(outcome.output.image?.cacheHit).toBe(false);
      expect(outcome.output.release?.functions).toEqual([{ name: 'hello', alias: 'live', from: null, to: '1', changed: true }]);
      // The layer holds the build's tree: the pinned node (the stand-in's bytes), the bootstrap and the runtime loop.
      const [layer] = await ws.deps.layers.list(LAYER);
      const stored = await ws.deps.layers.getStored(layer?.arn ?? '');
      const tree = path.join(ws.dir, 'layer-tree');
      await unzipTo(stored?.zipPath ?? '', tree);
      expect(
        (await listTree(tree))
          .filter((e) => e.kind === 'file')
          .map((e) => e.name)
          .sort(),
      ).toEqual(['bin/node', 'bootstrap', 'runtime/index.mjs']);
      expect(await sha256Of(path.join(tree, 'bin/node'))).toBe(await sha256Of(path.join(ws.dir, 'layers/node22/fixture/node')));
      expect(await liveAlias(ws)).toMatchObject({ version: '1' });
    });
  });

  describe('a failure in each Task state', () => {
    it('ResolveBake: fails with UnknownRecipeError, records it under the requested bake id, builds nothing', async () => {
      // Prepare
      const ws = await workspace({
        spec: (spec) => {
          spec.runtime.recipe = 'node99';
        },
      });
      const before = await seedLiveRelease(ws);

      // Act
      const lines: string[] = [];
      const outcome = await bake(ws, 'bake-resolve', { lines });

      // Assess
      await expectFailure(ws, outcome, 'ResolveBake', 'UnknownRecipeError', 'unknown runtime recipe "node99"');
      expect(entered(lines)).toEqual(['ResolveBake', 'RecordFailure']);
      const [entry] = await ws.deps.ledger.list();
      expect(entry).toMatchObject({ bakeId: 'bake-resolve', state: 'ResolveBake' });
      expect(entry?.type === 'failed' ? entry.manifest?.uri : undefined).toMatch(/manifests\/bake-resolve\.json$/);
      expect((ws.deps.imageBuilder as FakeImageBuilder).started).toEqual([]);
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('BuildImage: a real build with a wrong checksum pin fails with ImageBuildFailedError, and no layer exists', async () => {
      // Prepare
      const ws = await workspace({
        realBuild: 'fixture',
        spec: (spec) => {
          spec.runtime.parameters = { NodeSha256: '0'.repeat(64) };
        },
      });
      const before = await seedLiveRelease(ws);

      // Act
      const outcome = await bake(ws, 'bake-build');

      // Assess
      await expectFailure(ws, outcome, 'BuildImage', 'ImageBuildFailedError', /checksum mismatch[\s\S]*\b0{64}\b/);
      expect(await ws.deps.layers.list(LAYER)).toEqual([]);
      expect((await ws.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1']);
      expect(await liveAlias(ws)).toEqual(before);
      expect(await manifest(ws, 'bake-build')).toMatchObject({ status: 'failed', layer: null, failure: { state: 'BuildImage' } });
    });

    it('PublishLayer: bytes altered on the way fail with LayerIntegrityError, and no function version is published', async () => {
      // Prepare
      const ws = await workspace();
      const before = await seedLiveRelease(ws);
      const publish = ws.deps.layers.publish.bind(ws.deps.layers);
      ws.deps.layers.publish = async (input) => {
        const altered = path.join(ws.dir, 'altered.zip');
        await copyFile(input.zipFile, altered);
        await appendFile(altered, 'x');
        return publish({ ...input, zipFile: altered });
      };

      // Act
      const outcome = await bake(ws, 'bake-layer');

      // Assess
      await expectFailure(ws, outcome, 'PublishLayer', 'LayerIntegrityError', /stores CodeSha256 \S+, but the built zip is \S+/);
      expect((await ws.deps.functions.listVersions('hello')).map((v) => v.version)).toEqual(['1']);
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('PublishVersion: a version with other code fails with PublishVersionError, and nothing is validated', async () => {
      // Prepare
      const ws = await workspace();
      const before = await seedLiveRelease(ws);
      const publishVersion = ws.deps.functions.publishVersion.bind(ws.deps.functions);
      ws.deps.functions.publishVersion = async (input) => {
        const altered = path.join(ws.dir, 'altered-code.zip');
        await copyFile(input.codeFile, altered);
        await appendFile(altered, 'x');
        return publishVersion({ ...input, codeFile: altered });
      };

      // Act
      const outcome = await bake(ws, 'bake-version');

      // Assess
      await expectFailure(ws, outcome, 'PublishVersion', 'PublishVersionError', /^hello version 2 has CodeSha256 \S+, expected \S+$/);
      expect(await validationReport(ws, 'bake-version')).toBeUndefined();
      expect(await ws.deps.approvals.findByBake('bake-version')).toBeUndefined();
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('Validate: a failing case fails with ValidationFailedError and its diff; nobody is asked, the alias stays', async () => {
      // Prepare: the example's three validation cases, the first one's expectation wrong.
      const ws = await workspace({
        cases: 'all',
        spec: (spec) => {
          const [fn] = spec.functions;
          if (fn?.validation.cases[0]) fn.validation.cases[0].expect = { match: 'subset', result: { message: 'Hello, nobody!' } };
        },
      });
      const before = await seedLiveRelease(ws);

      // Act
      const outcome = await bake(ws, 'bake-validate');

      // Assess
      await expectFailure(ws, outcome, 'Validate', 'ValidationFailedError', '$.message: expected "Hello, nobody!", got "Hello, bakery!"');
      const report = await validationReport(ws, 'bake-validate');
      expect(report?.passed).toBe(false);
      expect(report?.functions[0]?.cases.map((c) => c.passed)).toEqual([false, true, true]);
      // The failure manifest carries the report too.
      expect((await manifest(ws, 'bake-validate'))?.validation).toEqual(report);
      expect(await ws.deps.approvals.findByBake('bake-validate')).toBeUndefined();
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('Validate: code that needs a network at run time fails with ArtefactNotSelfContainedError; the alias stays', async () => {
      // Prepare: a function that calls a server on this machine's loopback, which only a
      // sandbox with the host's network can reach.
      const server = http.createServer((_req, res) => res.end('from the network'));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const ws = await workspace({
        spec: (spec) => {
          const [fn] = spec.functions;
          if (fn) fn.validation.cases = [{ name: 'fetches', event: { url }, expect: { match: 'exact', result: 'from the network' } }];
        },
      });
      await writeFile(
        path.join(ws.dir, 'project', 'src', 'index.mjs'),
        'export const handler = async (event) => (await fetch(event.url, { signal: AbortSignal.timeout(1000) })).text();\n',
      );
      const before = await seedLiveRelease(ws);
      const isolation = await networkIsolation();

      try {
        // Act
        const outcome = await bake(ws, 'bake-offline');

        // Assess
        if (!isolation.available) {
          expect(outcome.status).toBe('succeeded');
          expect((await validationReport(ws, 'bake-offline'))?.functions[0]?.selfContained).toMatchObject({
            checked: false,
            reason: isolation.reason,
          });
          return;
        }
        await expectFailure(ws, outcome, 'Validate', 'ArtefactNotSelfContainedError', 'case "fetches" fails only without a network');
        const report = await validationReport(ws, 'bake-offline');
        expect(report?.functions[0]?.cases.map((c) => c.passed)).toEqual([true]);
        expect(report?.functions[0]?.selfContained).toMatchObject({ checked: true, passed: false });
        expect(await ws.deps.approvals.findByBake('bake-offline')).toBeUndefined();
        expect(await liveAlias(ws)).toEqual(before);
      } finally {
        server.close();
      }
    });

    it('RequestApproval: a rejection from another terminal fails with ApprovalRejectedError and the reason', async () => {
      // Prepare
      const ws = await workspace();
      const before = await seedLiveRelease(ws);
      const asked = approvalRequested(ws.deps);

      // Act
      const running = bake(ws, 'bake-reject', { approve: 'wait' });
      const record = await asked;
      await decideApproval({ ref: record.bakeId, outcome: 'rejected', by: 'carol', reason: 'not on a Friday' }, ws.otherTerminal());
      const outcome = await running;

      // Assess
      await expectFailure(ws, outcome, 'RequestApproval', 'ApprovalRejectedError', 'rejected by carol: not on a Friday');
      expect((await ws.deps.approvals.get(record.id))?.decision).toMatchObject({ outcome: 'rejected', by: 'carol' });
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('Release: an alias moved by someone else meanwhile fails with AliasConflictError, and is not overwritten', async () => {
      // Prepare
      const ws = await workspace();
      await seedLiveRelease(ws);
      const other = ws.otherTerminal();
      let concurrent: Awaited<ReturnType<typeof other.functions.setAlias>> | undefined;
      const setAlias = ws.deps.functions.setAlias.bind(ws.deps.functions);
      ws.deps.functions.setAlias = async (name, alias, version, expectedRevisionId) => {
        const current = await other.functions.getAlias(name, alias);
        if (current && !concurrent) concurrent = await other.functions.setAlias(name, alias, current.version, current.revisionId);
        return setAlias(name, alias, version, expectedRevisionId);
      };

      // Act
      const outcome = await bake(ws, 'bake-release');

      // Assess
      await expectFailure(ws, outcome, 'Release', 'AliasConflictError', 'alias hello:live changed while we were releasing');
      expect(concurrent).toBeDefined();
      expect(await liveAlias(ws)).toEqual(concurrent);
      expect(await manifest(ws, 'bake-release')).toMatchObject({ status: 'failed', release: null, approval: { decision: 'approved' } });
    });

    it('RecordSuccess: a ledger that cannot be written undoes the release and fails the bake', async () => {
      // Prepare
      const ws = await workspace();
      const before = await seedLiveRelease(ws);
      const append = ws.deps.ledger.append.bind(ws.deps.ledger);
      ws.deps.ledger.append = async (entry) => {
        if (entry.type === 'released') throw new StateDirError('ledger.jsonl is read-only');
        return append(entry);
      };

      // Act
      const outcome = await bake(ws, 'bake-record');

      // Assess
      await expectFailure(ws, outcome, 'RecordSuccess', 'StateDirError', 'ledger.jsonl is read-only');
      // The alias had moved to 2; UndoRelease put it back on 1 (a new revision of the same target).
      expect(await liveAlias(ws)).toMatchObject({ version: before?.version ?? '1' });
      expect(outcome.status === 'failed' ? outcome.cause : '').toContain('the release was undone: every alias is back where it was');
      expect(await manifest(ws, 'bake-record')).toMatchObject({
        status: 'failed',
        release: { functions: [{ from: '1', to: '2', changed: true }] },
        failure: { state: 'RecordSuccess', error: 'StateDirError' },
      });
    });

    it('RecordSuccess: when the undo finds the alias moved again, it leaves it and says so', async () => {
      // Prepare
      const ws = await workspace();
      await seedLiveRelease(ws);
      const append = ws.deps.ledger.append.bind(ws.deps.ledger);
      ws.deps.ledger.append = async (entry) => {
        if (entry.type === 'released') {
          // Someone moves live by hand between the release and its recording.
          const current = await ws.deps.functions.getAlias('hello', 'live');
          await ws.deps.functions.setAlias('hello', 'live', '1', current?.revisionId ?? null);
          throw new StateDirError('ledger.jsonl is read-only');
        }
        return append(entry);
      };

      // Act
      const outcome = await bake(ws, 'bake-record-moved');

      // Assess
      await expectFailure(
        ws,
        outcome,
        'RecordSuccess',
        'StateDirError',
        'the release was undone except hello:live (it is on 1 now, not 2)',
      );
      expect(await liveAlias(ws)).toMatchObject({ version: '1' });
    });
  });

  describe('when the failure cannot be recorded', () => {
    it('ends in FailureNotRecorded with the error of RecordFailure', async () => {
      // Prepare
      const ws = await workspace();
      const before = await seedLiveRelease(ws);
      ws.deps.imageBuilder = new FakeImageBuilder(ws.deps.callbacks, ws.runtimeTree, {
        error: 'ImageBuildFailedError',
        cause: 'component step FetchNode failed',
      });
      ws.deps.ledger.append = async () => {
        throw new StateDirError('ledger.jsonl is read-only');
      };

      // Act
      const lines: string[] = [];
      const outcome = await bake(ws, 'bake-unrecorded', { lines });

      // Assess
      // BakeFailed would end with ImageBuildFailedError; FailureNotRecorded ends with the recording error.
      expect(outcome).toEqual({
        status: 'failed',
        bakeId: 'bake-unrecorded',
        state: 'FailureNotRecorded',
        error: 'StateDirError',
        cause: 'ledger.jsonl is read-only',
      });
      expect(entered(lines)).toEqual(['ResolveBake', 'BuildImage', 'RecordFailure']);
      expect(await ws.deps.ledger.list()).toEqual([]);
      expect(await ws.deps.layers.list(LAYER)).toEqual([]);
      expect(await liveAlias(ws)).toEqual(before);
    });
  });

  describe('approval', () => {
    it('times out with ApprovalTimedOutError when nobody decides within approval.timeoutSeconds', async () => {
      // Prepare
      const ws = await workspace({
        spec: (spec: SpecJson) => {
          spec.approval.timeoutSeconds = 1;
        },
      });
      const before = await seedLiveRelease(ws);
      const asked = approvalRequested(ws.deps);

      // Act
      const outcome = await bake(ws, 'bake-timeout', { approve: 'wait' });

      // Assess
      await expectFailure(ws, outcome, 'RequestApproval', 'ApprovalTimedOutError', 'nobody decided within 1 seconds; nothing was released');
      const record = await asked;
      // RecordFailure closed the approval, so that a click from now on changes nothing.
      expect((await ws.deps.approvals.get(record.id))?.decision).toMatchObject({ outcome: 'expired', by: 'bakery' });
      const late = await rejection(decideApproval({ ref: record.id, outcome: 'approved', by: 'dave' }, ws.otherTerminal()));
      expect(late).toBeInstanceOf(ApprovalExpiredError);
      expect(Date.parse(record.expiresAt) - Date.parse(record.createdAt)).toBe(1000);
      expect(await liveAlias(ws)).toEqual(before);
    });

    it('releases once approved from another terminal, and refuses a second decision', async () => {
      // Prepare
      const ws = await workspace();
      await seedLiveRelease(ws);
      const asked = approvalRequested(ws.deps);
      const other = ws.otherTerminal();

      // Act
      const running = bake(ws, 'bake-approve', { approve: 'wait' });
      const record = await asked;
      expect(await liveAlias(ws)).toMatchObject({ version: '1' }); // nothing moves while waiting
      await decideApproval({ ref: 'bake-approve', outcome: 'approved', by: 'dave' }, other);
      const outcome = await running;
      const second = await rejection(decideApproval({ ref: record.id, outcome: 'rejected', by: 'erin' }, other));

      // Assess
      expectSucceeded(outcome);
      expect(outcome.output.approval).toEqual({
        approvalId: record.id,
        decision: 'approved',
        by: 'dave',
        at: expect.any(String),
        live: [{ name: 'hello', alias: 'live', version: '1', weights: {}, revisionId: expect.any(String) }],
      });
      expect(await liveAlias(ws)).toMatchObject({ version: '2' });
      expect(second).toBeInstanceOf(AlreadyDecidedError);
      expect((await ws.deps.approvals.get(record.id))?.decision).toMatchObject({ outcome: 'approved', by: 'dave' });
    });
  });

  describe('retry', () => {
    it('retries a TransientBackendError and succeeds', async () => {
      // Prepare
      const ws = await workspace();
      let calls = 0;
      const publishVersion = ws.deps.functions.publishVersion.bind(ws.deps.functions);
      ws.deps.functions.publishVersion = async (input) => {
        calls += 1;
        if (calls === 1) throw new TransientBackendError('throttled');
        return publishVersion(input);
      };
      const lines: string[] = [];

      // Act
      const outcome = await bake(ws, 'bake-retry', { lines });

      // Assess
      expectSucceeded(outcome);
      expect(calls).toBe(2);
      expect(lines).toContain('↻ PublishVersion: retry 1');
      expect(await liveAlias(ws)).toMatchObject({ version: '1' });
    });

    it('does not retry an error that is not transient', async () => {
      // Prepare
      const ws = await workspace();
      let calls = 0;
      ws.deps.functions.publishVersion = async () => {
        calls += 1;
        throw new PublishVersionError('refused');
      };

      // Act
      const outcome = await bake(ws, 'bake-noretry');

      // Assess
      await expectFailure(ws, outcome, 'PublishVersion', 'PublishVersionError', 'refused');
      expect(calls).toBe(1);
    });

    it('gives up after MaxAttempts retries and fails with the transient error', async () => {
      // Prepare
      const ws = await workspace();
      let calls = 0;
      ws.deps.functions.publishVersion = async () => {
        calls += 1;
        throw new TransientBackendError('still throttled');
      };

      // Act
      const outcome = await bake(ws, 'bake-giveup');

      // Assess
      await expectFailure(ws, outcome, 'PublishVersion', 'TransientBackendError', 'still throttled');
      expect(calls).toBe(1 + 3);
    });
  });
});
