/**
 * The sharing behind `sharedDefaultPackage()` (test/helpers/package.ts), with a fake packager:
 * one caller produces, the others wait for its result or its failure, and waiting is bounded.
 * And test/global-setup.ts, which makes the run's directory and removes it.
 */
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { currentOwner } from '../../src/util/owner.ts';
import setup, { SHARED_PACKAGE_DIR } from '../global-setup.ts';
import { PackagingFailed, SharedPackageWaitFailed, type SharedPackaging, shareOnce } from '../helpers/package.ts';
import { scratchDir } from '../helpers/scratch.ts';

const RESULT: SharedPackaging = { serviceDir: '/tmp/service', outDir: '/tmp/service/.serverless', seconds: 12.5 };
const FAST = { pollMs: 10, waitMs: 2_000 };

describe('shareOnce', () => {
  it('produces once for callers at the same time, and gives each the same result', async () => {
    // Prepare
    const dir = await scratchDir('bakery-share-');
    let calls = 0;
    const produce = async () => {
      calls += 1;
      await sleep(100);
      return RESULT;
    };

    // Act
    const results = await Promise.all([1, 2, 3].map(() => shareOnce(dir, produce, FAST)));

    // Assess
    expect(calls).toBe(1);
    expect(results).toEqual([RESULT, RESULT, RESULT]);
    expect(JSON.parse(await readFile(path.join(dir, 'done.json'), 'utf8'))).toEqual(RESULT);
    // Written whole: no temporary file is left beside it.
    expect((await readdir(dir)).sort()).toEqual(['done.json', 'lock']);
    // A later caller reads the result, without producing.
    expect(await shareOnce(dir, produce, FAST)).toEqual(RESULT);
    expect(calls).toBe(1);
  });

  it("gives the producer its own error and the waiters a PackagingFailed with the producer's output", async () => {
    // Prepare
    const dir = await scratchDir('bakery-share-');
    let calls = 0;
    const produce = async (): Promise<SharedPackaging> => {
      calls += 1;
      await sleep(100);
      throw new PackagingFailed('osls package failed: exit 1', 'Error: stage "Prod" is not allowed');
    };

    // Act
    const outcomes = await Promise.allSettled([1, 2, 3].map(() => shareOnce(dir, produce, FAST)));

    // Assess
    expect(calls).toBe(1);
    const errors = outcomes.map((o) => (o.status === 'rejected' ? (o.reason as PackagingFailed) : undefined));
    expect(errors.every((e) => e instanceof PackagingFailed)).toBe(true);
    expect(errors.map((e) => e?.output)).toEqual(Array(3).fill('Error: stage "Prod" is not allowed'));
    expect(errors.filter((e) => e?.message.startsWith('osls package failed: exit 1'))).toHaveLength(1);
    expect(errors.filter((e) => e?.message.startsWith('the shared packaging failed in another process: osls package failed'))).toHaveLength(
      2,
    );
  });

  it('stops waiting after waitMs for a packaging that never ends, saying what it waited for', async () => {
    // Prepare: the lock is held by a live process (this one) that never writes a result.
    const dir = await scratchDir('bakery-share-');
    await mkdir(path.join(dir, 'lock'));
    await writeFile(path.join(dir, 'lock', 'owner.json'), JSON.stringify(currentOwner()));
    const started = Date.now();

    // Act
    const error = await shareOnce(dir, async () => RESULT, { pollMs: 10, waitMs: 300 }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SharedPackageWaitFailed);
    expect((error as Error).message).toContain(`waited 0.3 s for ${path.join(dir, 'done.json')} or ${path.join(dir, 'failed.json')}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('stops waiting at once when the process that took the lock has ended without a result', async () => {
    // Prepare: a process that has exited holds the lock.
    const dir = await scratchDir('bakery-share-');
    const child = execFile(process.execPath, ['-e', '']);
    await new Promise((resolve) => child.on('exit', resolve));
    await mkdir(path.join(dir, 'lock'));
    await writeFile(path.join(dir, 'lock', 'owner.json'), JSON.stringify({ ...currentOwner(), pid: child.pid, startTicks: null }));
    const started = Date.now();

    // Act
    const error = await shareOnce(dir, async () => RESULT, { pollMs: 10, waitMs: 60_000 }).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(SharedPackageWaitFailed);
    expect((error as Error).message).toContain(`process ${child.pid}`);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('the global setup', () => {
  it('provides a fresh directory per run, and removes it without following its links', async () => {
    // Prepare
    const provided: string[] = [];
    let rerun: (() => Promise<void> | void) | undefined;
    const project = {
      provide: (key: string, value: string) => {
        expect(key).toBe(SHARED_PACKAGE_DIR);
        provided.push(value);
      },
      onTestsRerun: (fn: () => Promise<void> | void) => {
        rerun = fn;
      },
    };
    const target = await scratchDir('bakery-share-target-');
    await writeFile(path.join(target, 'kept'), 'kept');
    const exists = (dir: string) =>
      readdir(dir).then(
        () => true,
        () => false,
      );

    // Act
    const teardown = await setup(project as unknown as Parameters<typeof setup>[0]);
    const [first] = provided as [string];
    await symlink(target, path.join(first, 'link'));
    await rerun?.();
    const second = provided[1] as string;
    await symlink(target, path.join(second, 'link'));
    await teardown();

    // Assess
    expect(path.basename(first)).toMatch(/^bakery-shared-package-/);
    expect(second).not.toBe(first);
    expect(await exists(first)).toBe(false);
    expect(await exists(second)).toBe(false);
    expect(await readFile(path.join(target, 'kept'), 'utf8')).toBe('kept');
  });
});
