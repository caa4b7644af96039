/**
 * Commands start fast (#16.2): a read command loads only what it uses. Each command runs
 * `bin/bakery.mjs` in a child Node.js with a resolve hook that records every module the
 * process loads (import and require alike); the graph must not reach the AWS SDK, Slack,
 * the zip libraries or the state-machine runner. This checks behaviour, not time: the
 * bench (`npm run bench`) measures how fast.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { BIN } from '../helpers/cli.ts';
import { NODE22 } from '../helpers/local-bake.ts';

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

async function modulesOf(args: string[]): Promise<string[]> {
  const out = path.join(dir, `${args.join('_').replace(/\W/g, '')}.txt`);
  await run(NODE22, ['--import', HOOK, BIN, ...args], {
    env: { ...process.env, BAKERY_HOME: path.join(dir, 'home'), BAKERY_BACKEND: 'local', RECORD_IMPORTS_TO: out },
    cwd: dir,
  }).catch((error: { code?: number }) => {
    // drift and verify exit non-zero on an empty home; only what was loaded matters here.
    if (typeof error.code !== 'number') throw error;
  });
  return (await readFile(out, 'utf8')).split('\n').filter(Boolean);
}

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

describe('what the CLI states without importing the cores', () => {
  it('prune keeps as many manifests by default as the prune core does', async () => {
    const [{ DEFAULT_KEEP: cli }, { DEFAULT_KEEP: core }] = await Promise.all([
      import('../../src/cli/integrity.ts'),
      import('../../src/cores/prune.ts'),
    ]);
    expect(cli).toBe(core);
  });
});
