import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { LocalHome } from '../adapters/local/home.ts';
import type { LocalImageBuilder } from '../adapters/local/image-builder.ts';
import type { Deps, ReadDeps } from '../compose/deps.ts';
import type { LocalDeps } from '../compose/local.ts';
import { BakeInterruptedError, BakeryError, ExitError, ImageBuildFailedError, InputError, NotFoundError } from '../errors.ts';
import type { RunOutcome, UpToDateOutcome } from '../local/runner.ts';
import type { StepEvent } from '../recipes/toe.ts';
import { addIntegrityCommands } from './integrity.ts';
import { addReleaseCommands } from './releases.ts';
import { renderBakeStep, renderBuildStep, renderExecutions, renderOutcome, renderStatus, renderTo } from './render.ts';
import { addServeCommands } from './serve.ts';
import { addSlackCommands } from './slack.ts';

/*
 * Commands start fast (#16.2): beyond commander, the error classes, the local home and the
 * renderer, every module is imported where a command's action needs it (`await import`),
 * so a read command (status, history, drift, executions, --help) loads neither the AWS
 * SDK, nor Slack, nor the zip or state-machine libraries. test/cli/startup.test.ts checks it.
 */

/** The project's root (bin/, layers/, statemachines/), from this file's place in src/cli/. */
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Exit codes of the `bakery` command, listed in `--help`. */
export const ExitCodes = {
  Success: 0,
  /** The bake failed (a stage, validation, rejection); nothing was released. */
  Failed: 1,
  /** Bad input: a spec, a recipe, a flag, the state directory. Nothing was written. */
  BadInput: 2,
  /** An unexpected internal error. */
  Internal: 3,
} as const;

export interface ProgramIO {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/**
 * Write to `stream` until its reader goes away (`bakery prune | head`): then the rest is
 * dropped, not an EPIPE crash, and the command still finishes what it does.
 */
function pipeWriter(stream: NodeJS.WriteStream): (text: string) => void {
  let gone = false;
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE' && error.code !== 'ERR_STREAM_DESTROYED') throw error;
    gone = true;
  });
  return (text) => {
    if (!gone) stream.write(text);
  };
}

const defaultIO = (): ProgramIO => ({
  out: pipeWriter(process.stdout),
  err: pipeWriter(process.stderr),
  env: process.env,
  cwd: process.cwd(),
});

