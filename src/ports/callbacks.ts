/** Resuming a callback task (`.waitForTaskToken`): Step Functions in AWS, the local runner's token store locally. */
import type { Json } from '../state.ts';

/** Resumes a waiting callback task (Step Functions `SendTaskSuccess` / `SendTaskFailure`). */
export interface TaskCallbacks {
  succeed(token: string, output: Json): Promise<void>;
  fail(token: string, error: string, cause: string): Promise<void>;
}
