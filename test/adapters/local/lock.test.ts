/**
 * Self-healing locks of the local backend, held by real processes: a holder that is
 * SIGKILLed leaves its lock behind, which the next taker takes over; a live holder is
 * waited for, within a bound.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { withFileLock } from '../../../src/adapters/local/lock.ts';
import { LocalFunctionRegistry } from '../../../src/adapters/local/registries.ts';
import { LockTimeoutError } from '../../../src/errors.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import { makeWorkspace, NODE22, seedLiveRelease, type Workspace } from '../../helpers/local-bake.ts';
import { rejection } from '../../helpers/rejection.ts';

const LOCK_MODULE = pathToFileURL(path.join(PROJECT_ROOT, 'src', 'adapters', 'local', 'lock.ts')).href;

let workspaces: Workspace[] = [];
let children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children = [];
  await Promise.all(workspaces.map((ws) => ws.cleanup()));
  workspaces = [];
});

/** A process that takes the lock on `file` and holds it until its stdin closes (or it is killed). */
async function holder(file: string): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const script = `import { withFileLock } from ${JSON.stringify(LOCK_MODULE)};
await withFileLock(${JSON.stringify(file)}, async () => {
  process.stdout.write('held\\n');
  await new Promise((resolve) => process.stdin.on('close', resolve).resume());
});`;
  const child = spawn(NODE22, ['--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('held')) resolve();
    });
    child.on('close', (code) => reject(new Error(`the lock holder exited (${code}) before taking the lock`)));
  });
  return { child, exited };
}

async function workspace(): Promise<Workspace> {
  const ws = await makeWorkspace();
  workspaces.push(ws);
  return ws;
}

describe('local locks', () => {
  it('takes over the alias lock of a SIGKILLed holder and says so, so releases and rollbacks go on', async () => {
    // Prepare: today a holder killed inside aliases/live.json.lock blocked every later move with AliasConflictError.
    const ws = await workspace();
    const live = await seedLiveRelease(ws);
    const aliasFile = ws.home.path('functions', 'hello', 'aliases', 'live.json');
    const held = await holder(aliasFile);
    const holderPid = held.child.pid;
    held.child.kill('SIGKILL');
    await held.exited;
    const notices: string[] = [];
    const registry = new LocalFunctionRegistry(ws.home, { onLockTakeover: (m) => notices.push(m) });

    // Act
    const moved = await registry.setAlias('hello', 'live', '1', live.revisionId);

    // Assess
    expect(moved.revisionId).not.toBe(live.revisionId);
    expect(notices).toEqual([expect.stringContaining(`its holder, pid ${holderPid} on `)]);
    expect(notices[0]).toContain('is gone');
  });

  it('takes over a lock in the format written before owners were recorded ({pid} of a dead process)', async () => {
    // Prepare
    const ws = await workspace();
    const live = await seedLiveRelease(ws);
    const gone = spawn(NODE22, ['-e', '']);
    await new Promise((resolve) => gone.on('close', resolve));
    await writeFile(ws.home.path('functions', 'hello', 'aliases', 'live.json.lock'), JSON.stringify({ pid: gone.pid }));

    // Act
    const moved = await new LocalFunctionRegistry(ws.home).setAlias('hello', 'live', '1', live.revisionId);

    // Assess
    expect(moved.version).toBe('1');
  });

  it('waits for a live holder, then runs once it lets go', async () => {
    // Prepare
    const ws = await workspace();
    const file = ws.home.path('some.json');
    const held = await holder(file);
    const order: string[] = [];

    // Act
    const taking = withFileLock(file, async () => {
      order.push('taken');
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    order.push('released');
    held.child.stdin?.end();
    await taking;

    // Assess
    expect(order).toEqual(['released', 'taken']);
  });

  it('refuses after the bounded wait while the holder lives, naming it, and leaves its lock alone', async () => {
    // Prepare
    const ws = await workspace();
    const file = ws.home.path('some.json');
    const held = await holder(file);
    const lock = await readFile(`${file}.lock`, 'utf8');
    let ran = false;

    // Act
    const error = await rejection(
      withFileLock(
        file,
        async () => {
          ran = true;
        },
        { timeoutMs: 300 },
      ),
    );

    // Assess
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.message).toContain(`is held by pid ${held.child.pid} on `);
    expect(ran).toBe(false);
    expect(await readFile(`${file}.lock`, 'utf8')).toBe(lock);
  });
});
