import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageBuildFailedError, RecipeError } from '../../src/errors.ts';
import { runDocument, type StepEvent } from '../../src/recipes/toe.ts';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const mode = async (file: string) => ((await stat(file)).mode & 0o7777).toString(8);

describe('runDocument (local AWSTOE executor)', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-toe-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function doc(name: string, yaml: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, yaml);
    return file;
  }

  /** A document with one build phase made of the given steps (YAML, indented 6). */
  async function steps(name: string, body: string, extra = ''): Promise<string> {
    return doc(name, `name: ${name}\nschemaVersion: 1.0\n${extra}phases:\n  - name: build\n    steps:\n${body}`);
  }

  const failure = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected a failure');
      },
      (error: unknown) => error as Error,
    );

  describe('document shapes', () => {
    it('runs phases in order with parameters, defaults and constants substituted', async () => {
      const out = path.join(dir, 'out.txt');
      const file = await doc(
        'ok.yml',
        `name: ok
schemaVersion: 1.0
parameters:
  - Greeting: { type: string }
  - Target: { type: string, default: world }
constants:
  - Mark: { type: string, value: "!" }
phases:
  - name: test
    steps:
      - name: Third
        action: ExecuteBash
        inputs: { commands: ["echo third >> '${out}'"] }
  - name: build
    steps:
      - name: First
        action: ExecuteBash
        inputs:
          commands:
            - "echo '{{ Greeting }}, {{Target}}{{ Mark }}' >> '${out}'"
  - name: validate
    steps:
      - name: Second
        action: ExecuteBash
        inputs: { commands: ["echo second >> '${out}'"] }
`,
      );
      const events: StepEvent[] = [];
      const run = await runDocument(file, { Greeting: 'hello' }, { onStep: (e) => events.push(e) });
      expect(await readFile(out, 'utf8')).toBe('hello, world!\nsecond\nthird\n');
      expect(events.filter((e) => e.status === 'succeeded').map((e) => `${e.phase}/${e.step}`)).toEqual([
        'build/First',
        'validate/Second',
        'test/Third',
      ]);
      expect(run.steps.map((s) => [s.phase, s.step, s.status, s.attempts])).toEqual([
        ['build', 'First', 'succeeded', 1],
        ['validate', 'Second', 'succeeded', 1],
        ['test', 'Third', 'succeeded', 1],
      ]);
    });

    it('runs only the phases asked for', async () => {
      const out = path.join(dir, 'out.txt');
      const file = await doc(
        'phases.yml',
        `schemaVersion: "1.0"
phases:
  - name: build
    steps:
      - { name: B, action: ExecuteBash, inputs: { commands: ["echo b >> '${out}'"] } }
  - name: test
    steps:
      - { name: T, action: ExecuteBash, inputs: { commands: ["echo t >> '${out}'"] } }
`,
      );
      await runDocument(file, {}, { phases: ['test'] });
      expect(await readFile(out, 'utf8')).toBe('t\n');
    });

    it('chains a step output (stdout, trailing newline trimmed) and a step input into later steps', async () => {
      const out = path.join(dir, 'chained.txt');
      const file = await doc(
        'chain.yml',
        `name: chain
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: MakeName
        action: ExecuteBash
        inputs:
          commands: ["echo '${dir}/made-by-chain.txt'"]
      - name: Write
        action: CreateFile
        inputs:
          - path: '{{ build.MakeName.outputs.stdout }}'
            content: chained
  - name: validate
    steps:
      - name: Check
        action: ExecuteBash
        inputs:
          commands:
            - "cat '{{ build.Write.inputs[0].path }}' > '${out}'"
`,
      );
      await runDocument(file, {});
      expect(await readFile(path.join(dir, 'made-by-chain.txt'), 'utf8')).toBe('chained');
      expect(await readFile(out, 'utf8')).toBe('chained');
    });

    it('refuses a reference to a step that does not exist, before running anything', async () => {
      const marker = path.join(dir, 'ran');
      const file = await steps(
        'missing-step.yml',
        `      - { name: First, action: ExecuteBash, inputs: { commands: ["touch '${marker}'"] } }
      - { name: Second, action: ExecuteBash, inputs: { commands: ["echo {{ build.Nope.outputs.stdout }}"] } }
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain(
        'missing-step.yml › build › Second: "{{ build.Nope.outputs.stdout }}" refers to step build › Nope, which does not exist',
      );
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('refuses a reference to a step that has not run by then', async () => {
      const file = await steps(
        'later.yml',
        `      - { name: First, action: ExecuteBash, inputs: { commands: ["echo {{ build.Second.outputs.stdout }}"] } }
      - { name: Second, action: ExecuteBash, inputs: { commands: ["echo 2"] } }
`,
      );
      await expect(runDocument(file, {})).rejects.toThrow('refers to step build › Second, which has not run by then');
    });

    it('refuses an output the referenced action does not have', async () => {
      const file = await steps(
        'no-output.yml',
        `      - name: Make
        action: CreateFolder
        inputs: [{ path: '${dir}/x/' }]
      - { name: Use, action: ExecuteBash, inputs: { commands: ["echo {{ build.Make.outputs.stdout }}"] } }
`,
      );
      await expect(runDocument(file, {})).rejects.toThrow('CreateFolder has no output "stdout" (it has none)');
    });

    it('names a parameter the document does not declare, before running anything', async () => {
      const marker = path.join(dir, 'ran');
      const file = await steps(
        'unknown.yml',
        `      - { name: First, action: ExecuteBash, inputs: { commands: ["touch '${marker}'"] } }
      - { name: UsesUnknown, action: ExecuteBash, inputs: { commands: ["echo {{ Nope }}"] } }
`,
        'parameters:\n  - Known: { type: string, default: k }\n',
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain('unknown.yml › build › UsesUnknown: unknown parameter "{{ Nope }}"');
      expect((error as RecipeError).hint).toBe('The document declares: Known.');
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('names a declared parameter with no value', async () => {
      const file = await steps(
        'missing.yml',
        '      - { name: S, action: ExecuteBash, inputs: { commands: ["true"] } }\n',
        'parameters:\n  - Needed: { type: string }\n',
      );
      await expect(runDocument(file, {})).rejects.toThrow('missing.yml: parameter "Needed" has no value and no default');
    });

    it('rejects a malformed document, pointing at the file, phase and step', async () => {
      const empty = await doc('bad.yml', 'name: bad\nschemaVersion: 1.0\nphases: []\n');
      await expect(runDocument(empty, {})).rejects.toThrow(/bad\.yml is not a valid component document/);

      const badStep = await steps(
        'bad-step.yml',
        '      - { name: Fetch, action: ExecuteBash, maxAttempts: 0, inputs: { commands: ["true"] } }\n',
      );
      const error = await failure(runDocument(badStep, {}));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain('bad-step.yml is not a valid component document');
      expect(error.message).toContain('build › Fetch: maxAttempts');

      const dup = await steps(
        'dup.yml',
        '      - { name: Same, action: ExecuteBash, inputs: { commands: ["true"] } }\n      - { name: Same, action: ExecuteBash, inputs: { commands: ["true"] } }\n',
      );
      await expect(runDocument(dup, {})).rejects.toThrow('step "Same" appears twice in phase build');

      const notYaml = await doc('broken.yml', 'phases: [\n');
      await expect(runDocument(notYaml, {})).rejects.toThrow(/broken\.yml is not valid YAML/);
    });

    it('rejects inputs that do not fit the action, naming the step', async () => {
      const file = await steps('inputs.yml', "      - { name: Bad, action: CopyFile, inputs: [{ source: '/a' }] }\n");
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain('inputs.yml › build › Bad: inputs do not match CopyFile');
      expect(error.message).toContain('inputs[0].destination');
    });

    it('refuses an action it does not support, naming it, before running anything', async () => {
      const marker = path.join(dir, 'ran');
      const file = await steps(
        'reboot.yml',
        `      - { name: First, action: ExecuteBash, inputs: { commands: ["touch '${marker}'"] } }
      - { name: Restart, action: Reboot, inputs: {} }
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain('reboot.yml › build › Restart: action "Reboot" is not supported by the local executor');
      expect((error as RecipeError).hint).toContain(
        'ExecuteBash, CreateFile, CreateFolder, CopyFile, MoveFile, SetFilePermissions, WebDownload',
      );
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('names an action AWSTOE does not have, and step fields it does not run', async () => {
      const typo = await steps('typo.yml', '      - { name: Run, action: ExecuteBsh, inputs: { commands: ["true"] } }\n');
      await expect(runDocument(typo, {})).rejects.toThrow('typo.yml › build › Run: unknown action "ExecuteBsh"');
      const loop = await steps(
        'loop.yml',
        '      - { name: Each, action: ExecuteBash, loop: { forEach: [a, b] }, inputs: { commands: ["true"] } }\n',
      );
      await expect(runDocument(loop, {})).rejects.toThrow('loop.yml › build › Each: "loop" is not supported by the local executor');
    });
  });

  describe('failures, retries and onFailure', () => {
    it('stops at the first failing step and names document, phase, step and output', async () => {
      const marker = path.join(dir, 'after');
      const file = await steps(
        'fail.yml',
        `      - name: Breaks
        action: ExecuteBash
        inputs: { commands: ["echo 'something went wrong' >&2", "exit 3"] }
      - name: NeverRuns
        action: ExecuteBash
        inputs: { commands: ["touch '${marker}'"] }
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(ImageBuildFailedError);
      expect(error.message).toContain('fail.yml › build › Breaks failed (exit 3)');
      expect(error.message).toContain('something went wrong');
      await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('retries a step up to maxAttempts, and fails once they are used up', async () => {
      const counter = path.join(dir, 'count');
      const flaky = await steps(
        'retry.yml',
        `      - name: Flaky
        action: ExecuteBash
        maxAttempts: 3
        inputs:
          commands:
            - "echo x >> '${counter}'"
            - "test $(wc -l < '${counter}') -ge 3"
`,
      );
      const events: StepEvent[] = [];
      const run = await runDocument(flaky, {}, { onStep: (e) => events.push(e) });
      expect((await readFile(counter, 'utf8')).trim().split('\n')).toHaveLength(3);
      expect(events.map((e) => `${e.status}:${e.attempt}`)).toEqual(['started:1', 'retrying:2', 'retrying:3', 'succeeded:3']);
      expect(run.steps[0]?.attempts).toBe(3);

      const always = path.join(dir, 'always');
      const hopeless = await steps(
        'hopeless.yml',
        `      - name: Never
        action: ExecuteBash
        maxAttempts: 2
        inputs: { commands: ["echo x >> '${always}'", "exit 1"] }
`,
      );
      await expect(runDocument(hopeless, {})).rejects.toThrow('hopeless.yml › build › Never failed (exit 1)');
      expect((await readFile(always, 'utf8')).trim().split('\n')).toHaveLength(2);
    });

    it('does not retry a problem with the inputs themselves', async () => {
      const file = await steps(
        'badmode.yml',
        `      - name: Chmod
        action: SetFilePermissions
        maxAttempts: 3
        inputs: [{ path: '${dir}/x', permissions: 'rwx' }]
`,
      );
      const events: StepEvent[] = [];
      const error = await failure(runDocument(file, {}, { onStep: (e) => events.push(e) }));
      expect(error).toBeInstanceOf(RecipeError);
      expect(error.message).toContain('badmode.yml › build › Chmod: permissions "rwx" is not an octal mode');
      expect(events.filter((e) => e.status === 'retrying')).toHaveLength(0);
    });

    it('runs the remaining steps after onFailure: Continue, then fails the document naming the step', async () => {
      const marker = path.join(dir, 'after');
      const file = await steps(
        'continue.yml',
        `      - name: MayFail
        action: ExecuteBash
        onFailure: Continue
        inputs: { commands: ["echo 'could not do it'", "exit 1"] }
      - name: Next
        action: ExecuteBash
        inputs: { commands: ["touch '${marker}'"] }
`,
      );
      const events: StepEvent[] = [];
      const error = await failure(runDocument(file, {}, { onStep: (e) => events.push(e) }));
      await expect(stat(marker)).resolves.toBeDefined();
      expect(error).toBeInstanceOf(ImageBuildFailedError);
      expect(error.message).toContain('1 step(s) failed with onFailure: Continue');
      expect(error.message).toContain('continue.yml › build › MayFail failed (exit 1)');
      expect(error.message).toContain('could not do it');
      expect(events.find((e) => e.step === 'MayFail' && e.status !== 'started')?.status).toBe('failed');
    });

    it('goes on past a failing step marked onFailure: Ignore, and the document succeeds', async () => {
      const marker = path.join(dir, 'after');
      const file = await steps(
        'ignore.yml',
        `      - { name: MayFail, action: ExecuteBash, onFailure: Ignore, inputs: { commands: ["exit 1"] } }
      - { name: Next, action: ExecuteBash, inputs: { commands: ["touch '${marker}'"] } }
`,
      );
      const run = await runDocument(file, {});
      expect(run.steps.map((s) => `${s.step}:${s.status}`)).toEqual(['MayFail:ignored', 'Next:succeeded']);
      await expect(stat(marker)).resolves.toBeDefined();
    });

    it('fails a step that chains to the output of an ignored step', async () => {
      const file = await steps(
        'chain-ignored.yml',
        `      - { name: MayFail, action: ExecuteBash, onFailure: Ignore, inputs: { commands: ["exit 1"] } }
      - { name: Uses, action: ExecuteBash, inputs: { commands: ["echo '{{ build.MayFail.outputs.stdout }}'"] } }
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(ImageBuildFailedError);
      expect(error.message).toContain(
        'chain-ignored.yml › build › Uses: "{{ build.MayFail.outputs.stdout }}" has no value: step build › MayFail ignored',
      );
    });

    it('kills a step, and what it started, when it runs past timeoutSeconds', async () => {
      const marker = path.join(dir, 'late');
      const file = await steps(
        'slow.yml',
        `      - name: Sleeps
        action: ExecuteBash
        timeoutSeconds: 1
        inputs: { commands: ["echo started", "(sleep 3; touch '${marker}') &", "sleep 30"] }
`,
      );
      const started = Date.now();
      const error = await failure(runDocument(file, {}));
      expect(Date.now() - started).toBeLessThan(5000);
      expect(error.message).toContain('slow.yml › build › Sleeps timed out after 1s');
      expect(error.message).toContain('started');
      await new Promise((r) => setTimeout(r, 3000));
      await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('refuses a reboot request (exit 194) instead of pretending it rebooted', async () => {
      const file = await steps('reboot194.yml', '      - { name: NeedsReboot, action: ExecuteBash, inputs: { commands: ["exit 194"] } }\n');
      await expect(runDocument(file, {})).rejects.toThrow('reboot194.yml › build › NeedsReboot failed (asked for a reboot (exit 194)');
    });
  });

  describe('file system actions', () => {
    it('CreateFolder creates nested folders with the given mode and keeps an existing one', async () => {
      const file = await steps(
        'folders.yml',
        `      - name: Make
        action: CreateFolder
        inputs:
          - { path: '${dir}/a/b/c/', permissions: '0750' }
          - { path: '${dir}/plain' }
      - name: Again
        action: CreateFolder
        inputs: [{ path: '${dir}/a/b/c', permissions: 700 }]
      - name: NotAgain
        action: CreateFolder
        inputs: [{ path: '${dir}/plain', overwrite: false }]
`,
      );
      await writeFile(path.join(dir, 'keep'), 'x');
      const error = await failure(runDocument(file, {}));
      expect((await stat(path.join(dir, 'a/b/c'))).isDirectory()).toBe(true);
      expect(await mode(path.join(dir, 'a/b/c'))).toBe('700');
      expect(error.message).toContain('folders.yml › build › NotAgain failed');
      expect(error.message).toContain('exists and overwrite is false');
    });

    it('CreateFile writes content with parents, mode and encoding, and honours overwrite: false', async () => {
      const target = path.join(dir, 'deep/er/file.txt');
      const utf16 = path.join(dir, 'utf16.txt');
      const file = await steps(
        'files.yml',
        `      - name: Write
        action: CreateFile
        inputs:
          - { path: '${target}', content: "line 1\\nline 2\\n", permissions: '0600' }
          - { path: '${utf16}', content: 'hé', encoding: UTF-16 }
          - { path: '${dir}/empty' }
      - name: Keep
        action: CreateFile
        inputs: [{ path: '${target}', content: replaced, overwrite: false }]
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(await readFile(target, 'utf8')).toBe('line 1\nline 2\n');
      expect(await mode(target)).toBe('600');
      expect(await readFile(utf16)).toEqual(Buffer.from('hé', 'utf16le'));
      expect(await readFile(path.join(dir, 'empty'), 'utf8')).toBe('');
      expect(error.message).toContain('files.yml › build › Keep failed');
      expect(error.message).toContain(`${target} exists and overwrite is false`);
    });

    it('CopyFile copies to a file, into a folder (trailing /), and by wildcard', async () => {
      await mkdir(path.join(dir, 'src'));
      for (const name of ['a.txt', 'b.txt', 'c.log']) await writeFile(path.join(dir, 'src', name), `content of ${name}`);
      const file = await steps(
        'copy.yml',
        `      - name: Copy
        action: CopyFile
        inputs:
          - { source: '${dir}/src/a.txt', destination: '${dir}/out/renamed.txt' }
          - { source: '${dir}/src/c.log', destination: '${dir}/into/' }
          - { source: '${dir}/src/*.txt', destination: '${dir}/globbed/' }
`,
      );
      await runDocument(file, {});
      expect(await readFile(path.join(dir, 'out/renamed.txt'), 'utf8')).toBe('content of a.txt');
      expect(await readFile(path.join(dir, 'into/c.log'), 'utf8')).toBe('content of c.log');
      expect((await readdir(path.join(dir, 'globbed'))).sort()).toEqual(['a.txt', 'b.txt']);
      expect(await readFile(path.join(dir, 'src/a.txt'), 'utf8')).toBe('content of a.txt');
    });

    it('CopyFile fails on a missing source and refuses to overwrite when told not to', async () => {
      await writeFile(path.join(dir, 'there'), 'old');
      await writeFile(path.join(dir, 'new'), 'new');
      const missing = await steps(
        'copy-missing.yml',
        `      - { name: Copy, action: CopyFile, inputs: [{ source: '${dir}/nope', destination: '${dir}/x' }] }\n`,
      );
      await expect(runDocument(missing, {})).rejects.toThrow(`copy-missing.yml › build › Copy failed (source ${dir}/nope does not exist)`);
      const keep = await steps(
        'copy-keep.yml',
        `      - { name: Copy, action: CopyFile, inputs: [{ source: '${dir}/new', destination: '${dir}/there', overwrite: false }] }\n`,
      );
      await expect(runDocument(keep, {})).rejects.toThrow('exists and overwrite is false');
      expect(await readFile(path.join(dir, 'there'), 'utf8')).toBe('old');
    });

    it('MoveFile moves the file away from its source', async () => {
      await writeFile(path.join(dir, 'from.txt'), 'moving');
      const file = await steps(
        'move.yml',
        `      - { name: Move, action: MoveFile, inputs: [{ source: '${dir}/from.txt', destination: '${dir}/to/' }] }\n`,
      );
      await runDocument(file, {});
      expect(await readFile(path.join(dir, 'to/from.txt'), 'utf8')).toBe('moving');
      await expect(stat(path.join(dir, 'from.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('SetFilePermissions sets octal modes given as strings or YAML numbers, and needs the file to exist', async () => {
      await writeFile(path.join(dir, 'script'), '#!/bin/sh\n');
      await writeFile(path.join(dir, 'data'), 'x');
      const file = await steps(
        'perms.yml',
        `      - name: Modes
        action: SetFilePermissions
        inputs:
          - { path: '${dir}/script', permissions: '0755' }
          - { path: '${dir}/data', permissions: 640 }
`,
      );
      await runDocument(file, {});
      expect(await mode(path.join(dir, 'script'))).toBe('755');
      expect(await mode(path.join(dir, 'data'))).toBe('640');
      const missing = await steps(
        'perms-missing.yml',
        `      - { name: Modes, action: SetFilePermissions, inputs: [{ path: '${dir}/nope', permissions: '0644' }] }\n`,
      );
      await expect(runDocument(missing, {})).rejects.toThrow(`perms-missing.yml › build › Modes failed (${dir}/nope does not exist)`);
    });
  });

  describe('WebDownload', () => {
    let payload: Buffer;
    let source: string;

    beforeEach(async () => {
      payload = Buffer.from('pinned bytes\n');
      source = path.join(dir, 'upstream', 'artefact.bin');
      await mkdir(path.dirname(source));
      await writeFile(source, payload);
    });

    it('downloads a file:// URL verified against its SHA-256, and chains the destination', async () => {
      const copy = path.join(dir, 'copy-of-download');
      const file = await steps(
        'dl.yml',
        `      - name: Fetch
        action: WebDownload
        inputs:
          - source: '{{ Source }}'
            destination: '${dir}/downloads/'
            checksum: '{{ Sum }}'
            algorithm: SHA256
      - name: Use
        action: ExecuteBash
        inputs: { commands: ["cp '{{ build.Fetch.outputs.destination }}' '${copy}'"] }
`,
        'parameters:\n  - Source: { type: string }\n  - Sum: { type: string }\n',
      );
      await runDocument(file, { Source: pathToFileURL(source).href, Sum: sha256(payload) });
      expect(await readFile(path.join(dir, 'downloads', 'artefact.bin'))).toEqual(payload);
      expect(await readFile(copy)).toEqual(payload);
    });

    it('fails on a checksum mismatch, naming the step, and leaves nothing at the destination', async () => {
      const wrong = 'ab'.repeat(32);
      const file = await steps(
        'mismatch.yml',
        `      - name: Fetch
        action: WebDownload
        inputs:
          - { source: '${pathToFileURL(source).href}', destination: '${dir}/downloads/artefact.bin', checksum: '${wrong}', algorithm: SHA256 }
`,
      );
      const error = await failure(runDocument(file, {}));
      expect(error).toBeInstanceOf(ImageBuildFailedError);
      expect(error.message).toContain('mismatch.yml › build › Fetch failed (checksum mismatch');
      expect(error.message).toContain(`SHA256 is ${sha256(payload)}, expected ${wrong}`);
      expect(await readdir(path.join(dir, 'downloads'))).toEqual([]);
    });

    it('takes a local path as source, keeps a matching file, and refuses to overwrite when told not to', async () => {
      const target = path.join(dir, 'here.bin');
      const file = await steps(
        'local.yml',
        `      - name: Fetch
        action: WebDownload
        inputs: [{ source: '${source}', destination: '${target}', checksum: '${sha256(payload).toUpperCase()}', algorithm: sha256 }]
      - name: Again
        action: WebDownload
        inputs: [{ source: '${source}', destination: '${target}', checksum: '${sha256(payload)}', algorithm: SHA256 }]
`,
      );
      const events: StepEvent[] = [];
      await runDocument(file, {}, { onStep: (e) => events.push(e) });
      expect(await readFile(target)).toEqual(payload);
      expect(events.find((e) => e.step === 'Again' && e.status === 'succeeded')?.output).toContain('kept');

      const keep = await steps(
        'keep.yml',
        `      - { name: Fetch, action: WebDownload, inputs: [{ source: '${source}', destination: '${target}', overwrite: false }] }\n`,
      );
      await expect(runDocument(keep, {})).rejects.toThrow('exists and overwrite is false');
    });

    it('needs checksum and algorithm together, and refuses schemes it cannot fetch', async () => {
      const half = await steps(
        'half.yml',
        `      - { name: Fetch, action: WebDownload, inputs: [{ source: '${source}', destination: '${dir}/x', checksum: abc }] }\n`,
      );
      await expect(runDocument(half, {})).rejects.toThrow('half.yml › build › Fetch: give both checksum and algorithm, or neither');
      const s3 = await steps(
        's3.yml',
        `      - { name: Fetch, action: WebDownload, inputs: [{ source: 's3://bucket/key', destination: '${dir}/x' }] }\n`,
      );
      await expect(runDocument(s3, {})).rejects.toThrow(RecipeError);
    });

    describe('over HTTP (a server on the loopback interface)', () => {
      let server: http.Server;
      let base: string;

      beforeEach(async () => {
        server = http.createServer((req, res) => {
          if (req.url === '/dist/artefact.bin') {
            res.writeHead(200, { 'content-type': 'application/octet-stream' });
            res.end(payload);
          } else {
            res.writeHead(404);
            res.end('not here');
          }
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });

      afterEach(async () => {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      });

      it('fetches an http URL, names the file after the URL, and verifies it', async () => {
        const file = await steps(
          'http.yml',
          `      - { name: Fetch, action: WebDownload, inputs: [{ source: '${base}/dist/artefact.bin', destination: '${dir}/dl/', checksum: '${sha256(payload)}', algorithm: SHA256 }] }\n`,
        );
        await runDocument(file, {});
        expect(await readFile(path.join(dir, 'dl', 'artefact.bin'))).toEqual(payload);
      });

      it('fails on any status but 200', async () => {
        const file = await steps(
          'http404.yml',
          `      - { name: Fetch, action: WebDownload, inputs: [{ source: '${base}/missing', destination: '${dir}/dl/missing' }] }\n`,
        );
        await expect(runDocument(file, {})).rejects.toThrow(`http404.yml › build › Fetch failed (GET ${base}/missing: HTTP 404 Not Found)`);
      });
    });
  });

  describe("confined to the build's root (the staging directory stands for the build instance)", () => {
    let root: string;
    let work: string;
    let recipe: string;
    let declared: string;
    const hostTmpName = `bakery-confine-${process.pid}-${Date.now()}`;

    beforeEach(async () => {
      root = path.join(dir, 'staging');
      work = path.join(root, 'work');
      recipe = path.join(dir, 'recipe');
      declared = path.join(dir, 'declared.bin');
      await mkdir(work, { recursive: true });
      await mkdir(recipe);
      await writeFile(path.join(recipe, 'file.txt'), 'from the recipe\n');
      await writeFile(declared, 'declared source\n');
      await writeFile(path.join(dir, 'undeclared.txt'), 'host file\n');
    });

    afterEach(async () => {
      await rm(path.join(os.tmpdir(), hostTmpName), { recursive: true, force: true });
    });

    const confined = (file: string) => runDocument(file, {}, { cwd: work, root, readable: [recipe, declared] });
    const step = (action: string, inputs: string) => `      - name: Step\n        action: ${action}\n        inputs: ${inputs}\n`;

    it('maps absolute write paths into the root: CreateFile, CreateFolder, CopyFile/MoveFile destinations, WebDownload', async () => {
      const hostTmp = path.join(os.tmpdir(), hostTmpName);
      const file = await steps(
        'absolute.yml',
        [
          step('CreateFolder', `[{ path: '${hostTmp}/folder/' }]`),
          step('CreateFile', `[{ path: '${hostTmp}/made.txt', content: 'x' }]`).replace('Step', 'Create'),
          step('CopyFile', `[{ source: '${recipe}/file.txt', destination: '${hostTmp}/copied.txt' }]`).replace('Step', 'Copy'),
          step('MoveFile', `[{ source: '${hostTmp}/copied.txt', destination: '/usr/local/bin/moved.txt' }]`).replace('Step', 'Move'),
          step('WebDownload', `[{ source: '${declared}', destination: '${hostTmp}/dl/' }]`).replace('Step', 'Download'),
          step('SetFilePermissions', `[{ path: '/usr/local/bin/moved.txt', permissions: '0600' }]`).replace('Step', 'Chmod'),
        ].join(''),
      );
      await confined(file);
      await expect(stat(hostTmp)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat('/usr/local/bin/moved.txt')).rejects.toMatchObject({ code: 'ENOENT' });
      const inRoot = path.join(root, hostTmp);
      expect((await readdir(inRoot)).sort()).toEqual(['dl', 'folder', 'made.txt']);
      expect(await readFile(path.join(root, 'usr/local/bin/moved.txt'), 'utf8')).toBe('from the recipe\n');
      expect(await mode(path.join(root, 'usr/local/bin/moved.txt'))).toBe('600');
      expect(await readFile(path.join(inRoot, 'dl', 'declared.bin'), 'utf8')).toBe('declared source\n');
    });

    it('refuses relative paths that climb out of the root, for each writing action', async () => {
      const cases = [
        step('CreateFile', `[{ path: '../../x', content: 'x' }]`),
        step('CreateFolder', `[{ path: '../../folder/' }]`),
        step('CopyFile', `[{ source: '${recipe}/file.txt', destination: '../../copied.txt' }]`),
        step('SetFilePermissions', `[{ path: '../../undeclared.txt', permissions: '0777' }]`),
        step('WebDownload', `[{ source: '${declared}', destination: '../../dl.bin' }]`),
      ];
      for (const [i, body] of cases.entries()) {
        const error = await failure(confined(await steps(`climb-${i}.yml`, body)));
        expect(error).toBeInstanceOf(RecipeError);
        expect(error.message).toContain(`outside the build's root ${root}`);
      }
      expect((await readdir(dir)).sort()).toEqual(
        [
          'climb-0.yml',
          'climb-1.yml',
          'climb-2.yml',
          'climb-3.yml',
          'climb-4.yml',
          'declared.bin',
          'recipe',
          'staging',
          'undeclared.txt',
        ].sort(),
      );
      expect(await mode(path.join(dir, 'undeclared.txt'))).toBe('644');
    });

    it('refuses host files as sources unless the recipe declares them: CopyFile /etc/passwd, a wildcard, WebDownload, MoveFile', async () => {
      const cases: Array<[string, string]> = [
        [step('CopyFile', `[{ source: '/etc/passwd', destination: 'passwd' }]`), 'source /etc/passwd'],
        [step('CopyFile', `[{ source: '${dir}/undeclared.*', destination: 'out/' }]`), `source ${dir}/undeclared.*`],
        [step('WebDownload', `[{ source: 'file://${dir}/undeclared.txt', destination: 'dl.txt' }]`), `source ${dir}/undeclared.txt`],
        // Moving would take the file away from the recipe: only the build's own files move.
        [step('MoveFile', `[{ source: '${recipe}/file.txt', destination: 'moved.txt' }]`), 'only files of the build can be moved'],
      ];
      for (const [i, [body, expected]] of cases.entries()) {
        const error = await failure(confined(await steps(`source-${i}.yml`, body)));
        expect(error).toBeInstanceOf(RecipeError);
        expect(error.message).toContain(expected);
      }
      expect(await readdir(work)).toEqual([]);
      expect(await readFile(path.join(recipe, 'file.txt'), 'utf8')).toBe('from the recipe\n');
      // A declared source and the recipe's own files are fine.
      await confined(
        await steps(
          'declared.yml',
          step('CopyFile', `[{ source: '${declared}', destination: 'a.bin' }, { source: '${recipe}/file.txt', destination: 'b.txt' }]`),
        ),
      );
      expect((await readdir(work)).sort()).toEqual(['a.bin', 'b.txt']);
    });

    it('refuses a path that leads out of the root through a symlink a step made', async () => {
      const out = path.join(dir, 'outside');
      await mkdir(out);
      const file = await steps(
        'link.yml',
        step('ExecuteBash', `{ commands: ['ln -s ${out} escape'] }`) +
          step('CreateFile', `[{ path: 'escape/evil.txt', content: 'x' }]`).replace('Step', 'Write'),
      );
      const error = await failure(confined(file));
      expect(error.message).toContain(`leads to ${out}/evil.txt through a symlink, outside the build's root`);
      expect(await readdir(out)).toEqual([]);
    });

    it('leaves a document run without a root as it was (unconfined, the working directory only)', async () => {
      const target = path.join(dir, 'plain.txt');
      await runDocument(await steps('plain.yml', step('CreateFile', `[{ path: '${target}', content: 'x' }]`)), {});
      expect(await readFile(target, 'utf8')).toBe('x');
    });
  });
});
