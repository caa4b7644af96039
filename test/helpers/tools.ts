/**
 * External tools some tests drive (Debian's awscli v2, chromium). Where one is missing
 * its tests are skipped with a note on how to install it, except under CI, where
 * `.ci/run` installs them: there a missing tool is a failing test, never a silent skip.
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';
import { describe, it } from 'vitest';

const run = promisify(execFile);

export const INSTALL = {
  awscli: 'apt-get install -y awscli (AWS CLI v2; an aws v1 earlier on PATH is not used)',
  chromium: 'apt-get install -y chromium (/usr/bin/chromium)',
} as const;

const underCi = () => process.env.CI === 'true' || process.env.CI === '1';

/** The first `aws` that is AWS CLI v2: Debian's /usr/bin/aws, else one on PATH (a v1 is passed over). */
export async function findAwsCliV2(): Promise<string | undefined> {
  for (const candidate of ['/usr/bin/aws', 'aws']) {
    const out = await run(candidate, ['--version'], { timeout: 15_000 }).catch(() => undefined);
    if (out && /^aws-cli\/2\./.test(`${out.stdout}${out.stderr}`.trim())) return candidate;
  }
  return undefined;
}

/** Debian's chromium, if installed. */
export async function findChromium(): Promise<string | undefined> {
  for (const candidate of [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']) {
    if (
      candidate &&
      (await access(candidate).then(
        () => true,
        () => false,
      ))
    )
      return candidate;
  }
  return undefined;
}

/**
 * True (skip) when `found` is undefined, saying what is skipped and how to install it;
 * under CI it registers a failing test instead, so the absence cannot pass unnoticed.
 */
export function toolMissing(tool: keyof typeof INSTALL, found: string | undefined): boolean {
  if (found) return false;
  if (underCi()) {
    describe(`${tool} (CI requires it)`, () => {
      it('is installed', () => {
        throw new Error(`${tool} is missing; .ci/run installs it: ${INSTALL[tool]}`);
      });
    });
  } else {
    process.stderr.write(`skipping the ${tool} tests: ${tool} not found; install it with: ${INSTALL[tool]}\n`);
  }
  return true;
}
