/**
 * The checks ResolveBake (and `bakery bake`, before it writes anything) runs on a bake's
 * input: code confined to the spec's directory, no links, something to deploy, and what
 * Lambda, CloudWatch and the approvers would refuse only after a build and an approval.
 */
import { mkdir, mkdtemp, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_ENVIRONMENT_BYTES, MAX_SPEC_BYTES, RESERVED_ENVIRONMENT_NAMES } from '../../src/cores/precheck.ts';
import { manifestKey } from '../../src/cores/record.ts';
import { checkBakeInput, resolveBake } from '../../src/cores/resolve.ts';
import { BakeSpecError } from '../../src/errors.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { DirectoryRecipeCatalog } from '../../src/recipes/recipe.ts';
import type { BakeRequest } from '../../src/state.ts';
import { FakeClock, MemoryAlarms, MemoryArtefactStore, MemoryLayerRegistry, MemoryLedger } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

const recipes = new DirectoryRecipeCatalog(path.join(PROJECT_ROOT, 'layers'));
const request: BakeRequest = { source: { type: 'file', path: 'bake.json' }, trigger: { type: 'cli', user: 'tester' } };
const OTHER_ACCOUNT_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:tools:3';

function spec(fn: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: 1,
    name: 'hello',
    runtime: { recipe: 'node22', parameters: {} },
    layer: { name: 'hello-node22' },
    functions: [
      {
        name: 'hello',
        code: './src',
        handler: 'index.handler',
        validation: { cases: [{ name: 'greets', event: {}, expect: { result: { ok: true } } }] },
        ...fn,
      },
    ],
    ...extra,
  };
}

