import { type Command, Option } from 'commander';
import type { LocalSlackSettings } from '../adapters/local/slack-settings.ts';
import type { LocalDeps } from '../compose/local.ts';
import type { SlackOutcome } from '../cores/slack-callback.ts';
import { InputError } from '../errors.ts';
import { parsePort, untilSignal } from './long-running.ts';

/** What the Slack commands need from the program that hosts them. */
export interface SlackCommandContext {
  line: (text?: string) => void;
  /** Fails unless the chosen backend is the local one. */
  requireLocal: (command: string) => void;
  /** The local Slack settings (environment, then `.bakery.env`). */
  settings: () => Promise<LocalSlackSettings>;
  /** The local ports on the existing state directory. */
  localDeps: () => Promise<LocalDeps>;
  /** Resolves when the server should stop; by default on SIGINT or SIGTERM. */
  stopped?: () => Promise<void>;
}

function describe(outcome: SlackOutcome): string {
  switch (outcome.kind) {
    case 'decided':
      return `${outcome.record.decision?.outcome ?? 'decided'}: bake ${outcome.record.bakeId} by ${outcome.record.decision?.by ?? '?'}`;
    case 'refused':
      return `refused (${outcome.reason}): ${outcome.user} on ${outcome.approvalId}: ${outcome.message}`;
    default:
      return `${outcome.kind}: ${outcome.reason}`;
  }
}

/** `bakery callback-server`: Slack's interactivity endpoint for the local backend. */
export function addSlackCommands(program: Command, ctx: SlackCommandContext): void {
  program
    .command('callback-server')
    .description(
      'take Slack button clicks for local bakes: the same signed, decide-once endpoint as the Lambda, on 127.0.0.1 (expose it with a tunnel)',
    )
    .addOption(new Option('--port <port>', 'the port on 127.0.0.1').default(3000).argParser(parsePort))
    .action(async (opts: { port: number }) => {
      ctx.requireLocal('callback-server');
      const settings = await ctx.settings();
      const [{ LOCAL_ENV_FILE }, { localSlackCallbackDeps }, { startCallbackServer }] = await Promise.all([
        import('../adapters/local/slack-settings.ts'),
        import('../compose/local-slack.ts'),
        import('../local/callback-server.ts'),
      ]);
      const { signingSecret } = settings;
      if (!signingSecret) {
        throw new InputError('SLACK_SIGNING_SECRET is not set: without it no click can be trusted', {
          hint: `Export it, or put SLACK_SIGNING_SECRET=… in ${LOCAL_ENV_FILE} (git-ignored); it is on your Slack app's Basic Information page.`,
        });
      }
      const deps = await ctx.localDeps();
      const slack = Boolean(settings.botToken && settings.channel);
      const server = await startCallbackServer({
        port: opts.port,
        deps: {
          ...localSlackCallbackDeps(deps, { ...settings, signingSecret }, ctx.line),
          log: (message, detail) => ctx.line(`  ! ${message}${detail.error instanceof Error ? `: ${detail.error.message}` : ''}`),
        },
        onOutcome: (outcome) => ctx.line(`  ${describe(outcome)}`),
      });
      ctx.line(`listening on ${server.url}`);
      ctx.line(
        slack
          ? `  Slack: messages in ${settings.channel}; point the app's Interactivity Request URL at a tunnel to this address`
          : '  Slack: no SLACK_BOT_TOKEN/SLACK_CHANNEL, so messages are not updated and replies are printed here',
      );
      await (ctx.stopped ?? untilSignal)();
      await server.close();
      ctx.line('stopped');
    });
}
