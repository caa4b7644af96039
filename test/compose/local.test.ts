import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { LazyNotifier } from '../../src/adapters/local/lazy-notifier.ts';
import type { ApprovalRecord } from '../../src/ports/approval.ts';

const run = promisify(execFile);

/**
 * Loads a module in a fresh Node process and prints every @aws-sdk package that is
 * resolved from outside the SDK itself (who asked for the SDK, not its own imports).
 */
const PROBE = `
const asked = new Set();
const { registerHooks } = await import('node:module');
registerHooks({
  resolve(specifier, context, next) {
    const out = next(specifier, context);
    if (out.url.includes('/@aws-sdk/') && !(context.parentURL ?? '').includes('/@aws-sdk/')) asked.add(out.url.split('/@aws-sdk/')[1].split('/')[0]);
    return out;
  },
});
await import(process.argv[1]);
console.log(JSON.stringify([...asked]));
`;

async function awsSdkLoadedBy(module: string): Promise<string[]> {
  const { stdout } = await run(
    process.execPath,
    ['--experimental-strip-types', '--no-warnings', '--input-type=module', '-e', PROBE, module],
    {
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '[]') as string[];
}

/** Composes the local ports with Slack configured, in a fresh Node process; prints whether anything of Slack's loaded. */
const SLACK_PROBE = `
const loaded = [];
const { registerHooks } = await import('node:module');
registerHooks({
  resolve(specifier, context, next) {
    const out = next(specifier, context);
    if (out.url.includes('/@slack/')) loaded.push(out.url);
    return out;
  },
});
const { createLocalDeps } = await import('./src/compose/local.ts');
const { LocalHome } = await import('./src/adapters/local/home.ts');
const deps = createLocalDeps({
  home: new LocalHome(process.argv[1]),
  projectRoot: process.cwd(),
  slack: { botToken: 'xoxb-test', channel: 'C1', signingSecret: undefined, apiUrl: 'http://127.0.0.1:9/' },
});
console.log(JSON.stringify({ composed: loaded.length, notifier: deps.notifier.constructor.name }));
`;

describe('the local composition', () => {
  it('with Slack configured, loads the Slack client only when a bake first has something to post', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--experimental-strip-types', '--no-warnings', '--input-type=module', '-e', SLACK_PROBE, '/tmp/bakery-probe-home-unused'],
      { timeout: 60_000 },
    );
    expect(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}')).toEqual({ composed: 0, notifier: 'LazyNotifier' });
  });

  it('makes a lazy notifier once, on first use, and hands every call to it', async () => {
    const calls: string[] = [];
    let made = 0;
    const lazy = new LazyNotifier(async () => {
      made += 1;
      return {
        approvalRequested: async (r) => {
          calls.push(`requested ${r.id}`);
          return { channel: 'C1', ts: '1.0' };
        },
        approvalDecided: async (r) => {
          calls.push(`decided ${r.id}`);
        },
        approvalStale: async (r, reason) => {
          calls.push(`stale ${r.id} ${reason}`);
        },
        bakeFailed: async (f) => {
          calls.push(`failed ${f.bakeId}`);
        },
        driftFound: async () => {
          calls.push('drift');
        },
      };
    });
    expect(made).toBe(0);
    const record = { id: 'apr-1' } as ApprovalRecord;
    expect(await lazy.approvalRequested(record)).toEqual({ channel: 'C1', ts: '1.0' });
    await lazy.approvalDecided(record);
    await lazy.approvalStale(record, 'moved');
    await lazy.bakeFailed({ bakeId: 'b', state: 'Validate', error: 'E', cause: 'c' });
    expect(made).toBe(1);
    expect(calls).toEqual(['requested apr-1', 'decided apr-1', 'stale apr-1 moved', 'failed b']);
  });

  it('loads no AWS SDK package, so the local CLI starts without it', async () => {
    expect(await awsSdkLoadedBy('./src/compose/local.ts')).toEqual([]);
  });

  it('is told apart from the AWS composition, which does load the SDK (the probe sees it)', async () => {
    expect(await awsSdkLoadedBy('./src/compose/aws.ts')).toEqual(expect.arrayContaining(['client-lambda', 'client-s3', 'lib-dynamodb']));
  });
});
