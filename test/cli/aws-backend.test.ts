/**
 * `bakery --backend aws` on a machine with no AWS configuration: the real CLI in a child
 * process with an empty environment (HOME an empty directory, no AWS_* variables). Every
 * missing setting is named at once and nothing is called: no network.
 */
import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCodes } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { tempDir } from '../adapters/aws/fixtures.ts';

const run = promisify(execFile);

async function bakery(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(PROJECT_ROOT, 'bin', 'bakery.mjs'), ...args], {
      env,
      cwd: env.HOME,
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let scratch: Awaited<ReturnType<typeof tempDir>>;
let home: string;

beforeAll(async () => {
  scratch = await tempDir();
  home = path.join(scratch.dir, 'home');
  await mkdir(home);
});

afterAll(async () => {
  await scratch.remove();
});

describe('bakery --backend aws without configuration', () => {
  it('names the region, the credentials and the stack settings at once, exit 2, no stack trace', async () => {
    for (const args of [['status'], ['history'], ['approve', 'bake-1'], ['drift']]) {
      // Act
      const result = await bakery(['--backend', 'aws', ...args], { HOME: home });

      // Assess
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(ExitCodes.BadInput);
      expect(result.stderr).toContain('ConfigError: missing or invalid configuration of the AWS backend');
      expect(result.stderr).toContain('AWS region: set AWS_REGION');
      expect(result.stderr).toContain('AWS credentials: none in the environment');
      expect(result.stderr).toContain('TABLE_NAME is not set (the stack output TableName)');
      expect(result.stderr).toContain('ARTEFACTS_BUCKET is not set (the stack output ArtefactsBucketName)');
      expect(result.stderr).toContain('aws cloudformation describe-stacks --stack-name bakery-<stage>');
      expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
    }
  }, 120_000);

  it("takes region and credentials from the profile in HOME's shared files, naming only what is still missing", async () => {
    // Prepare
    const profiled = path.join(scratch.dir, 'profiled');
    await mkdir(path.join(profiled, '.aws'), { recursive: true });
    await writeFile(path.join(profiled, '.aws', 'config'), '[profile ops]\nregion = eu-central-1\n');
    await writeFile(path.join(profiled, '.aws', 'credentials'), '[ops]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = secret\n');

    // Act
    const result = await bakery(['--backend', 'aws', 'status'], { HOME: profiled, AWS_PROFILE: 'ops' });

    // Assess
    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).not.toContain('AWS region');
    expect(result.stderr).not.toContain('AWS credentials');
    expect(result.stderr).toContain('TABLE_NAME is not set');
    expect(result.stderr).toContain('ARTEFACTS_BUCKET is not set');
  }, 60_000);

  it('with the stack settings exported, still names a missing region and credentials rather than failing inside the SDK', async () => {
    const result = await bakery(['--backend', 'aws', 'history'], {
      HOME: home,
      TABLE_NAME: 'bakery-dev-table',
      ARTEFACTS_BUCKET: 'artefacts',
    });
    expect(result.code, result.stderr).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('AWS region: set AWS_REGION');
    expect(result.stderr).toContain('AWS credentials: none in the environment');
    expect(result.stderr).not.toContain('is not set (the stack output');
    expect(result.stderr).not.toMatch(/internal error|\n\s+at /);
  }, 60_000);

  it('names a profile that is not in the shared files', async () => {
    const result = await bakery(['--backend', 'aws', 'history'], { HOME: home, AWS_PROFILE: 'nobody' });
    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain(`AWS profile "nobody" (AWS_PROFILE) is in neither ${path.join(home, '.aws', 'config')}`);
  }, 60_000);
});