describe('pre-checks of a bake', () => {
  let dir: string;
  let project: string;
  let specFile: string;
  let deps: {
    sources: { open: () => Promise<{ specFile: string; where: string }> };
    recipes: DirectoryRecipeCatalog;
    artefacts: MemoryArtefactStore;
    clock: FakeClock;
    ids: { random: () => string };
    alarms: MemoryAlarms;
    layers: MemoryLayerRegistry;
    ledger: MemoryLedger;
  };

  const writeSpec = (value: unknown) => writeFile(specFile, JSON.stringify(value));
  /** The refusal of `resolveBake`, which must have staged nothing. */
  const refusal = async (): Promise<BakeSpecError> => {
    const error = await rejection(resolveBake(request, deps));
    expect(error).toBeInstanceOf(BakeSpecError);
    expect(deps.artefacts.files.size).toBe(0);
    return error as BakeSpecError;
  };

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-precheck-'));
    project = path.join(dir, 'project');
    specFile = path.join(project, 'bake.json');
    await mkdir(path.join(project, 'src'), { recursive: true });
    await writeFile(path.join(project, 'src', 'index.mjs'), 'export const handler = async () => ({ ok: true });\n');
    await writeFile(path.join(dir, 'secret.txt'), 'do not ship\n');
    deps = {
      sources: { open: async () => ({ specFile, where: 'bake.json' }) },
      recipes,
      artefacts: new MemoryArtefactStore(),
      clock: new FakeClock('2026-11-22T07:30:00.000Z'),
      ids: { random: () => '3f9a77c1' },
      alarms: new MemoryAlarms({ 'hello-errors': 'OK' }),
      layers: new MemoryLayerRegistry(),
      ledger: new MemoryLedger(),
    };
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('takes a spec that passes every check', async () => {
    await writeSpec(spec({}, { release: { steps: [{ weight: 10, minutes: 0 }], alarms: ['hello-errors'] } }));
    const bake = await resolveBake(request, deps);
    expect(bake.functions.map((f) => f.name)).toEqual(['hello']);
  });

  describe('confinement of functions[].code', () => {
    it('refuses code that climbs out of the spec directory with ../, naming the field and the resolved path', async () => {
      await writeSpec(spec({ code: '..' }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: ".." resolves to ${dir}, outside the spec's directory ${project}`);
    });

    it('refuses an absolute code path, even one that exists', async () => {
      await writeSpec(spec({ code: dir }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: "${dir}" is an absolute path`);
    });

    it('refuses a code path that climbs out through a symlink inside the project', async () => {
      await symlink(dir, path.join(project, 'up'));
      await writeSpec(spec({ code: './up' }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: "./up" resolves to ${dir}, outside the spec's directory`);
    });

    it('refuses at once a code directory that is a link to /, without walking it', async () => {
      await symlink('/', path.join(project, 'root'));
      await writeSpec(spec({ code: './root' }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: "./root" resolves to /, outside the spec's directory`);
    });

    it('refuses a symlink in the code tree that points outside it, naming its target', async () => {
      await symlink('/etc/passwd', path.join(project, 'src', 'passwd'));
      await mkdir(path.join(project, 'src', 'lib'));
      await symlink(path.join(dir, 'secret.txt'), path.join(project, 'src', 'lib', 'secret'));
      await symlink('/', path.join(project, 'src', 'everything'));
      await writeSpec(spec());
      const error = await refusal();
      expect(error.message).toContain('functions[0].code: passwd is a symlink to /etc/passwd, outside the code directory');
      expect(error.message).toContain(`functions[0].code: lib/secret is a symlink to ${path.join(dir, 'secret.txt')}, outside`);
      expect(error.message).toContain('functions[0].code: everything is a symlink to /, outside');
    });

    it('refuses a symlink that stays inside the tree too: links are never packaged', async () => {
      await symlink('index.mjs', path.join(project, 'src', 'main.mjs'));
      await writeSpec(spec());
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: main.mjs is a symlink (to ${path.join(project, 'src', 'index.mjs')})`);
    });

    it('refuses an empty code directory, and one holding only empty directories', async () => {
      await mkdir(path.join(project, 'empty', 'a', 'b'), { recursive: true });
      await writeSpec(spec({ code: './empty' }));
      const error = await refusal();
      expect(error.message).toContain('functions[0].code: "./empty"');
      expect(error.message).toContain('holds no file: there is nothing to deploy');
    });

    it('lists every function whose code is refused, in one error', async () => {
      const base = spec();
      const fn = (base.functions as Array<Record<string, unknown>>)[0];
      await writeSpec({
        ...base,
        functions: [
          { ...fn, code: '../..' },
          { ...fn, name: 'two', code: '/etc' },
        ],
      });
      const error = await refusal();
      expect(error.message).toContain('functions[0].code: "../.."');
      expect(error.message).toContain('functions[1].code: "/etc" is an absolute path');
    });
  });

  describe("Lambda's limits on configuration", () => {
    it.each([
      ['AWS_REGION'],
      ['AWS_EXECUTION_ENV'],
      ['AWS_LAMBDA_FUNCTION_NAME'],
      ['AWS_LAMBDA_RUNTIME_API'],
      ['LAMBDA_TASK_ROOT'],
      ['TZ'],
    ])('refuses the reserved environment variable %s', async (name) => {
      await writeSpec(spec({ environment: { STYLE: 'plain', [name]: 'x' } }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].environment: ${name} is reserved: Lambda sets it itself`);
    });

    it('knows the reserved names AWS documents', () => {
      expect(RESERVED_ENVIRONMENT_NAMES).toEqual(
        expect.arrayContaining([
          'AWS_ACCESS_KEY_ID',
          'AWS_SECRET_ACCESS_KEY',
          'AWS_SESSION_TOKEN',
          'AWS_EXECUTION_ENV',
          'LAMBDA_RUNTIME_DIR',
        ]),
      );
    });

    it('refuses an environment over 4 KB in all, and takes one just at it', async () => {
      const value = (bytes: number) => 'v'.repeat(bytes);
      // Two names of 1 byte each: the values take the rest.
      await writeSpec(spec({ environment: { A: value(2000), B: value(MAX_ENVIRONMENT_BYTES - 2 - 2000) } }));
      await expect(resolveBake(request, deps)).resolves.toBeDefined();
      deps.artefacts = new MemoryArtefactStore();
      await writeSpec(spec({ environment: { A: value(2000), B: value(MAX_ENVIRONMENT_BYTES - 2 - 2000 + 1) } }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].environment: ${MAX_ENVIRONMENT_BYTES + 1} bytes of names and values`);
    });

    it('refuses a spec over 32 KB as JSON, naming its largest parts, and takes one just at it', async () => {
      // Prepare: pad the validation event so that the parsed spec (defaults filled in) is exactly at the bound.
      const padded = (pad: string) =>
        spec({ validation: { cases: [{ name: 'greets', event: { pad }, expect: { result: { ok: true } } }] } });
      await writeSpec(padded(''));
      const base = Buffer.byteLength(JSON.stringify((await checkBakeInput(specFile, recipes)).spec));
      await writeSpec(padded('x'.repeat(MAX_SPEC_BYTES - base)));
      await expect(resolveBake(request, deps)).resolves.toBeDefined();
      deps.artefacts = new MemoryArtefactStore();

      // Act
      await writeSpec(padded('x'.repeat(MAX_SPEC_BYTES - base + 1)));
      const error = await refusal();

      // Assess
      expect(error.message).toContain(`the spec is ${MAX_SPEC_BYTES + 1} bytes as JSON; at most ${MAX_SPEC_BYTES} (32 KB)`);
      expect(error.message).toContain(`Largest parts: functions[0].validation.cases[0].event ${MAX_SPEC_BYTES - base + 11} bytes`);
    });

    it('refuses code over 250 MB unzipped, before zipping it', async () => {
      // A sparse file: its size is what counts, nothing is written to disk.
      await truncate(path.join(project, 'src', 'index.mjs'), 251 * 1024 * 1024);
      await writeSpec(spec());
      const error = await refusal();
      expect(error.message).toContain(`functions[0].code: ${path.join(project, 'src')} is ${251 * 1024 * 1024} bytes unzipped`);
    });

    it("counts the runtime layer's size as the last bake of the layer recorded it", async () => {
      // Prepare: 200 MiB of code fits alone; the last release's runtime layer was 60 MiB unzipped.
      await writeFile(path.join(project, 'src', 'big.bin'), '');
      await truncate(path.join(project, 'src', 'big.bin'), 200 * 1024 * 1024);
      const manifest = { uri: 'mem://m', sha256Hex: 'x', size: 1 };
      await deps.ledger.append({
        type: 'released',
        bakeId: 'hello-1',
        at: '2026-11-21T00:00:00.000Z',
        trigger: { type: 'cli', user: 'x' },
        layer: { arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:hello-node22:4', version: 4, codeSha256: 'x' },
        functions: [],
        manifest,
      });
      await deps.artefacts.putJson(manifestKey('hello-1'), { layer: { unzippedSize: 60 * 1024 * 1024 } });
      await writeSpec(spec());

      // Act
      const error = await rejection(resolveBake(request, deps));

      // Assess
      expect(error).toBeInstanceOf(BakeSpecError);
      expect((error as Error).message).toContain(`plus the runtime layer's ${60 * 1024 * 1024} bytes (as bake hello-1 recorded it)`);
    });
  });

  describe('extra layers', () => {
    it('refuses a layer version that does not exist', async () => {
      await writeSpec(spec({ layers: [OTHER_ACCOUNT_LAYER] }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].layers[0]: layer version ${OTHER_ACCOUNT_LAYER} does not exist`);
    });

    it('refuses a layer for another runtime, and one for another architecture', async () => {
      const info = (version: number) => ({
        name: 'tools',
        arn: `arn:aws:lambda:eu-west-1:123456789012:layer:tools:${version}`,
        version,
        codeSha256: 'x',
        size: 1,
      });
      deps.layers.seed(info(1), { compatibleRuntimes: ['python3.12'], architectures: [], bytes: Buffer.from('') });
      deps.layers.seed(info(2), { compatibleRuntimes: [], architectures: ['arm64'], bytes: Buffer.from('') });
      deps.layers.seed(info(3), { compatibleRuntimes: ['provided.al2023'], architectures: ['x86_64'], bytes: Buffer.from('') });
      await writeSpec(spec({ layers: [info(1).arn, info(2).arn, info(3).arn] }));
      const error = await refusal();
      expect(error.message).toContain(`functions[0].layers[0]: ${info(1).arn} is for python3.12 on any architecture`);
      expect(error.message).toContain(`functions[0].layers[1]: ${info(2).arn} is for any runtime on arm64`);
      expect(error.message).not.toContain('layers[2]');
    });
  });

  describe('release alarms and approvers', () => {
    it('refuses release.alarms naming alarms that do not exist', async () => {
      await writeSpec(spec({}, { release: { steps: [{ weight: 10, minutes: 5 }], alarms: ['hello-errors', 'hello-latency', 'typo'] } }));
      const error = await refusal();
      expect(error.message).toContain('release.alarms: no alarm named "hello-latency"');
      expect(error.message).toContain('release.alarms: no alarm named "typo"');
      expect(error.message).not.toContain('"hello-errors"');
    });

    it('refuses --approve as someone who is not an approver, and takes an approver or an open list', async () => {
      await writeSpec(spec({}, { approval: { approvers: ['ana', 'bo'] } }));
      const error = await rejection(checkBakeInput(specFile, recipes, 'bake.json', { autoApprover: 'mallory' }));
      expect(error).toBeInstanceOf(BakeSpecError);
      expect((error as Error).message).toContain(
        'approval.approvers: --approve as "mallory", who is not an approver of this spec (ana, bo)',
      );
      await expect(checkBakeInput(specFile, recipes, 'bake.json', { autoApprover: 'bo' })).resolves.toBeDefined();
      await writeSpec(spec());
      await expect(checkBakeInput(specFile, recipes, 'bake.json', { autoApprover: 'mallory' })).resolves.toBeDefined();
    });
  });

  it('reports the problems of every check together', async () => {
    await writeSpec(
      spec(
        { environment: { AWS_REGION: 'x' }, layers: [OTHER_ACCOUNT_LAYER] },
        { release: { steps: [{ weight: 50, minutes: 1 }], alarms: ['nope'] } },
      ),
    );
    const error = await refusal();
    expect(error.message.split('\n').filter((l) => l.startsWith('  - '))).toHaveLength(3);
  });
});
