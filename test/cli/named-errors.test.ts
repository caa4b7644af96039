/**
 * Bad arguments and a damaged state directory end in a named error that names the
 * argument or the file (exit 2 for an argument, 1 for the state directory), never in
 * "internal error" with a stack trace; and nothing is written.
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCodes } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { type CliResult, runCli } from '../helpers/cli.ts';
import { type LocalBackend, localBackend, recordBake } from '../helpers/pins.ts';

/** Every file under `dir` with its size and mtime: what "nothing was written" compares. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const file = path.join(entry.parentPath, entry.name);
    const info = await stat(file);
    out.push(`${path.relative(dir, file)} ${info.isDirectory() ? 'dir' : `${info.size} ${info.mtimeMs}`}`);
  }
  return out.sort();
}

describe('named errors instead of internal ones', () => {
  let backend: LocalBackend;
  let bakery: (args: string[]) => Promise<CliResult>;

  beforeEach(async () => {
    backend = await localBackend();
    await recordBake(backend, { bakeId: 'bake-1', runtime: 'r1', code: 'one' });
    bakery = (args) => runCli(args, { BAKERY_USER: 'tester', BAKERY_HOME: backend.home.root });
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  const noInternal = (result: CliResult) => {
    expect(result.stderr).not.toContain('internal error');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  };

  it.each([['../../ledger'], ['/etc/passwd'], ['bake-1/../../../x']])(
    'verify %s: exit 2 naming the argument, nothing written',
    async (arg) => {
      // Prepare
      const before = await snapshot(backend.home.root);

      // Act
      const result = await bakery(['verify', arg]);

      // Assess
      expect(result.code).toBe(ExitCodes.BadInput);
      expect(result.stderr).toContain(`InputError: bake id ${JSON.stringify(arg)} is not valid`);
      noInternal(result);
      expect(await snapshot(backend.home.root)).toEqual(before);
    },
  );

  it.each([
    ['a released entry without functions', (e: Record<string, unknown>) => ({ ...e, functions: undefined }), 'functions'],
    ['an entry of no known type', (e: Record<string, unknown>) => ({ ...e, type: 'deleted' }), 'type'],
    [
      'a released entry whose move lacks its target',
      (e: Record<string, unknown>) => ({ ...e, functions: [{ name: 'hello', alias: 'live' }] }),
      'functions.0',
    ],
  ])('%s in the ledger: exit 1 naming the ledger and its line, for every command that reads it', async (_what, change, field) => {
    // Prepare
    const file = backend.home.path('ledger.jsonl');
    const first = JSON.parse((await readFile(file, 'utf8')).split('\n')[0] ?? '') as Record<string, unknown>;
    await writeFile(file, `${JSON.stringify(first)}\n${JSON.stringify(change(first))}\n`);

    // Act
    const results = await Promise.all(
      [['status'], ['history'], ['drift'], ['prune'], ['verify', 'bake-1'], ['rollback', 'hello']].map(bakery),
    );

    // Assess
    for (const result of results) {
      expect(result.code).toBe(ExitCodes.Failed);
      expect(result.stderr).toContain(`StateDamagedError: ${file} line 2 is not a ledger entry bakery wrote (${field}`);
      expect(result.stderr).toContain('restore it from a backup');
      noInternal(result);
    }
  });

  it.each([
    ['a garbage alias file', 'functions/hello/aliases/live.json', 'garbage{\n', ['status', 'drift', 'rollback hello']],
    ['a torn version record', 'functions/hello/versions/1.json', '{"name":"hello","vers', ['status', 'drift', 'verify bake-1']],
    ['an emptied layer record', 'layers/hello-node22/1.json', '', ['status', 'verify bake-1']],
  ])('%s: exit 1 naming the file and what to do', async (_what, relative, content, commands) => {
    // Prepare
    const file = backend.home.path(relative);
    await stat(file);
    await writeFile(file, content);

    // Act
    const results = await Promise.all(commands.map((c) => bakery(c.split(' '))));

    // Assess
    for (const result of results) {
      expect(result.code).toBe(ExitCodes.Failed);
      expect(result.stderr).toContain(`StateDamagedError: ${file} is damaged`);
      expect(result.stderr).toContain('move it away and run the command again');
      noInternal(result);
    }
  });

  it('history of a function nobody baked says so and lists the known ones (exit 2)', async () => {
    // Act
    const result = await bakery(['history', 'helo']);

    // Assess
    expect(result).toMatchObject({ code: ExitCodes.BadInput, stdout: '' });
    expect(result.stderr).toContain('NotFoundError: no function "helo" in the ledger: nobody baked it');
    expect(result.stderr).toContain('The ledger knows: hello.');
  });

  it('--version prints the version of package.json', async () => {
    // Prepare
    const { version } = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };

    // Act
    const long = await bakery(['--version']);
    const short = await bakery(['-V']);

    // Assess
    expect(long).toEqual({ code: ExitCodes.Success, stdout: `${version}\n`, stderr: '' });
    expect(short).toEqual(long);
  });
});

describe('a reader that goes away', () => {
  let backend: LocalBackend;

  beforeEach(async () => {
    backend = await localBackend();
  });

  afterEach(async () => {
    await backend.cleanup();
  });

  it('`bakery history | head` ends without an EPIPE crash (the real bin, its stdout closed early)', async () => {
    // Prepare: enough history that the output outlives its reader.
    const entry = (i: number) =>
      JSON.stringify({
        type: 'rolledBack',
        bakeId: `b${i}`,
        at: '2026-01-01T00:00:00Z',
        by: 'x',
        name: 'fn',
        alias: 'live',
        from: '1',
        to: '2',
        fromWeights: {},
      });
    await writeFile(backend.home.path('ledger.jsonl'), `${Array.from({ length: 3000 }, (_, i) => entry(i)).join('\n')}\n`);

    // Act: read one chunk, then close the pipe, as `head` does.
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'bakery.mjs'), 'history'], {
      env: { ...process.env, BAKERY_HOME: backend.home.root },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));

    // Assess
    expect(stderr).not.toContain('EPIPE');
    expect(code).toBe(ExitCodes.Success);
  });
});
