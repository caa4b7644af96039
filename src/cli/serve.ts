import { type Command, Option } from 'commander';
import type { LocalSlackSettings } from '../adapters/local/slack-settings.ts';
import type { LocalDeps } from '../compose/local.ts';
import { InputError } from '../errors.ts';
import { parsePort, untilSignal } from './long-running.ts';

/** What the serve commands need from the program that hosts them. */
export interface ServeCommandContext {
  line: (text?: string) => void;
  requireLocal: (command: string) => void;
  settings: () => Promise<LocalSlackSettings>;
  /** The local ports on the state directory (created when missing). */
  localDeps: () => Promise<LocalDeps>;
  /** The local user: `BAKERY_USER`, else the login name. */
  user: string;
  projectRoot: string;
  /** Resolves when the server should stop; by default on SIGINT or SIGTERM. */
  stopped?: () => Promise<void>;
}

/** `bakery serve` and `bakery schedule run`. The serve modules are imported when a command runs, not at start-up. */
export function addServeCommands(program: Command, ctx: ServeCommandContext): void {
  program
    .command('serve')
    .description(
      'the whole flow on one machine: an S3-compatible source bucket (uploads start bakes), the patch-rebuild and drift-check schedules, and a dashboard with the approval card',
    )
    .addOption(new Option('--port <port>', 'dashboard (and Slack endpoint) port; 0: any free one').default(8080).argParser(parsePort))
    .addOption(new Option('--s3-port <port>', 'S3 endpoint port; 0: any free one').default(9000).argParser(parsePort))
    .option('--host <address>', 'address to bind (anything but loopback is reachable from other machines)', '127.0.0.1')
    .addOption(new Option('--user <name>', 'who approves from the dashboard').default(ctx.user, 'BAKERY_USER or your user name'))
    .action(async (opts: { port: number; s3Port: number; host: string; user: string }) => {
      ctx.requireLocal('serve');
      const { startServe, isLoopback } = await import('../serve/serve.ts');
      const { deployedSchedules } = await import('../serve/schedule.ts');
      const settings = await ctx.settings();
      const deps = await ctx.localDeps();
      if (!isLoopback(opts.host)) {
        ctx.line(`warning: serving on ${opts.host}: the bucket, dashboard and Slack endpoint are reachable from other machines`);
      }
      const serve = await startServe({
        home: deps.home,
        deps,
        host: opts.host,
        port: opts.port,
        s3Port: opts.s3Port,
        user: opts.user,
        schedule: deployedSchedules(ctx.projectRoot),
        ...(settings.signingSecret
          ? {
              slack: (await import('../compose/local-slack.ts')).localSlackCallbackDeps(
                deps,
                { ...settings, signingSecret: settings.signingSecret },
                ctx.line,
              ),
            }
          : {}),
        write: ctx.line,
      });
      const { info } = serve;
      ctx.line(`dashboard  ${info.dashboard.url}?token=${info.dashboard.token}`);
      ctx.line(`s3         ${info.s3.endpoint}  bucket ${info.s3.bucket}, uploads under ${info.s3.prefix} start bakes`);
      ctx.line(
        `           AWS_ACCESS_KEY_ID=${info.s3.accessKeyId} AWS_SECRET_ACCESS_KEY=${info.s3.secretAccessKey} AWS_DEFAULT_REGION=${info.s3.region}`,
      );
      ctx.line(`           aws --endpoint-url ${info.s3.endpoint} s3 cp hello.zip s3://${info.s3.bucket}/${info.s3.prefix}hello.zip`);
      const schedules = serve.scheduler.expressions();
      ctx.line(`schedules  patch-rebuild ${schedules['patch-rebuild'] ?? 'off'}, drift-check ${schedules['drift-check'] ?? 'off'}`);
      ctx.line(`written to ${deps.home.path('serve.json')} (mode 0600)`);
      if (serve.resumed.length) ctx.line(`resumed ${serve.resumed.length} interrupted bake(s): ${serve.resumed.join(', ')}`);
      await (ctx.stopped ?? untilSignal)();
      await serve.close();
      ctx.line('stopped; running bakes resume at the next start');
    });

  program
    .command('schedule')
    .description('the schedules of bakery serve')
    .command('run')
    .description('fire a schedule now: on the running `bakery serve` if there is one, else in this process')
    .argument('<schedule>', 'patch-rebuild or drift-check')
    .action(async (name: string) => {
      ctx.requireLocal('schedule run');
      if (name !== 'patch-rebuild' && name !== 'drift-check') {
        throw new InputError(`unknown schedule ${name}`, { hint: 'Use patch-rebuild or drift-check.' });
      }
      const { runScheduleNow } = await import('../serve/schedule-cli.ts');
      await runScheduleNow(name, { deps: await ctx.localDeps(), user: ctx.user, line: ctx.line });
    });
}
