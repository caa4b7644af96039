import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localSlackNotifier, parseEnvFile, readLocalSlackSettings } from '../../../src/adapters/local/slack.ts';
import { startFakeSlack } from '../../helpers/fake-slack.ts';
import { approvalRecord } from '../aws/fixtures.ts';

describe('local Slack settings', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'bakery-slack-env-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('parses KEY=value lines with comments, export prefixes and quotes', () => {
    const text = [
      '# Slack for local bakes',
      'export SLACK_BOT_TOKEN=xoxb-1-2',
      'SLACK_CHANNEL = C0RELEASES   # the release channel',
      `SLACK_SIGNING_SECRET="with # hash"`,
      "QUOTED='single'",
      'not a line',
      '',
    ].join('\n');

    expect(parseEnvFile(text)).toEqual({
      SLACK_BOT_TOKEN: 'xoxb-1-2',
      SLACK_CHANNEL: 'C0RELEASES',
      SLACK_SIGNING_SECRET: 'with # hash',
      QUOTED: 'single',
    });
  });

  it('reads .bakery.env from the working directory, the environment winning', async () => {
    await writeFile(path.join(dir, '.bakery.env'), 'SLACK_BOT_TOKEN=xoxb-file\nSLACK_SIGNING_SECRET=file-secret\nSLACK_CHANNEL=C0FILE\n');

    const settings = await readLocalSlackSettings({ SLACK_CHANNEL: 'C0ENV', SLACK_SIGNING_SECRET: '' }, dir);

    expect(settings).toEqual({ botToken: 'xoxb-file', signingSecret: 'file-secret', channel: 'C0ENV', apiUrl: undefined });
  });

  it('has nothing set without either, and then no Slack notifier', async () => {
    const settings = await readLocalSlackSettings({}, dir);

    expect(settings).toEqual({ botToken: undefined, signingSecret: undefined, channel: undefined, apiUrl: undefined });
    expect(localSlackNotifier(settings)).toBeUndefined();
    expect(localSlackNotifier({ ...settings, botToken: 'xoxb' })).toBeUndefined();
  });

  it('posts through the API URL it is given, and names the environment variable, not SSM, when Slack rejects the token', async () => {
    // Prepare
    const slack = await startFakeSlack();
    try {
      const notifier = localSlackNotifier({ botToken: 'xoxb-bad', channel: 'C0', signingSecret: undefined, apiUrl: slack.apiUrl });
      slack.script('chat.postMessage', { json: { ok: false, error: 'invalid_auth' } });

      // Act
      const post = notifier?.approvalRequested(approvalRecord());

      // Assess
      await expect(post).rejects.toThrow(
        'Slack rejected the bot token (invalid_auth): check the environment variable (or .bakery.env entry) SLACK_BOT_TOKEN',
      );
      expect(slack.calls('chat.postMessage')[0]?.headers.authorization).toBe('Bearer xoxb-bad');
    } finally {
      await slack.close();
    }
  });
});
