import { makeProgram } from '../../src/cli/program.ts';
import { PROJECT_ROOT } from '../../src/local/asl.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `bakery <args>` in-process, through makeProgram, with its output captured. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv, cwd = PROJECT_ROOT): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const { run } = makeProgram({
    out: (t) => {
      stdout += t;
    },
    err: (t) => {
      stderr += t;
    },
    env,
    cwd,
  });
  const code = await run(args);
  return { code, stdout, stderr };
}
