import { type Command, InvalidArgumentError } from 'commander';
import type { Deps, ReadDeps } from '../compose/deps.ts';

/** How many manifests `prune` keeps by default: src/cores/prune.ts DEFAULT_KEEP (test/cli/startup.test.ts keeps them equal). */
export const DEFAULT_KEEP = 3;

/** What the integrity commands need from the program that hosts them. */
export interface IntegrityContext {
  line: (text?: string) => void;
  err: (text: string) => void;
  /** The ports of the backend chosen with `--backend`. */
  backendDeps: () => Promise<Deps>;
  /** The ports of a read command: locally only the state directory's stores. */
  readDeps: () => Promise<ReadDeps>;
  /** End the command with exit code 1 (a mismatch, a failed deletion). */
  fail: () => never;
}

function parseKeep(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of manifests (0 or more)');
  return Number(value);
}

/** `bakery verify` and `bakery prune`: on either backend, through the cores of the same names. */
export function addIntegrityCommands(program: Command, ctx: IntegrityContext): void {
  const { line } = ctx;

  program
    .command('verify')
    .description("fetch again what a bake pinned (layer bytes, each version's code and configuration) and compare it with its manifest")
    .argument('<bakeId>', 'the bake to verify')
    .option('--json', 'print JSON: {bakeId, status, recordedAt, checks: [{subject, property, expected, actual, ok}], mismatches: [...]}')
    .action(async (bakeId: string, opts: { json?: boolean }) => {
      const { verifyBake } = await import('../cores/verify.ts');
      const result = await verifyBake(bakeId, await ctx.readDeps());
      if (opts.json) line(JSON.stringify(result, null, 2));
      else {
        line(`bake ${result.bakeId} (${result.status}, recorded ${result.recordedAt}): what it pinned, against its manifest`);
        for (const c of result.checks) {
          line(
            c.ok
              ? `  ✓ ${c.subject}  ${c.property} ${c.expected}`
              : `  ✗ ${c.subject}  ${c.property}: manifest ${c.expected}, now ${c.actual ?? '(cannot be read)'}`,
          );
        }
        if (result.checks.length === 0) line('  the bake published nothing to check');
      }
      if (result.mismatches.length > 0) {
        ctx.err(`bake ${result.bakeId}: ${result.mismatches.length} mismatch(es) with its manifest:\n`);
        for (const c of result.mismatches) {
          ctx.err(`  - ${c.subject}: ${c.property} is ${c.actual ?? '(cannot be read)'}, the manifest says ${c.expected}\n`);
        }
        ctx.fail();
      }
      if (!opts.json) line('identical: everything the bake pinned is as its manifest recorded');
    });

  program
    .command('prune')
    .description(
      'list (and with --apply delete) the layer and function versions that no alias, none of the kept releases and no bake in flight uses',
    )
    .addOption(
      program
        .createOption('--keep <n>', "keep every version each function's newest <n> releases pin (its rollback targets)")
        .argParser(parseKeep)
        .default(DEFAULT_KEEP),
    )
    .option('--apply', 'delete them (without it, only list them)')
    .option(
      '--json',
      'print JSON: {keep, applied, keptManifests, items: [{kind, name, version, arn, keptBecause, result, error}], images: [{kind, arn, bakeId, bakeKey, amis, keptBecause, result, error}]}',
    )
    .action(async (opts: { keep: number; apply?: boolean; json?: boolean }) => {
      const { prune } = await import('../cores/prune.ts');
      const result = await prune({ keep: opts.keep, apply: opts.apply ?? false }, await ctx.backendDeps());
      const failed = [
        ...result.items.filter((i) => i.result === 'failed'),
        ...result.images.filter((i) => i.result === 'failed').map((i) => ({ ...i, name: i.arn, version: '' })),
      ];
      if (opts.json) line(JSON.stringify(result, null, 2));
      else {
        line(
          `prune (${result.applied ? 'applied' : 'dry run; --apply deletes'}): keeping what an alias points at, what bakes in flight hold, and what each function's newest ${result.keep} release(s) pin` +
            (result.keptManifests.length ? ` (${result.keptManifests.join(', ')})` : ''),
        );
        let heading = '';
        for (const item of result.items) {
          const group = `${item.kind} ${item.name}`;
          if (group !== heading) line(group);
          heading = group;
          const what = `  version ${item.version}${item.arn ? ` (${item.arn})` : ''}`;
          if (item.result === 'kept') line(`${what}  kept: ${item.keptBecause.join('; ')}`);
          else if (item.result === 'failed') line(`${what}  NOT deleted: ${item.error ?? 'unknown error'}`);
          else line(`${what}  ${item.result}`);
        }
        for (const image of result.images) {
          const freed = image.amis.map((a) => `${a.id}${a.snapshots.length ? ` (${a.snapshots.join(', ')})` : ''}`).join(', ');
          const what = `${image.kind} ${image.arn}${freed ? ` AMI ${freed}` : ''}`;
          if (image.result === 'kept') line(`${what}  kept: ${image.keptBecause.join('; ')}`);
          else if (image.result === 'failed') line(`${what}  NOT deleted: ${image.error ?? 'unknown error'}`);
          else line(`${what}  ${image.result}`);
        }
        if (result.items.length === 0) line('the ledger names no function or layer that has versions; nothing to prune');
        const gone = result.items.filter((i) => i.result === 'deleted' || i.result === 'would delete').length;
        if (result.applied) line(`${gone} version(s) deleted`);
        else line(gone ? `${gone} version(s) would be deleted; run again with --apply to delete them` : 'nothing to delete');
      }
      if (failed.length > 0) {
        ctx.err(`${failed.length} version(s) could not be deleted:\n`);
        for (const f of failed)
          ctx.err(`  - ${f.kind} ${f.name}${f.version === '' ? '' : ` version ${f.version}`}: ${f.error ?? 'unknown error'}\n`);
        ctx.fail();
      }
    });
}
