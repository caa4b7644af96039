import { randomBytes } from 'node:crypto';
import { link, mkdir, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LockTimeoutError } from '../../errors.ts';
import { createJsonExclusive, readJsonIfExists } from '../../util/fsx.ts';
import { currentOwner, describeOwner, ownerLiveness, type ProcessOwner } from '../../util/owner.ts';

/**
 * Self-healing file locks of the local backend. A lock is `<file>.lock`, created
 * exclusively (write a temp file, then link it into place, so it appears complete
 * with its owner: pid, host, process start time and a nonce of this acquisition).
 * A lock whose owner is dead is taken over, and said so; a live owner is waited for
 * up to a bounded timeout.
 *
 * Written here rather than with proper-lockfile@4: that library judges a lock by the
 * age of its mtime (refreshed by a timer), so it records no owner to name or to check,
 * takes over a live owner whose event loop stalls past `stale` (hashing or zipping a
 * 100 MB tree does), and makes a dead owner's lock wait out the staleness period
 * instead of being taken over at once.
 */

/** What a lock file holds. */
export interface LockRecord extends ProcessOwner {
  nonce: string;
  acquiredAt: string;
}

export interface LockOptions {
  /** How long to wait for a live owner (default 30 s). */
  timeoutMs?: number;
  pollMs?: number;
  /** Told when a dead owner's lock is taken over. */
  onTakeover?: (message: string) => void;
  /** The error to throw when a live owner held it for the whole wait (default LockTimeoutError). */
  onTimeout?: (message: string) => Error;
}

export const DEFAULT_LOCK_TIMEOUT_MS = 30_000;

/** Locks written before owners were recorded hold only `{pid}`: they were taken on this machine. */
function ownerOf(held: Partial<LockRecord>): LockRecord {
  return {
    pid: held.pid ?? -1,
    host: held.host ?? os.hostname(),
    startedAt: held.startedAt ?? 'unknown',
    startTicks: held.startTicks ?? null,
    nonce: held.nonce ?? '',
    acquiredAt: held.acquiredAt ?? 'unknown',
  };
}

/**
 * Remove the dead owner's lock, and only it: rename it aside (one process wins the
 * rename), then check that what was renamed is the lock seen dead. If another process
 * took the lock in between, what was renamed is its live lock: it is linked back.
 */
async function takeOver(lock: string, dead: LockRecord): Promise<boolean> {
  const aside = `${lock}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(lock, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const moved = ownerOf((await readJsonIfExists<Partial<LockRecord>>(aside)) ?? {});
    if (moved.nonce === dead.nonce && moved.pid === dead.pid) return true;
    await link(aside, lock).catch(() => undefined);
    return false;
  } finally {
    await rm(aside, { force: true });
  }
}

/** Hold `<file>.lock` while `fn` runs. */
export async function withFileLock<T>(file: string, fn: () => Promise<T>, options: LockOptions = {}): Promise<T> {
  const lock = `${file}.lock`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS;
  const pollMs = options.pollMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  await mkdir(path.dirname(lock), { recursive: true });
  const mine: LockRecord = { ...currentOwner(), nonce: randomBytes(8).toString('hex'), acquiredAt: new Date().toISOString() };
  for (;;) {
    if (await createJsonExclusive(lock, mine)) break;
    const found = await readJsonIfExists<Partial<LockRecord>>(lock).catch(() => undefined);
    if (found === undefined) continue; // released meanwhile
    const held = ownerOf(found);
    if (ownerLiveness(held) === 'dead') {
      if (await takeOver(lock, held)) {
        options.onTakeover?.(`took over the lock ${lock}: its holder, ${describeOwner(held)}, is gone`);
      }
      continue;
    }
    if (Date.now() >= deadline) {
      const message = `${lock} is held by ${describeOwner(held)} since ${held.acquiredAt}; waited ${(timeoutMs / 1000).toFixed(1)} s`;
      throw options.onTimeout ? options.onTimeout(message) : new LockTimeoutError(message);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  try {
    return await fn();
  } finally {
    // Only our own lock is removed (never one that replaced it).
    const current = await readJsonIfExists<Partial<LockRecord>>(lock).catch(() => undefined);
    if (current?.nonce === mine.nonce) await rm(lock, { force: true });
  }
}
