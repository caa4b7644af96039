import { type Command, Option } from 'commander';
import type { Deps, ReadDeps } from '../compose/deps.ts';
import type { LocalDeps } from '../compose/local.ts';

/** What the release commands need from the program that hosts them. */
export interface ReleaseContext {
  line: (text?: string) => void;
  /** The ports of the backend chosen with `--backend`. */
  backendDeps: () => Promise<Deps>;
  /** The ports of a read command: locally only the state directory's stores. */
  readDeps: () => Promise<ReadDeps>;
  /** The local backend's ports (the alarm commands); `create` makes the state directory. */
  localDeps: (create: boolean) => Promise<LocalDeps>;
  /** Refuse a command that only the local backend has. */
  requireLocal: (command: string) => void;
  /** Who runs the command (recorded by a rollback unless `--by` says otherwise). */
  user: string;
  /** End the command with exit code 1 (drift found). */
  fail: () => never;
}

/** `bakery rollback`, `history`, `drift` and `alarm`: releases after the fact, through the cores of the same names. */
export function addReleaseCommands(program: Command, ctx: ReleaseContext): void {
  const { line } = ctx;

  program
    .command('rollback')
    .description('point an alias back at a version an earlier bake released (no rebuild); recorded in the ledger')
    .argument('<function>', 'the function name')
    .option('--alias <alias>', 'the alias to move', 'live')
    .option(
      '--to <bakeIdOrVersion>',
      'the bake whose version to go back to, or a version number (default: the one released before the live one)',
    )
    .addOption(new Option('--by <name>', 'who rolls back, recorded in the ledger').default(ctx.user, 'your user name'))
    .action(async (name: string, opts: { alias: string; to?: string; by: string }) => {
      const d = await ctx.backendDeps();
      const { rollback } = await import('../cores/rollback.ts');
      const result = await rollback({ name, alias: opts.alias, by: opts.by, ...(opts.to === undefined ? {} : { to: opts.to }) }, d);
      if (!result.changed) {
        line(`${name}:${opts.alias} is already on version ${result.to} (released by bake ${result.bakeId}); nothing changed`);
        return;
      }
      const weights = Object.entries(result.fromWeights).map(([v, w]) => `${Math.round(w * 10_000) / 100}% on ${v}`);
      line(
        `${name}:${opts.alias} rolled back: version ${result.from}${weights.length ? ` (${weights.join(', ')})` : ''} → ${result.to} (released by bake ${result.bakeId})`,
      );
    });

  program
    .command('history')
    .description('show the ledger, oldest first: releases, failures and rollbacks')
    .argument('[function]', 'only the entries of this function')
    .option('--json', 'print JSON: {"entries": [ledger entries, oldest first]}')
    .action(async (name: string | undefined, opts: { json?: boolean }) => {
      const { describeEntry, history } = await import('../cores/history.ts');
      const entries = await history(name === undefined ? {} : { name }, await ctx.readDeps());
      if (opts.json) {
        line(JSON.stringify({ entries }, null, 2));
        return;
      }
      if (entries.length === 0) line('the ledger is empty; try: npm run demo');
      for (const entry of entries) line(describeEntry(entry));
    });

  program
    .command('drift')
    .description('compare what is live with the latest release manifests; exit 1 listing each difference')
    .option(
      '--json',
      'print JSON: {checkedAt, drifted, functions: [{name, alias, bakeId, expectedVersion, liveVersion, differences: [{field, expected, live}]}]}',
    )
    .action(async (opts: { json?: boolean }) => {
      const { drift } = await import('../cores/drift.ts');
      const report = await drift(await ctx.readDeps());
      if (opts.json) line(JSON.stringify(report, null, 2));
      else if (report.functions.length === 0) line('nothing released yet; nothing to compare');
      else {
        for (const f of report.functions) {
          const where = `${f.name}:${f.alias} (bake ${f.bakeId ?? 'unknown'}, version ${f.expectedVersion})`;
          if (!f.differences.length) line(`${where}: as released`);
          else {
            line(`${where}: DRIFTED`);
            for (const d of f.differences) line(`  ${d.field}: expected ${JSON.stringify(d.expected)}, live ${JSON.stringify(d.live)}`);
          }
        }
      }
      if (report.drifted) ctx.fail();
    });

  const alarm = program
    .command('alarm')
    .description('local stand-ins for the CloudWatch alarms a gradual release checks (local backend only)');
  alarm
    .command('set')
    .description('set an alarm state; a gradual release checks it before every further traffic step')
    .argument('<name>', "the alarm name, as in the spec's release.alarms")
    .argument('<state>', 'ALARM, OK or INSUFFICIENT_DATA')
    .option('--reason <text>', 'why')
    .action(async (name: string, state: string, opts: { reason?: string }) => {
      ctx.requireLocal('alarm set');
      const d = await ctx.localDeps(true);
      const set = await d.alarms.set(name, state.toUpperCase(), opts.reason ?? null, d.clock.now());
      line(`alarm ${set.name}: ${set.state}${set.reason ? ` (${set.reason})` : ''}`);
    });
  alarm
    .command('list')
    .description('list the local alarms and their states')
    .action(async () => {
      ctx.requireLocal('alarm list');
      const alarms = await (await ctx.localDeps(false)).alarms.list();
      if (!alarms.length) line('no alarms; set one with: bakery alarm set <name> OK');
      for (const a of alarms) line(`${a.name}  ${a.state}  ${a.updatedAt}${a.reason ? `  ${a.reason}` : ''}`);
    });
}
