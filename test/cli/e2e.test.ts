import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_SPEC_BYTES } from '../../src/cores/precheck.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { BIN, runBin as bakery, binEnv, type CliResult, EXAMPLE_SPEC as SPEC } from '../helpers/cli.ts';

const IMPORT_HOOK = path.join(PROJECT_ROOT, 'test', 'helpers', 'record-imports.mjs');

function startBake(args: string[], home: string): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: PROJECT_ROOT, env: binEnv(home) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => {
    stdout += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const done = new Promise<CliResult>((resolve) => child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr })));
  return { child, done };
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function ledger(home: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path.join(home, 'ledger.jsonl'), 'utf8');
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every file under `dir` with its size and modification time. */
async function listing(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file);
    out.set(path.relative(dir, file), `${info.size} ${info.mtimeMs}`);
  }
  return out;
}

const bakeIdOf = (stdout: string): string => {
  const match = /^bake (\S+):/m.exec(stdout);
  if (!match?.[1]) throw new Error(`no bake id in:\n${stdout}`);
  return match[1];
};

describe('bakery CLI, end to end on the example', () => {
  let home: string;
  let first: CliResult;

  beforeAll(async () => {
    home = await mkdtemp(path.join(os.tmpdir(), 'bakery-e2e-'));
    first = await bakery(['bake', SPEC, '--approve'], home);
  }, 120_000);

  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it('bakes, validates, approves and moves live to the new version', async () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const bakeId = bakeIdOf(first.stdout);
    for (const state of [
      'ResolveBake',
      'BuildImage',
      'PublishLayer',
      'PublishVersion',
      'Validate',
      'RequestApproval',
      'Release',
      'RecordSuccess',
    ]) {
      expect(first.stdout).toMatch(new RegExp(`✓ ${state} \\(\\d+\\.\\d s\\)`));
    }
    expect(first.stdout).toContain(`bake ${bakeId} released`);

    const status = await bakery(['status', '--json'], home);
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as { functions: Array<Record<string, unknown> & { layer: { sha256: string } }> };
    expect(parsed.functions).toHaveLength(1);
    expect(parsed.functions[0]).toMatchObject({ name: 'hello', alias: 'live', version: '1', bakeId });
    expect(parsed.functions[0]?.layer.sha256).toMatch(/^[0-9a-f]{64}$/);

    const entries = await ledger(home);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ type: 'released', bakeId, functions: [{ name: 'hello', alias: 'live', from: null, to: '1' }] });
  });

  it('ends an unchanged rebake up to date: exit 0, nothing built, asked or recorded', async () => {
    const before = await listing(home);
    const again = await bakery(['bake', SPEC, '--approve'], home);
    const after = await listing(home);
    // Only its own execution record is new; nothing else under BAKERY_HOME changed.
    const added = [...after.keys()].filter((f) => !before.has(f));
    expect(added).toEqual([expect.stringMatching(/^executions\/hello-[^/]+\.json$/)]);
    expect([...before].filter(([f, stamp]) => after.get(f) !== stamp)).toEqual([]);
    expect(again.code).toBe(0);
    const first = (await ledger(home)).filter((e) => e.type === 'released');
    expect(first).toHaveLength(1);
    expect(again.stdout).toContain(`up to date: hello:live is already ${first[0]?.bakeId} (same runtime, code and configuration)`);
    expect(again.stdout).not.toContain('RequestApproval');
    expect(JSON.parse((await bakery(['executions', '--json'], home)).stdout).executions.at(-1)).toMatchObject({
      status: 'upToDate',
      state: 'ResolveBake',
    });
  }, 120_000);

  it('decides an unchanged rebake without loading the state-machine library, Slack or the AWS SDK', async () => {
    const out = path.join(home, 'imports.txt');
    const traced = await bakery(['bake', SPEC, '--approve'], home, { RECORD_IMPORTS_TO: out }, ['--import', IMPORT_HOOK]);
    expect(traced.stdout).toContain('up to date: hello:live is already');
    const modules = (await readFile(out, 'utf8')).split('\n').filter(Boolean);
    expect(modules.some((url) => url.endsWith('/src/cores/uptodate.ts'))).toBe(true);
    expect(modules.filter((url) => /\/node_modules\/(aws-local-stepfunctions|@slack|@aws-sdk)\//.test(url))).toEqual([]);
  }, 120_000);

  it('adds no layer version when the same bytes are baked again with --force', async () => {
    const second = await bakery(['bake', SPEC, '--approve', '--force'], home);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('cache hit');
    expect(second.stdout).toContain('reused: same bytes as before');
    const versions = (await readdir(path.join(home, 'layers', 'hello-node22'))).filter((n) => n.endsWith('.json'));
    expect(versions).toEqual(['1.json']);
    const status = JSON.parse((await bakery(['status', '--json'], home)).stdout) as { functions: Array<{ version: string }> };
    expect(status.functions[0]?.version).toBe('1');
    expect((await ledger(home)).filter((e) => e.type === 'released')).toHaveLength(2);
  }, 120_000);

  it('waits for `bakery approve` from another process, and refuses a second decision', async () => {
    const changed = await mkdtemp(path.join(os.tmpdir(), 'bakery-e2e-spec-'));
    try {
      // Same recipe, new code: a new function version to approve.
      const spec = JSON.parse(await readFile(SPEC, 'utf8')) as { functions: Array<{ code: string }> };
      await mkdir(path.join(changed, 'src'));
      await writeFile(
        path.join(changed, 'src', 'index.mjs'),
        `${await readFile(path.join(PROJECT_ROOT, 'examples/hello/src/index.mjs'), 'utf8')}\n// v2\n`,
      );
      (spec.functions[0] as { code: string }).code = './src';
      const specFile = path.join(changed, 'bake.json');
      await writeFile(specFile, JSON.stringify(spec));

      const bake = startBake(['bake', specFile], home);
      const bakeId = await pendingBakeWait(home);
      const approve = await bakery(['approve', bakeId, '--by', 'alice'], home);
      expect(approve.code).toBe(0);
      // Locally the name given is recorded as it is: self-asserted, not verified.
      const approvals = path.join(home, 'approvals');
      const decisions = await Promise.all(
        (await readdir(approvals)).filter((f) => f.endsWith('.decision.json')).map((f) => readFile(path.join(approvals, f), 'utf8')),
      );
      expect(decisions.map((d) => JSON.parse(d) as { by: string; identity?: string }).find((d) => d.by === 'alice')).toMatchObject({
        identity: 'self-asserted',
      });
      const result = await bake.done;
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('approved by alice');
      expect(result.stdout).toContain('alias live → 2 (was 1)');

      const again = await bakery(['reject', bakeId, '--by', 'bob'], home);
      expect(again.code).toBe(2);
      expect(again.stderr).toContain('AlreadyDecidedError');
    } finally {
      await rm(changed, { recursive: true, force: true });
    }
  }, 120_000);

  it('releases nothing when the approver rejects', async () => {
    const changed = await mkdtemp(path.join(os.tmpdir(), 'bakery-e2e-spec-'));
    try {
      const spec = JSON.parse(await readFile(SPEC, 'utf8')) as { functions: Array<{ code: string }> };
      await mkdir(path.join(changed, 'src'));
      await writeFile(
        path.join(changed, 'src', 'index.mjs'),
        `${await readFile(path.join(PROJECT_ROOT, 'examples/hello/src/index.mjs'), 'utf8')}\n// v3\n`,
      );
      (spec.functions[0] as { code: string }).code = './src';
      const specFile = path.join(changed, 'bake.json');
      await writeFile(specFile, JSON.stringify(spec));

      const before = JSON.parse((await bakery(['status', '--json'], home)).stdout) as { functions: Array<{ version: string }> };
      const bake = startBake(['bake', specFile], home);
      const bakeId = await pendingBakeWait(home);
      const reject = await bakery(['reject', bakeId, '--by', 'carol', '--reason', 'not today'], home);
      expect(reject.code).toBe(0);
      const result = await bake.done;
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('failed in RequestApproval: ApprovalRejectedError');
      expect(result.stderr).toContain('not today');
      const after = JSON.parse((await bakery(['status', '--json'], home)).stdout) as { functions: Array<{ version: string }> };
      expect(after.functions[0]?.version).toBe(before.functions[0]?.version);
      const last = (await ledger(home)).at(-1);
      expect(last).toMatchObject({ type: 'failed', bakeId, state: 'RequestApproval', error: 'ApprovalRejectedError' });
    } finally {
      await rm(changed, { recursive: true, force: true });
    }
  }, 120_000);
});

