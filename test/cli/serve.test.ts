import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { BIN } from '../helpers/cli.ts';
import { NODE22 } from '../helpers/local-bake.ts';

describe('bakery serve (the command)', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints what it serves, writes serve.json (0600), and stops cleanly on SIGINT', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-serve-cli-'));
    const child = spawn(NODE22, [BIN, 'serve', '--port', '0', '--s3-port', '0'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: dir, BAKERY_HOME: path.join(dir, 'home'), BAKERY_USER: 'dana' },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    // Bounded: a server that never comes up fails the test instead of hanging it.
    const until = Date.now() + 60_000;
    while (!output.includes('written to') && child.exitCode === null && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    expect(await exited).toBe(0);

    const file = path.join(dir, 'home', 'serve.json');
    const info = JSON.parse(await readFile(file, 'utf8'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(output).toContain(`dashboard  ${info.dashboard.url}?token=${info.dashboard.token}`);
    expect(output).toContain(`s3         ${info.s3.endpoint}  bucket bakery-source, uploads under bakes/ start bakes`);
    expect(output).toContain('schedules  patch-rebuild rate(7 days), drift-check rate(1 hour)');
    expect(output).toContain('stopped; running bakes resume at the next start');
  }, 90_000);
});
