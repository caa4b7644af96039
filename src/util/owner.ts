import { readFileSync } from 'node:fs';
import os from 'node:os';

/**
 * Who holds a lock or runs an execution: the process (pid), the machine it runs on and
 * when that process started. The start time tells a live owner from a later, unrelated
 * process that happens to get the same pid.
 */
export interface ProcessOwner {
  pid: number;
  host: string;
  /** When the owning process started (ISO 8601). */
  startedAt: string;
  /** The kernel's start time of the process (`/proc/<pid>/stat` field 22, clock ticks since boot), where there is one. */
  startTicks: string | null;
}

/** `/proc/<pid>/stat`: the process state letter and its start time in ticks; undefined when there is no such process (or no /proc). */
function procStat(pid: number): { state: string; startTicks: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[19];
  return state && startTicks ? { state, startTicks } : undefined;
}

let self: ProcessOwner | undefined;

/** This process as an owner. */
export function currentOwner(): ProcessOwner {
  self ??= {
    pid: process.pid,
    host: os.hostname(),
    startedAt: new Date(performance.timeOrigin).toISOString(),
    startTicks: procStat(process.pid)?.startTicks ?? null,
  };
  return self;
}

/**
 * Whether the owner still runs: `alive`, `dead`, or `unknown` when it runs on another
 * machine (its pid means nothing here, so it is treated as alive by whoever asks).
 */
export function ownerLiveness(owner: ProcessOwner): 'alive' | 'dead' | 'unknown' {
  if (owner.host !== os.hostname()) return 'unknown';
  if (owner.pid === process.pid) return owner.startedAt === currentOwner().startedAt ? 'alive' : 'dead';
  try {
    process.kill(owner.pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return 'dead';
  }
  const stat = procStat(owner.pid);
  if (stat === undefined) return process.platform === 'linux' ? 'dead' : 'alive';
  // A killed process its parent has not reaped yet is a zombie: it runs nothing any more.
  if (stat.state === 'Z' || stat.state === 'X') return 'dead';
  // The pid was given to another process since.
  if (owner.startTicks !== null && stat.startTicks !== owner.startTicks) return 'dead';
  return 'alive';
}

/** `pid 123 on host h (started 2026-…)`, for messages. */
export const describeOwner = (owner: ProcessOwner): string => `pid ${owner.pid} on ${owner.host} (started ${owner.startedAt})`;
