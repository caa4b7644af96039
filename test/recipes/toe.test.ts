import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageBuildFailedError, RecipeError } from '../../src/errors.ts';
import { runDocument, type StepEvent } from '../../src/recipes/toe.ts';

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

  it('runs phases in order with parameters and defaults substituted', async () => {
    const out = path.join(dir, 'out.txt');
    const file = await doc(
      'ok.yml',
      `name: ok
schemaVersion: 1.0
parameters:
  - Greeting: { type: string }
  - Target: { type: string, default: world }
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
            - "echo '{{ Greeting }}, {{Target}}' >> '${out}'"
  - name: validate
    steps:
      - name: Second
        action: ExecuteBash
        inputs: { commands: ["echo second >> '${out}'"] }
`,
    );
    const events: StepEvent[] = [];
    await runDocument(file, { Greeting: 'hello' }, { onStep: (e) => events.push(e) });
    expect(await readFile(out, 'utf8')).toBe('hello, world\nsecond\nthird\n');
    expect(events.filter((e) => e.status === 'succeeded').map((e) => `${e.phase}/${e.step}`)).toEqual([
      'build/First',
      'validate/Second',
      'test/Third',
    ]);
  });

  it('stops at the first failing step and names document, phase, step and output', async () => {
    const marker = path.join(dir, 'after');
    const file = await doc(
      'fail.yml',
      `name: fail
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Breaks
        action: ExecuteBash
        inputs: { commands: ["echo 'something went wrong' >&2", "exit 3"] }
      - name: NeverRuns
        action: ExecuteBash
        inputs: { commands: ["touch '${marker}'"] }
`,
    );
    const error = await runDocument(file, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageBuildFailedError);
    expect((error as Error).message).toContain('fail.yml › build › Breaks failed (exit 3)');
    expect((error as Error).message).toContain('something went wrong');
    await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('retries a step up to maxAttempts', async () => {
    const counter = path.join(dir, 'count');
    const file = await doc(
      'retry.yml',
      `name: retry
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Flaky
        action: ExecuteBash
        maxAttempts: 3
        inputs:
          commands:
            - "echo x >> '${counter}'"
            - "test $(wc -l < '${counter}') -ge 3"
`,
    );
    await runDocument(file, {});
    expect((await readFile(counter, 'utf8')).trim().split('\n')).toHaveLength(3);
  });

  it('goes on past a failing step marked onFailure: Continue', async () => {
    const marker = path.join(dir, 'after');
    const file = await doc(
      'continue.yml',
      `name: c
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: MayFail
        action: ExecuteBash
        onFailure: Continue
        inputs: { commands: ["exit 1"] }
      - name: Next
        action: ExecuteBash
        inputs: { commands: ["touch '${marker}'"] }
`,
    );
    const events: StepEvent[] = [];
    await runDocument(file, {}, { onStep: (e) => events.push(e) });
    expect(events.find((e) => e.step === 'MayFail' && e.status !== 'started')?.status).toBe('ignored');
    await expect(readFile(marker)).resolves.toBeDefined();
  });

  it('kills a step that runs past timeoutSeconds', async () => {
    const file = await doc(
      'slow.yml',
      `name: slow
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Sleeps
        action: ExecuteBash
        timeoutSeconds: 1
        inputs: { commands: ["sleep 30"] }
`,
    );
    await expect(runDocument(file, {})).rejects.toThrow('slow.yml › build › Sleeps timed out after 1s');
  });

  it('refuses an action it does not support, naming it', async () => {
    const file = await doc(
      'reboot.yml',
      `name: r
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: Restart
        action: Reboot
        inputs: {}
`,
    );
    const error = await runDocument(file, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RecipeError);
    expect((error as Error).message).toContain('reboot.yml › build › Restart: action "Reboot" is not supported');
  });

  it('names a parameter the document does not declare', async () => {
    const file = await doc(
      'unknown.yml',
      `name: u
schemaVersion: 1.0
phases:
  - name: build
    steps:
      - name: UsesUnknown
        action: ExecuteBash
        inputs: { commands: ["echo {{ Nope }}"] }
`,
    );
    await expect(runDocument(file, {})).rejects.toThrow('unknown.yml › build › UsesUnknown: unknown parameter "{{ Nope }}"');
  });

  it('names a declared parameter with no value', async () => {
    const file = await doc(
      'missing.yml',
      `name: m
schemaVersion: 1.0
parameters:
  - Needed: { type: string }
phases:
  - name: build
    steps:
      - name: S
        action: ExecuteBash
        inputs: { commands: ["true"] }
`,
    );
    await expect(runDocument(file, {})).rejects.toThrow('parameter "Needed" has no value and no default');
  });

  it('rejects a malformed document with the file name', async () => {
    const file = await doc('bad.yml', 'name: bad\nschemaVersion: 1.0\nphases: []\n');
    await expect(runDocument(file, {})).rejects.toThrow(/bad\.yml is not a valid component document/);
  });
});