/** The bake id of the newest undecided approval, once one exists. */
async function pendingBake(home: string): Promise<string | undefined> {
  const dir = path.join(home, 'approvals');
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.endsWith('.json') || name.endsWith('.decision.json')) continue;
    if (names.includes(name.replace(/\.json$/, '.decision.json'))) continue;
    const record = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as { bakeId: string };
    return record.bakeId;
  }
  return undefined;
}

const pendingBakeWait = (home: string) => waitFor(() => pendingBake(home));

describe('bakery CLI, bad input', () => {
  let scratch: string;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'bakery-bad-'));
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  async function expectNothingWritten(home: string) {
    await expect(readdir(home)).rejects.toMatchObject({ code: 'ENOENT' });
  }

  it('names a missing spec, exits 2 and writes nothing', async () => {
    const home = path.join(scratch, 'h1');
    const result = await bakery(['bake', 'nope/bake.json'], home);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('BakeSpecError: bake spec not found: nope/bake.json');
    await expectNothingWritten(home);
  });

  it('names the bad field of a malformed spec', async () => {
    const spec = JSON.parse(await readFile(SPEC, 'utf8')) as Record<string, unknown> & { functions: Array<Record<string, unknown>> };
    (spec.functions[0] as Record<string, unknown>).handler = 'no-dot';
    const file = path.join(scratch, 'bad.json');
    await writeFile(file, JSON.stringify(spec));
    const home = path.join(scratch, 'h2');
    const result = await bakery(['bake', file], home);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('BakeSpecError');
    expect(result.stderr).toContain('functions[0].handler');
    await expectNothingWritten(home);
  });

  it('refuses a spec over MAX_SPEC_BYTES as JSON (it travels in every state), exit 2, writing nothing', async () => {
    const dir = path.join(scratch, 'big');
    await cp(path.join(PROJECT_ROOT, 'examples', 'hello', 'src'), path.join(dir, 'src'), { recursive: true });
    const spec = JSON.parse(await readFile(SPEC, 'utf8')) as { functions: Array<{ validation: { cases: Array<{ event: object }> } }> };
    const firstCase = spec.functions[0]?.validation.cases[0] as { event: object };
    firstCase.event = { ...firstCase.event, pad: 'x'.repeat(MAX_SPEC_BYTES) };
    await writeFile(path.join(dir, 'bake.json'), JSON.stringify(spec));
    const home = path.join(scratch, 'h-big');
    const result = await bakery(['bake', path.join(dir, 'bake.json')], home);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(
      /BakeSpecError: .* cannot be baked; nothing was written:\n {2}- the spec is \d+ bytes as JSON; at most 32768/,
    );
    expect(result.stderr).toContain('Largest parts: functions[0].validation.cases[0].event');
    await expectNothingWritten(home);
  });

  it('rejects a spec that is not JSON', async () => {
    const file = path.join(scratch, 'broken.json');
    await writeFile(file, '{ "version": 1,');
    const result = await bakery(['bake', file], path.join(scratch, 'h3'));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('is not valid JSON');
  });

  it('names an unknown recipe and lists the known ones', async () => {
    const spec = JSON.parse(await readFile(SPEC, 'utf8')) as { runtime: { recipe: string }; functions: Array<{ code: string }> };
    spec.runtime.recipe = 'python99';
    (spec.functions[0] as { code: string }).code = path.join(PROJECT_ROOT, 'examples/hello/src');
    const file = path.join(scratch, 'unknown-recipe.json');
    await writeFile(file, JSON.stringify(spec));
    const home = path.join(scratch, 'h4');
    const result = await bakery(['bake', file], home);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('UnknownRecipeError: unknown runtime recipe "python99"');
    expect(result.stderr).toContain('Known recipes: node22');
    await expectNothingWritten(home);
  });

  it('refuses a state directory that is not a directory', async () => {
    const file = path.join(scratch, 'not-a-dir');
    await writeFile(file, 'x');
    const result = await bakery(['bake', SPEC], file);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`StateDirError: state directory ${file} is not a directory`);
  });

  it('exits 2 on an unknown command or a missing argument', async () => {
    expect((await bakery(['bake'], path.join(scratch, 'h5'))).code).toBe(2);
    expect((await bakery(['frobnicate'], path.join(scratch, 'h5'))).code).toBe(2);
  });

  it('names the missing configuration of the AWS backend, and refuses a local-only command there', async () => {
    const env = { BAKERY_BACKEND: 'aws' };
    const status = await bakery(['status'], path.join(scratch, 'h7'), env);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('ConfigError: missing or invalid configuration');
    const bake = await bakery(['bake', SPEC], path.join(scratch, 'h7'), env);
    expect(bake.code).toBe(2);
    expect(bake.stderr).toContain('`bakery bake` runs on the local backend only');
    await expectNothingWritten(path.join(scratch, 'h7'));
  });

  it('says so when approving a bake that has no approval', async () => {
    const home = path.join(scratch, 'h6');
    const result = await bakery(['approve', 'hello-nothing'], home);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('NotFoundError: no approval found for "hello-nothing"');
    await expectNothingWritten(home);
  });
});
