/** The local composition's Slack side, apart from src/compose/local.ts so that only the commands that serve Slack clicks load the Slack client. */
import { localReplies, localSlackNotifier } from '../adapters/local/slack.ts';
import type { LocalSlackSettings } from '../adapters/local/slack-settings.ts';
import type { SlackCallbackDeps } from './deps.ts';
import type { LocalDeps } from './local.ts';

/**
 * The slackCallback function key on the local backend (`bakery callback-server`, `bakery
 * serve`): the approvals, callbacks and notifier of a local composition, replies to the
 * clicker through Slack when a bot token is set (else printed), and the signing secret.
 */
export function localSlackCallbackDeps(
  deps: LocalDeps,
  settings: LocalSlackSettings & { signingSecret: string },
  write: (line: string) => void,
): Omit<SlackCallbackDeps, 'log'> {
  const secret = settings.signingSecret;
  return {
    approvals: deps.approvals,
    callbacks: deps.callbacks,
    notifier: deps.notifier,
    clock: deps.clock,
    replies: localReplies(localSlackNotifier(settings), write),
    signingSecret: async () => secret,
  };
}
