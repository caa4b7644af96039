/**
 * Commands start fast (#16.2): a read command loads only what it uses. Each command runs
 * `bin/bakery.mjs` in a child Node.js with a resolve hook that records every module the
 * process loads (import and require alike); the graph must not reach the AWS SDK, Slack,
 * the zip libraries or the state-machine runner. A bake that is up to date (#16.1) loads
 * what checks and decides, not what bakes. This checks behaviour, not time: the bench
 * (`npm run bench`) measures how fast.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { runBake } from '../../src/local/runner.ts';
import { BIN } from '../helpers/cli.ts';
import { makeWorkspace, NODE22, type Workspace } from '../helpers/local-bake.ts';

const run = promisify(execFile);
const HOOK = path.join(PROJECT_ROOT, 'test', 'helpers', 'record-imports.mjs');

/** Packages a read command must not load on the local backend. */
const HEAVY = ['@aws-sdk/', '@smithy/', '@slack/', 'aws-local-stepfunctions', 'yazl', 'yauzl', 'asl-validator', 'yaml'];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-startup-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The modules `bakery <args>` loads (on an empty home unless `home` is given), and what it printed. */
async function traced(args: string[], home = path.join(dir, 'home')): Promise<{ modules: string[]; stdout: string }> {
  const out = path.join(dir, `${args.join('_').replace(/\W/g, '')}.txt`);
  const { stdout } = await run(NODE22, ['--import', HOOK, BIN, ...args], {
    env: { ...process.env, BAKERY_HOME: home, BAKERY_BACKEND: 'local', RECORD_IMPORTS_TO: out },
    cwd: dir,
  }).catch((error: { code?: number; stdout?: string }) => {
    // drift and verify exit non-zero on an empty home; only what was loaded matters here.
    if (typeof error.code !== 'number') throw error;
    return { stdout: error.stdout ?? '' };
  });
  return { modules: (await readFile(out, 'utf8')).split('\n').filter(Boolean), stdout };
}

const modulesOf = async (args: string[]): Promise<string[]> => (await traced(args)).modules;

const heavy = (modules: string[]) => modules.filter((url) => HEAVY.some((name) => url.includes(`/node_modules/${name}`)));

describe('bakery read commands start without the heavy libraries', () => {
  for (const args of [['status'], ['status', '--json'], ['history'], ['drift'], ['executions'], ['--help'], ['--version']]) {
    it(`bakery ${args.join(' ')}`, async () => {
      const modules = await modulesOf(args);
      expect(modules.some((url) => url.endsWith('/src/cli/program.ts'))).toBe(true);
      expect(heavy(modules)).toEqual([]);
    });
  }

  it('bakery verify loads its zip reader, but neither the AWS SDK, nor Slack, nor the state-machine runner', async () => {
    const modules = await modulesOf(['verify', 'no-such-bake']);
    expect(modules.filter((url) => /\/node_modules\/(@aws-sdk|@smithy|@slack|aws-local-stepfunctions)\//.test(url))).toEqual([]);
  });

  it('the hook sees the heavy libraries where a command does load them (bakery resume of an unknown bake loads the runner)', async () => {
    const modules = await modulesOf(['resume', 'no-such-bake']);
    expect(modules.some((url) => url.includes('/node_modules/aws-local-stepfunctions/'))).toBe(true);
  });
});

/** What only a bake that runs needs: the state machine, the ports that build, invoke, notify and record, the zip libraries. */
const BAKING = [
  /\/node_modules\/(@aws-sdk|@smithy|@slack|aws-local-stepfunctions|asl-validator|yazl|yauzl)\//,
  /\/src\/local\/(runner|asl|definition)\.ts$/,
  /\/src\/compose\/local\.ts$/,
  /\/src\/adapters\/local\/(image-builder|invoker|notifier|lazy-notifier|slack|slack-settings)\.ts$/,
  /\/src\/runtime-api\//,
  /\/src\/zip\/(deterministic|writer|deflate|format|inspect)\.ts$/,
  /\/src\/cores\/(record|approval|validate|layer|version|release)\.ts$/,
];

describe('bakery bake of an unchanged spec decides without loading what bakes', { timeout: 120_000 }, () => {
  let ws: Workspace;
  beforeAll(async () => {
    // A live release of the example to be up to date with (fake build: what is asserted is the rebake).
    ws = await makeWorkspace();
    const released = await runBake(ws.request('first-release'), { deps: ws.deps, approve: 'auto', approver: 'tester', retryIntervalMs: 0 });
    if (released.status !== 'succeeded') throw new Error(`the first release ended ${released.status}`);
  });
  afterAll(async () => {
    await ws?.cleanup();
  });

  it('bakery bake <unchanged spec>: up to date, on the decision-only composition', async () => {
    const { modules, stdout } = await traced(['bake', ws.specFile, '--approve'], ws.home.root);
    expect(stdout).toContain('up to date: hello:live is already first-release');
    expect(modules.some((url) => url.endsWith('/src/compose/local-decision.ts'))).toBe(true);
    expect(modules.some((url) => url.endsWith('/src/cores/uptodate.ts'))).toBe(true);
    expect(modules.filter((url) => BAKING.some((re) => re.test(url)))).toEqual([]);
  });

  it('the same patterns see what composing a bake loads (bakery resume of an unknown bake loads the runner and every port)', async () => {
    const modules = await modulesOf(['resume', 'no-such-bake']);
    const seen = BAKING.filter((re) => modules.some((url) => re.test(url)));
    expect(seen).toEqual(BAKING);
  });
});

describe('what the CLI states without importing the cores', () => {
  it('prune keeps as many manifests by default as the prune core does', async () => {
    const [{ DEFAULT_KEEP: cli }, { DEFAULT_KEEP: core }] = await Promise.all([
      import('../../src/cli/integrity.ts'),
      import('../../src/cores/prune.ts'),
    ]);
    expect(cli).toBe(core);
  });
});
