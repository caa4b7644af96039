/**
 * `bakery bake` refuses what would fail only after a build, a publish, a validation and
 * an approval: exit 2, every problem named, and the state directory never created.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCodes } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { runCli } from '../helpers/cli.ts';

type Spec = Record<string, unknown> & { functions: Array<Record<string, unknown>> };

describe('bakery bake pre-checks', () => {
  let scratch: string;
  let example: Spec;

  beforeAll(async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), 'bakery-refused-'));
    example = JSON.parse(await readFile(path.join(PROJECT_ROOT, 'examples/hello/bake.json'), 'utf8')) as Spec;
  });

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  /** A project with the example's code under src/ and the spec as `change` leaves it; bake it with `args`. */
  async function bake(name: string, change: (spec: Spec, project: string) => Promise<void> | void, args: string[] = []) {
    const project = path.join(scratch, name);
    await mkdir(path.join(project, 'src'), { recursive: true });
    await writeFile(path.join(project, 'src', 'index.mjs'), await readFile(path.join(PROJECT_ROOT, 'examples/hello/src/index.mjs')));
    const spec = structuredClone(example);
    await change(spec, project);
    await writeFile(path.join(project, 'bake.json'), JSON.stringify(spec));
    const home = path.join(scratch, `${name}-home`);
    const result = await runCli(['bake', path.join(project, 'bake.json'), ...args], { BAKERY_HOME: home, BAKERY_USER: 'tester' });
    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('BakeSpecError:');
    expect(result.stderr).not.toContain('internal error');
    await expect(readdir(home)).rejects.toMatchObject({ code: 'ENOENT' });
    return { ...result, project };
  }

  const fn = (spec: Spec) => spec.functions[0] as Record<string, unknown>;

  it('refuses code outside the spec directory (../ and absolute)', async () => {
    await writeFile(path.join(scratch, 'secret.txt'), 'secret\n');
    const up = await bake('up', (spec) => {
      fn(spec).code = '..';
    });
    expect(up.stderr).toContain(`functions[0].code: ".." resolves to ${scratch}, outside the spec's directory ${up.project}`);
    const abs = await bake('abs', (spec) => {
      fn(spec).code = path.join(PROJECT_ROOT, 'examples/hello/src');
    });
    expect(abs.stderr).toContain('functions[0].code: ');
    expect(abs.stderr).toContain('is an absolute path');
  });

  it('refuses a code tree with a link to /etc/passwd, and a code directory that is a link to /', async () => {
    const link = await bake('link', async (_spec, project) => {
      await symlink('/etc/passwd', path.join(project, 'src', 'passwd'));
    });
    expect(link.stderr).toContain('functions[0].code: passwd is a symlink to /etc/passwd, outside the code directory');
    const root = await bake('root', async (spec, project) => {
      await symlink('/', path.join(project, 'root'));
      fn(spec).code = './root';
    });
    expect(root.stderr).toContain('functions[0].code: "./root" resolves to /, outside');
  });

  it('refuses reserved environment names and an alarm that does not exist, in one report', async () => {
    const result = await bake('config', (spec) => {
      fn(spec).environment = { AWS_REGION: 'eu-west-1', AWS_LAMBDA_FUNCTION_NAME: 'x' };
      spec.release = { steps: [{ weight: 10, minutes: 1 }], alarms: ['hello-errors'] };
    });
    expect(result.stderr).toContain('functions[0].environment: AWS_REGION, AWS_LAMBDA_FUNCTION_NAME are reserved');
    expect(result.stderr).toContain('release.alarms: no alarm named "hello-errors"');
  });

  it('refuses --approve by someone who is not in approval.approvers', async () => {
    const result = await bake(
      'approver',
      (spec) => {
        spec.approval = { approvers: ['ana'], timeoutSeconds: 60 };
      },
      ['--approve', '--approver', 'mallory'],
    );
    expect(result.stderr).toContain('approval.approvers: --approve as "mallory", who is not an approver of this spec (ana)');
  });

  it('refuses an extra layer that does not exist', async () => {
    const arn = 'arn:aws:lambda:local:000000000000:layer:missing:1';
    const result = await bake('layer', (spec) => {
      fn(spec).layers = [arn];
    });
    expect(result.stderr).toContain(`functions[0].layers[0]: layer version ${arn} does not exist`);
  });
});
