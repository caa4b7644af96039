import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalHome } from '../../src/adapters/local/home.ts';
import { ExitCodes } from '../../src/cli/program.ts';
import { addSlackCommands } from '../../src/cli/slack.ts';
import { createLocalDeps } from '../../src/compose/local.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { runCli } from '../helpers/cli.ts';

describe('bakery callback-server', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-cli-slack-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const bakery = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli(args, { PATH: process.env.PATH, BAKERY_HOME: path.join(dir, 'home'), ...env }, dir);

  it('refuses to start without a signing secret, saying where to put it', async () => {
    const result = await bakery(['callback-server']);

    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('SLACK_SIGNING_SECRET is not set');
    expect(result.stderr).toContain('.bakery.env');
  });

  it('runs on the local backend only', async () => {
    const result = await bakery(['--backend', 'aws', 'callback-server'], { SLACK_SIGNING_SECRET: 's' });

    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('`bakery callback-server` runs on the local backend only');
  });

  it('refuses a port that is not one', async () => {
    const result = await bakery(['callback-server', '--port', '70000'], { SLACK_SIGNING_SECRET: 's' });

    expect(result.code).toBe(ExitCodes.BadInput);
    expect(result.stderr).toContain('expected a TCP port');
  });

  it('listens on 127.0.0.1 until stopped, refusing unsigned requests', async () => {
    // Prepare
    const home = new LocalHome(path.join(dir, 'home'));
    await home.ensure();
    const lines: string[] = [];
    let stop: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const program = new Command().exitOverride();
    addSlackCommands(program, {
      line: (text = '') => lines.push(text),
      requireLocal: () => {},
      settings: async () => ({ signingSecret: 'local-secret', botToken: undefined, channel: undefined, apiUrl: undefined }),
      localDeps: async () => createLocalDeps({ home, projectRoot: PROJECT_ROOT }),
      stopped: () => stopped,
    });

    // Act
    const running = program.parseAsync(['callback-server', '--port', '0'], { from: 'user' });
    const url = await new Promise<string>((resolve, reject) => {
      const poll = setInterval(() => {
        const line = lines.find((l) => l.startsWith('listening on '));
        if (line) {
          clearInterval(poll);
          resolve(line.slice('listening on '.length));
        }
      }, 5);
      running.catch((error: unknown) => {
        clearInterval(poll);
        reject(error);
      });
    });
    const unsigned = await fetch(url, { method: 'POST', body: 'payload=%7B%7D' });
    stop();
    await running;

    // Assess
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/slack\/interactions$/);
    expect(unsigned.status).toBe(401);
    expect(lines).toContain('  unauthenticated: missing X-Slack-Request-Timestamp or X-Slack-Signature');
    expect(lines.at(-1)).toBe('stopped');
    expect(lines.join('\n')).toContain('no SLACK_BOT_TOKEN/SLACK_CHANNEL');
  });
});
