import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { currentOwner, ownerLiveness } from '../../src/util/owner.ts';

describe('process owners', () => {
  it('knows this process alive, and a process that exited dead', async () => {
    // Prepare
    const child = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => child.on('close', resolve));

    // Act
    const self = ownerLiveness(currentOwner());
    const exited = ownerLiveness({ ...currentOwner(), pid: child.pid as number, startTicks: null });

    // Assess
    expect(self).toBe('alive');
    expect(exited).toBe('dead');
  });

  it('tells a pid given to another process since from its owner by the start time', () => {
    // Prepare: a live pid (this one), but not the process that started at that time.
    const other = { ...currentOwner(), pid: process.ppid, startTicks: '1' };

    // Act
    const liveness = ownerLiveness(other);

    // Assess
    expect(liveness).toBe(process.platform === 'linux' ? 'dead' : 'alive');
  });

  it('cannot tell for an owner on another machine', () => {
    expect(ownerLiveness({ ...currentOwner(), host: 'elsewhere.example' })).toBe('unknown');
  });
});
