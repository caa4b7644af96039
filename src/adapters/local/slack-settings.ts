/**
 * The local Slack settings, apart from the Slack client: reading them loads nothing of
 * Slack's or the AWS SDK's, so a command that only needs to know whether Slack is
 * configured stays light (src/adapters/local/slack.ts has the notifier).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

/** The git-ignored file, in the working directory, that may hold the local Slack settings. */
export const LOCAL_ENV_FILE = '.bakery.env';

const KEYS = ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET', 'SLACK_CHANNEL', 'SLACK_API_URL'] as const;
type Key = (typeof KEYS)[number];

/**
 * Slack settings of the local backend. Each comes from the environment, else from
 * `.bakery.env`; none is ever written anywhere by bakery. With a bot token and a
 * channel, local bakes post to Slack too; with a signing secret, `bakery
 * callback-server` can take the clicks.
 */
export interface LocalSlackSettings {
  botToken: string | undefined;
  signingSecret: string | undefined;
  channel: string | undefined;
  /** Another Web API base URL (a fake Slack in tests); Slack's own by default. */
  apiUrl: string | undefined;
}

/** `KEY=value` lines (`export` prefix, quotes and `#` comments allowed), as dotenv files are written. */
export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    let value = m[2] ?? '';
    const quoted = /^(['"])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2] ?? '';
    else value = value.replace(/\s+#.*$/, '');
    out[m[1]] = value;
  }
  return out;
}

/** Read the local Slack settings: the environment first, then `<cwd>/.bakery.env` when it exists. */
export async function readLocalSlackSettings(env: NodeJS.ProcessEnv, cwd: string): Promise<LocalSlackSettings> {
  let file: Record<string, string> = {};
  try {
    file = parseEnvFile(await readFile(path.join(cwd, LOCAL_ENV_FILE), 'utf8'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const get = (key: Key): string | undefined => env[key] || file[key] || undefined;
  return {
    botToken: get('SLACK_BOT_TOKEN'),
    signingSecret: get('SLACK_SIGNING_SECRET'),
    channel: get('SLACK_CHANNEL'),
    apiUrl: get('SLACK_API_URL'),
  };
}
