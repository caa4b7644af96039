/**
 * The local ledger survives a writer killed mid-write: a child process appends large
 * entries in a loop and is SIGKILLed; every entry it acknowledged is there and parses,
 * a torn tail is ignored, and the next append starts on a line of its own.
 */
import { spawn } from 'node:child_process';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../../src/adapters/local/home.ts';
import { LocalLedger } from '../../../src/adapters/local/stores.ts';
import { PROJECT_ROOT } from '../../../src/local/asl.ts';
import type { LedgerEntry } from '../../../src/ports/storage.ts';
import { NODE22 } from '../../helpers/local-bake.ts';

const STORES = pathToFileURL(path.join(PROJECT_ROOT, 'src', 'adapters', 'local', 'stores.ts')).href;
const HOME = pathToFileURL(path.join(PROJECT_ROOT, 'src', 'adapters', 'local', 'home.ts')).href;

/** Appends entries of `size` bytes forever, printing `ack <n>` once entry n is durable. */
const WRITER = `
const { LocalLedger } = await import(${JSON.stringify(STORES)});
const { LocalHome } = await import(${JSON.stringify(HOME)});
const [root, size, start] = process.argv.slice(1);
const ledger = new LocalLedger(new LocalHome(root));
const cause = 'x'.repeat(Number(size));
for (let n = Number(start); ; n++) {
  await ledger.append({ type: 'failed', bakeId: 'kill-' + n, at: new Date().toISOString(), state: 'Validate', error: 'E', cause, manifest: null });
  process.stdout.write('ack ' + n + '\\n');
}
`;

/**
 * Start a writer and SIGKILL it once `acks` entries are acknowledged and the file is
 * caught in the middle of a line (the next append's write under way: the kill lands
 * inside it), or after `graceMs` if that is never seen. Resolves with the last
 * acknowledged entry.
 */
function writeUntilKilled(root: string, options: { size: number; start: number; acks: number; graceMs?: number }): Promise<number> {
  const file = path.join(root, 'ledger.jsonl');
  return new Promise((resolve, reject) => {
    const child = spawn(NODE22, ['--input-type=module', '-e', WRITER, root, String(options.size), String(options.start)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let lastAck = options.start - 1;
    let stderr = '';
    let buffered = '';
    let killing = false;
    const killMidLine = () => {
      const fd = openSync(file, 'r');
      const last = Buffer.alloc(1);
      const until = Date.now() + (options.graceMs ?? 2000);
      try {
        // A tight loop on purpose: the write of one entry takes about a millisecond.
        while (Date.now() < until) {
          const { size } = fstatSync(fd);
          if (size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a) break;
        }
      } finally {
        closeSync(fd);
      }
      child.kill('SIGKILL');
    };
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) lastAck = Number(line.slice('ack '.length));
      if (!killing && lastAck - options.start + 1 >= options.acks) {
        killing = true;
        killMidLine();
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`writer ended by itself (code ${code}): ${stderr}`));
      else resolve(lastAck);
    });
  });
}

const seqOf = (e: LedgerEntry) => Number(e.bakeId?.slice('kill-'.length));

describe('LocalLedger under SIGKILL', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'bakery-ledger-kill-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('keeps every acknowledged entry through repeated kills mid-write, and appends cleanly after', { timeout: 120_000 }, async () => {
    // Prepare
    const ledger = new LocalLedger(new LocalHome(root));
    const file = path.join(root, 'ledger.jsonl');
    let next = 0;
    let torn = 0;

    for (let round = 0; round < 6; round++) {
      // Act: 4 MiB entries make each write long enough for a kill to land inside it.
      const lastAck = await writeUntilKilled(root, { size: 4 * 1024 * 1024, start: next, acks: 2 });
      const text = await readFile(file, 'utf8');
      if (!text.endsWith('\n')) torn += 1;

      // Assess: all acknowledged entries, in order, each exactly once; at most one more (written, not yet acknowledged).
      const seqs = (await ledger.list()).map(seqOf);
      expect(seqs.slice(0, lastAck + 1)).toEqual(Array.from({ length: lastAck + 1 }, (_, i) => i));
      expect(seqs.length - (lastAck + 1)).toBeLessThanOrEqual(1);
      next = seqs.length;
    }

    // Act: a normal append after the last kill.
    await ledger.append({
      type: 'failed',
      bakeId: 'after',
      at: new Date().toISOString(),
      state: 'S',
      error: 'E',
      cause: 'c',
      manifest: null,
    });

    // Assess
    const entries = await ledger.list();
    expect(entries.at(-1)?.bakeId).toBe('after');
    expect(entries.slice(0, -1).map(seqOf)).toEqual(Array.from({ length: entries.length - 1 }, (_, i) => i));
    const lines = (await readFile(file, 'utf8')).split('\n');
    expect(lines.at(-1)).toBe('');
    expect(JSON.parse(lines.at(-2) ?? '')).toMatchObject({ bakeId: 'after' });
    expect((await stat(file)).size).toBeGreaterThan(0);
    // The kills did land inside writes (at least one left a torn tail for the next writer to append after).
    expect(torn).toBeGreaterThan(0);
  });

  it('starts the next append on a new line after a torn tail, and skips the torn line from then on', async () => {
    // Prepare: a complete entry, then the start of one whose writer died.
    const ledger = new LocalLedger(new LocalHome(root));
    const entry = (bakeId: string): LedgerEntry => ({
      type: 'failed',
      bakeId,
      at: '2026-01-01T00:00:00.000Z',
      state: 'Validate',
      error: 'E',
      cause: 'c',
      manifest: null,
    });
    await ledger.append(entry('a'));
    await appendFile(path.join(root, 'ledger.jsonl'), '{"type":"released","bakeId":"torn","functions":[{"name":"x"}');

    // Act
    await ledger.append(entry('b'));
    await ledger.append(entry('c'));

    // Assess
    expect((await ledger.list()).map((e) => e.bakeId)).toEqual(['a', 'b', 'c']);
    const lines = (await readFile(path.join(root, 'ledger.jsonl'), 'utf8')).split('\n');
    expect(lines[1]).toBe('{"type":"released","bakeId":"torn","functions":[{"name":"x"}');
    expect(JSON.parse(lines[2] ?? '')).toMatchObject({ bakeId: 'b' });
  });
});
