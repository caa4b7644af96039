/**
 * The release invariant through the real CLI process (bin/bakery.mjs, the real node22
 * recipe): a `bakery bake` SIGKILLed after Release moved the alias and before
 * RecordSuccess recorded it is listed as interrupted by `bakery executions`, and
 * `bakery resume` records exactly that move, once. The runner-level kill matrix (every
 * state) is in test/local/journal.test.ts; this is the same promise as a user meets it.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { BIN, runBin as bakery, binEnv, EXAMPLE_SPEC } from '../helpers/cli.ts';

/** `bakery bake` stopped at `pauseAt` (the test-only hook), then SIGKILLed; resolves with what it printed. */
function bakeKilledAt(home: string, pauseAt: string): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'bake', EXAMPLE_SPEC, '--approve'], {
    cwd: PROJECT_ROOT,
    env: binEnv(home, { BAKERY_TEST_PAUSE_AT: pauseAt }),
  });
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the bake never reached ${pauseAt}:\n${output}`));
    }, 180_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes(`paused at ${pauseAt}`)) child.kill('SIGKILL');
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (_code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') resolve(output);
      else reject(new Error(`the bake ended before ${pauseAt}:\n${output}`));
    });
  });
}

describe('bakery bake killed between Release and RecordSuccess, then `bakery resume`', () => {
  let home: string | undefined;

  afterAll(async () => {
    if (home) await rm(home, { recursive: true, force: true });
  });

  it('lists the bake as interrupted with live moved but unrecorded, and resume records the move once', { timeout: 300_000 }, async () => {
    // Prepare
    home = await mkdtemp(path.join(os.tmpdir(), 'bakery-kill-'));
    const printed = await bakeKilledAt(home, 'Release:completed');
    const bakeId = /bake (\S+), recipe node22/.exec(printed)?.[1] ?? '';

    // Act
    const listed = await bakery(['executions', '--json'], home);
    const ledgerBefore = await readFile(path.join(home, 'ledger.jsonl'), 'utf8').catch(() => '');
    const liveBefore = JSON.parse(await readFile(path.join(home, 'functions', 'hello', 'aliases', 'live.json'), 'utf8')) as {
      version: string;
    };
    const resumed = await bakery(['resume', bakeId], home);
    const again = await bakery(['resume', bakeId], home);
    const after = await bakery(['executions', '--json'], home);
    const verified = await bakery(['verify', bakeId], home);

    // Assess
    expect(bakeId).not.toBe('');
    expect(JSON.parse(listed.stdout)).toMatchObject({ executions: [{ bakeId, status: 'interrupted', state: 'Release' }] });
    expect(liveBefore.version).toBe('1');
    expect(ledgerBefore).toBe('');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`bake ${bakeId} released`);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('NotInterruptedError');
    const entries = (await readFile(path.join(home, 'ledger.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; bakeId: string; functions: Array<{ from: string | null; to: string }> });
    expect(entries).toEqual([
      expect.objectContaining({ type: 'released', bakeId, functions: [expect.objectContaining({ from: null, to: '1' })] }),
    ]);
    expect(JSON.parse(after.stdout)).toMatchObject({ executions: [{ bakeId, status: 'succeeded' }] });
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });
});