/** bakery's own version, as package.json gives it (read once, when `--version` asks). */
const packageVersion = (): string =>
  (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The recipes under the project's `layers/`, for checking a spec before anything is written. */

function whoami(env: NodeJS.ProcessEnv): string {
  try {
    return env.BAKERY_USER ?? os.userInfo().username;
  } catch {
    return 'local-user';
  }
}

/**
 * The `bakery` command. A factory with no side effects on import; `run` maps every
 * outcome to an exit code instead of calling `process.exit`, so tests drive it directly.
 */
export function makeProgram(io: ProgramIO = defaultIO()) {
  const line = (text = '') => io.out(`${text}\n`);
  const home = () => LocalHome.fromEnv(io.env, io.cwd);
  const deps = async (extra: { onStep?: (e: StepEvent) => void; waitingHint?: boolean; create?: boolean } = {}): Promise<LocalDeps> => {
    const { create = true, ...options } = extra;
    const h = home();
    await h.ensure({ create });
    const [{ readLocalSlackSettings }, { createLocalDeps }, { versionsInFlight }] = await Promise.all([
      import('../adapters/local/slack-settings.ts'),
      import('../compose/local.ts'),
      import('../local/journal.ts'),
    ]);
    // With a bot token and channel (environment or .bakery.env), local approvals go to Slack too.
    const slack = await readLocalSlackSettings(io.env, io.cwd);
    return {
      ...createLocalDeps({ home: h, projectRoot: PROJECT_ROOT, write: line, slack, ...options }),
      // What executions that have not ended hold, from their journal: prune keeps it.
      executions: { inFlight: () => versionsInFlight(h) },
    };
  };

  /** Test-only: BAKERY_TEST_PAUSE_AT stops a bake at a named point until it is killed (see RunBakeOptions.pauseAt). */
  const testPause = () => (io.env.BAKERY_TEST_PAUSE_AT ? { pauseAt: io.env.BAKERY_TEST_PAUSE_AT } : {});

  /** The end of `bake` and `resume`: what was released, or why nothing was (exit 1). */
  const report = (outcome: RunOutcome | UpToDateOutcome, bakeId: string) => {
    line();
    const rendered = renderOutcome(outcome, bakeId);
    for (const text of rendered.out) line(text);
    if (rendered.err.length === 0) return;
    io.err(rendered.err.map((text) => `${text}\n`).join(''));
    throw new ExitError(ExitCodes.Failed);
  };

  /**
   * The ports of the chosen backend, for commands that work on either: the local state
   * directory, or the deployed stack (configured by the same environment variables as
   * the Lambdas: ARTEFACTS_BUCKET, TABLE_NAME, …, plus the usual AWS credentials).
   */
  const backendDeps = async (): Promise<Deps> => {
    const backend = program.opts<{ backend: 'local' | 'aws' }>().backend;
    if (backend === 'aws') {
      await (await import('./aws-backend.ts')).checkAwsBackend(io.env);
      // Imported on use: only `--backend aws` loads the AWS adapters and SDK.
      return (await import('../compose/aws.ts')).buildAwsDeps(io.env);
    }
    return deps({ create: false });
  };
  /** {@link ReadDeps} of the chosen backend: locally just the state directory, nothing that bakes. */
  const readDeps = async (): Promise<ReadDeps> => {
    if (program.opts<{ backend: 'local' | 'aws' }>().backend === 'aws') return backendDeps();
    const h = home();
    await h.ensure({ create: false });
    return (await import('../compose/local-read.ts')).localReadDeps(h);
  };
  const requireLocal = (command: string) => {
    if (program.opts<{ backend: string }>().backend !== 'local') {
      throw new InputError(`\`bakery ${command}\` runs on the local backend only`, {
        hint: 'In AWS a bake starts when a source zip is uploaded to the source bucket (see docs/deploying.md).',
      });
    }
  };

  const program = new Command('bakery')
    .description('Bake, pin and release AWS Lambda runtimes the immutable way: never patch what runs.')
    .addOption(
      new Option('--backend <backend>', 'where state lives: the local state directory, or the deployed AWS stack')
        .choices(['local', 'aws'])
        .default(io.env.BAKERY_BACKEND ?? 'local')
        .env('BAKERY_BACKEND'),
    )
    .version(packageVersion(), '-V, --version', "print bakery's version")
    .showHelpAfterError()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .exitOverride()
    .addHelpText(
      'after',
      `
Environment:
  BAKERY_HOME     state directory of the local backend (default: ./.bakery)
  BAKERY_BACKEND  local (default) or aws; with aws, status/approve/reject/rollback/history/drift
                  use the deployed stack named by ARTEFACTS_BUCKET, TABLE_NAME, … (see docs/cli.md)

Exit codes:
  ${ExitCodes.Success}  success
  ${ExitCodes.Failed}  the bake (or check) failed; nothing was released
  ${ExitCodes.BadInput}  bad input (spec, recipe, flags, state directory); nothing was written
  ${ExitCodes.Internal}  internal error`,
    );

  program
    .command('bake')
    .description('bake a spec on the local backend: build, layer, version, validate, approve, release')
    .argument('<spec>', 'path of the bake spec (JSON)')
    .option('--approve', 'approve as soon as validation passes (CI, the demo)')
    .option('--rebuild', 'build the runtime even when an earlier build has the same bake key (and bake even when up to date)')
    .option('--force', 'bake even when the runtime, code and configuration equal what is live (up to date)')
    .addOption(new Option('--approver <name>', 'who approves with --approve').default(whoami(io.env), 'your user name'))
    .action(async (specArg: string, opts: { approve?: boolean; rebuild?: boolean; force?: boolean; approver: string }) => {
      requireLocal('bake');
      // Check the input before anything is written, so bad input leaves no trace.
      const specFile = path.resolve(io.cwd, specArg);
      const h = home();
      await h.ensure({ create: false });
      // Only what checks and decides: the ports that bake load once the bake is not up to date.
      const [{ localDecisionDeps }, { checkBakeInput, newBakeId }, { endIfUpToDate }] = await Promise.all([
        import('../compose/local-decision.ts'),
        import('../cores/resolve.ts'),
        import('../local/up-to-date.ts'),
      ]);
      const decision = localDecisionDeps(h, PROJECT_ROOT);
      // The pre-checks read the state directory (alarms, layers, the ledger) and write nothing.
      const checked = await checkBakeInput(specFile, decision.recipes, specArg, {
        deps: decision,
        ...(opts.approve ? { autoApprover: opts.approver } : {}),
      });
      await h.ensure({ create: true });
      const bakeId = newBakeId(checked.spec.name, new Date(), decision.ids.random());
      line(`bake ${bakeId}: ${specArg} on the local backend (${h.root})`);
      const request = {
        bakeId,
        source: { type: 'file' as const, path: specFile },
        trigger: { type: 'cli' as const, user: whoami(io.env) },
        options: { rebuild: opts.rebuild ?? false, ...(opts.force ? { force: true } : {}) },
      };
      // Up to date: ResolveBake's own decision, on the input just checked, ends it here, without loading the state machine.
      const unchanged = io.env.BAKERY_TEST_PAUSE_AT
        ? null
        : await endIfUpToDate(request, { deps: decision, spec: specArg, checked, onEvent: renderTo(line) });
      if (unchanged) {
        report(unchanged, bakeId);
        return;
      }
      const d = await deps({
        create: true,
        onStep: (e) => {
          const text = renderBakeStep(e);
          if (text !== undefined) line(text);
        },
        waitingHint: !opts.approve,
      });
      const { runBake } = await import('../local/runner.ts');
      const outcome = await runBake(request, {
        deps: d,
        approve: opts.approve ? 'auto' : 'wait',
        approver: opts.approver,
        onEvent: renderTo(line),
        spec: specArg,
        ...testPause(),
      });
      report(outcome, bakeId);
    });

  program
    .command('resume')
    .description('continue an interrupted local bake (its process is gone) from the state it was in, same bake id and inputs')
    .argument('<bakeId>', 'the bake id (see `bakery executions`)')
    .option('--approve', 'approve as soon as asked, if its approval is still undecided')
    .addOption(new Option('--approver <name>', 'who approves with --approve').default(whoami(io.env), 'your user name'))
    .action(async (bakeId: string, opts: { approve?: boolean; approver: string }) => {
      requireLocal('resume');
      const d = await deps({ create: false, waitingHint: !opts.approve });
      const [{ getExecution }, { resumeExecution }] = await Promise.all([import('../local/journal.ts'), import('../local/runner.ts')]);
      const { state } = await getExecution(d.home, bakeId);
      line(`bake ${bakeId}: resuming at ${state ?? 'the start'} on the local backend (${d.home.root})`);
      const outcome = await resumeExecution(bakeId, {
        deps: d,
        approve: opts.approve ? 'auto' : 'wait',
        approver: opts.approver,
        onEvent: renderTo(line),
        ...testPause(),
      });
      report(outcome, bakeId);
    });

  program
    .command('executions')
    .description('list the local executions: bake id, status (running, waiting, interrupted, succeeded, failed, upToDate), state, age')
    .option('--json', 'print JSON: {"executions": [{bakeId, status, state, startedAt, spec}]}')
    .action(async (opts: { json?: boolean }) => {
      requireLocal('executions');
      const { listExecutions } = await import('../local/journal.ts');
      const executions = await listExecutions(home());
      if (opts.json) {
        const rows = executions.map(({ bakeId, status, state, startedAt, spec }) => ({ bakeId, status, state, startedAt, spec }));
        line(JSON.stringify({ executions: rows }, null, 2));
        return;
      }
      for (const text of renderExecutions(executions, new Date())) line(text);
    });

  program
    .command('build')
    .description(
      "run only the image build of a spec on the local backend (the recipe's documents), printing where the runtime tree and build record are",
    )
    .argument('<spec>', 'path of the bake spec (JSON)')
    .option('--rebuild', 'build even when an earlier build has the same bake key')
    .action(async (specArg: string, opts: { rebuild?: boolean }) => {
      requireLocal('build');
      const h = home();
      const [{ localImageBuilder }, { projectRecipes }, { loadSpec }, { resolveRecipe }, { bakeKey }] = await Promise.all([
        import('../compose/local.ts'),
        import('../compose/local-decision.ts'),
        import('../spec.ts'),
        import('../recipes/recipe.ts'),
        import('../cores/image.ts'),
      ]);
      const recipes = projectRecipes(PROJECT_ROOT);
      // Check the input before anything is written, so bad input leaves no trace.
      const specFile = path.resolve(io.cwd, specArg);
      const { spec } = await loadSpec(specFile, specArg);
      const recipe = await resolveRecipe(recipes, spec.runtime.recipe, spec.runtime.parameters);
      const key = bakeKey(recipe);
      await h.ensure({ create: true });
      const seconds = (ms = 0) => `${(ms / 1000).toFixed(1)} s`;
      const builder = localImageBuilder(
        {
          home: h,
          projectRoot: PROJECT_ROOT,
          onStep: (e) => {
            const text = renderBuildStep(e);
            if (text !== undefined) line(text);
          },
        },
        { recipes },
      );
      line(`build ${recipe.name} for ${specArg} on the local backend (${h.root})`);
      line(`  bake key ${key}`);
      const started = Date.now();
      let image: Awaited<ReturnType<LocalImageBuilder['build']>>;
      try {
        image = await builder.build({ bakeKey: key, rebuild: opts.rebuild ?? false, recipe });
      } catch (error) {
        if (!(error instanceof ImageBuildFailedError)) throw error;
        io.err(`build of ${recipe.name} failed: ${error.name}\n${error.message}\n`);
        io.err('no build was stored; an earlier build with this key, if any, is untouched.\n');
        throw new ExitError(ExitCodes.Failed);
      }
      const paths = builder.paths(key);
      line();
      line(
        image.cacheHit
          ? `cache hit: reused the build of ${image.buildRecord.finishedAt} (same bake key; --rebuild builds again)`
          : `built ${recipe.name} in ${seconds(Date.now() - started)}`,
      );
      line(`  tree     ${paths.tree}`);
      line(`           sha256 ${image.runtime.sha256Hex}, ${(image.runtime.size / 1e6).toFixed(1)} MB`);
      line(`  record   ${paths.record}`);
      line(`  log      ${paths.log}`);
    });

  program
    .command('status')
    .description("show each function's alias, the version it points to, its layer and the bake that released it")
    .option('--json', 'print JSON: {"functions": [{name, alias, version, layer: {arn, version, sha256, codeSha256}, bakeId, releasedAt}]}')
    .action(async (opts: { json?: boolean }) => {
      const { status } = await import('../cores/status.ts');
      const result = await status(await readDeps());
      if (opts.json) {
        line(JSON.stringify(result, null, 2));
        return;
      }
      for (const text of renderStatus(result)) line(text);
    });

  addIntegrityCommands(program, {
    line,
    err: io.err,
    backendDeps,
    readDeps,
    fail: () => {
      throw new ExitError(ExitCodes.Failed);
    },
  });

  /**
   * Who decides: in AWS the caller's ARN as STS verifies it (so `approval.approvers` may name IAM
   * users, roles or assumed-role sessions, and nobody can approve as someone else by typing a
   * name); locally the `--by` name, recorded as self-asserted.
   */
  const decider = async (opts: { by: string }, command: Command): Promise<{ by: string; identity: 'aws-sts' | 'self-asserted' }> => {
    if (program.opts<{ backend: string }>().backend !== 'aws') return { by: opts.by, identity: 'self-asserted' };
    await (await import('./aws-backend.ts')).checkAwsBackend(io.env);
    // Loaded on use, as the AWS composition is: the local CLI never loads the AWS SDK.
    const { StsCallerIdentity } = await import('../adapters/aws/identity.ts');
    const arn = await new StsCallerIdentity().arn();
    if (command.getOptionValueSource('by') === 'cli' && opts.by !== arn) {
      throw new InputError(`--by ${opts.by} is not taken with --backend aws: the decision is recorded as your AWS identity, ${arn}`, {
        hint: 'Leave out --by, or decide with the credentials of the approver (AWS_PROFILE).',
      });
    }
    return { by: arn, identity: 'aws-sts' };
  };

  const decide = (outcome: 'approved' | 'rejected') => async (ref: string, opts: { by: string; reason?: string }, command: Command) => {
    const { by, identity } = await decider(opts, command);
    const { decideApproval } = await import('../cores/approval.ts');
    const record = await decideApproval({ ref, outcome, by, reason: opts.reason, identity }, await backendDeps());
    // The record says how `by` is known; the line says so only for a verified identity.
    const decided = `${outcome} by ${by}${identity === 'aws-sts' ? ' (verified by AWS STS)' : ''}${opts.reason ? ` (${opts.reason})` : ''}`;
    // A local bake whose process is gone waits on nothing: the decision only counts once it is resumed.
    const execution = program.opts<{ backend: string }>().backend === 'local' ? await localExecution(record.bakeId) : undefined;
    if (execution?.status === 'interrupted') {
      throw new BakeInterruptedError(
        `bake ${record.bakeId}: ${decided} is recorded, but the bake is interrupted (its process, pid ${execution.owner.pid} on ${execution.owner.host}, is gone, in ${execution.state ?? 'its first state'}): nothing was released`,
        { hint: `Continue it with the decision: bakery resume ${record.bakeId}` },
      );
    }
    line(`bake ${record.bakeId}: ${decided}`);
  };
  const localExecution = async (bakeId: string) => {
    try {
      const { getExecution } = await import('../local/journal.ts');
      return await getExecution(home(), bakeId);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined; // a bake from before executions were journaled
      throw error;
    }
  };

  program
    .command('approve')
    .description('approve the pending approval of a bake (decided once; a second decision is refused)')
    .argument('<bakeId>', 'the bake id (or approval id) to approve')
    .addOption(
      new Option('--by <name>', 'who approves (local backend; with --backend aws your verified AWS identity)').default(
        whoami(io.env),
        'your user name',
      ),
    )
    .action(decide('approved'));

  program
    .command('reject')
    .description('reject the pending approval of a bake; nothing is released')
    .argument('<bakeId>', 'the bake id (or approval id) to reject')
    .option('--reason <text>', 'why, recorded in the ledger')
    .addOption(
      new Option('--by <name>', 'who rejects (local backend; with --backend aws your verified AWS identity)').default(
        whoami(io.env),
        'your user name',
      ),
    )
    .action(decide('rejected'));

  addReleaseCommands(program, {
    line,
    backendDeps,
    readDeps,
    localDeps: (create) => deps({ create }),
    requireLocal,
    user: whoami(io.env),
    fail: () => {
      throw new ExitError(ExitCodes.Failed);
    },
  });

  addSlackCommands(program, {
    line,
    requireLocal,
    settings: async () => (await import('../adapters/local/slack-settings.ts')).readLocalSlackSettings(io.env, io.cwd),
    localDeps: () => deps({ create: false }),
  });

  addServeCommands(program, {
    line,
    requireLocal,
    settings: async () => (await import('../adapters/local/slack-settings.ts')).readLocalSlackSettings(io.env, io.cwd),
    localDeps: () => deps({ waitingHint: false }),
    user: whoami(io.env),
    projectRoot: PROJECT_ROOT,
  });

  /** Parse and run; resolves to the exit code. */
  const run = async (argv: string[]): Promise<number> => {
    try {
      await program.parseAsync(argv, { from: 'user' });
      return ExitCodes.Success;
    } catch (error) {
      if (error instanceof ExitError) return error.code;
      if (error instanceof CommanderError) {
        return error.exitCode === 0 ? ExitCodes.Success : ExitCodes.BadInput;
      }
      if (error instanceof BakeryError) {
        io.err(`${error.name}: ${error.message}\n`);
        if (error.hint) io.err(`  ${error.hint}\n`);
        return error instanceof InputError ? ExitCodes.BadInput : ExitCodes.Failed;
      }
      io.err(`internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      return ExitCodes.Internal;
    }
  };

  return { program, run };
}
