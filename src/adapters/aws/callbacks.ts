import { SendTaskFailureCommand, SendTaskSuccessCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { AlreadyDecidedError } from '../../errors.ts';
import type { TaskCallbacks } from '../../ports/callbacks.ts';
import type { Json } from '../../state.ts';
import { sfnClient } from './clients.ts';
import { callAws, hasName } from './errors.ts';

/** Step Functions' limits on SendTaskFailure, in characters. */
export const MAX_ERROR_CHARS = 256;
export const MAX_CAUSE_CHARS = 32_768;

const MARK = '…';

/** Cut `text` to at most `max` UTF-16 units, never between the halves of a surrogate pair. */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - MARK.length;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}${MARK}`;
}

/** Resumes waiting callback tasks through Step Functions. */
export class SfnTaskCallbacks implements TaskCallbacks {
  private readonly client: SFNClient;

  constructor(options: { client?: SFNClient } = {}) {
    this.client = options.client ?? sfnClient;
  }

  async succeed(token: string, output: Json): Promise<void> {
    await this.send('SendTaskSuccess', () =>
      this.client.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) })),
    );
  }

  async fail(token: string, error: string, cause: string): Promise<void> {
    await this.send('SendTaskFailure', () =>
      this.client.send(
        new SendTaskFailureCommand({ taskToken: token, error: truncate(error, MAX_ERROR_CHARS), cause: truncate(cause, MAX_CAUSE_CHARS) }),
      ),
    );
  }

  private async send(what: string, call: () => Promise<unknown>): Promise<void> {
    try {
      await callAws(what, call);
    } catch (error) {
      // Step Functions says TaskTimedOut for a token whose task is no longer waiting, which
      // includes one already resumed: the same situation as the local "token already used".
      if (hasName(error, 'TaskTimedOut', 'TaskDoesNotExist')) {
        throw new AlreadyDecidedError(`${what}: the task is no longer waiting (already resumed, timed out, or its execution ended)`, {
          cause: error,
        });
      }
      throw error;
    }
  }
}
