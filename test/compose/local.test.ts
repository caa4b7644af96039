import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

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

describe('the local composition', () => {
  it('loads no AWS SDK package, so the local CLI starts without it', async () => {
    expect(await awsSdkLoadedBy('./src/compose/local.ts')).toEqual([]);
  });

  it('is told apart from the AWS composition, which does load the SDK (the probe sees it)', async () => {
    expect(await awsSdkLoadedBy('./src/compose/aws.ts')).toEqual(expect.arrayContaining(['client-lambda', 'client-s3', 'lib-dynamodb']));
  });
});
