import { SendTaskFailureCommand, SendTaskSuccessCommand, SFNClient, TaskTimedOut } from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_CAUSE_CHARS, MAX_ERROR_CHARS, SfnTaskCallbacks, truncate } from '../../../src/adapters/aws/callbacks.ts';
import { AlreadyDecidedError } from '../../../src/errors.ts';
import { TASK_TOKEN } from './fixtures.ts';

const client = new SFNClient({ region: 'eu-west-1' });
const sfn = mockClient(client);

describe('SfnTaskCallbacks', () => {
  let callbacks: SfnTaskCallbacks;

  beforeEach(() => {
    callbacks = new SfnTaskCallbacks({ client });
    sfn.on(SendTaskSuccessCommand).resolves({}).on(SendTaskFailureCommand).resolves({});
  });

  afterEach(() => {
    sfn.reset();
  });

  it('sends the output as JSON with SendTaskSuccess', async () => {
    await callbacks.succeed(TASK_TOKEN, { approvalId: 'apr-1', decision: 'approved' });

    expect(sfn).toHaveReceivedCommandWith(SendTaskSuccessCommand, {
      taskToken: TASK_TOKEN,
      output: '{"approvalId":"apr-1","decision":"approved"}',
    });
  });

  it('sends error and cause within Step Functions’ limits', async () => {
    // Act
    await callbacks.fail(TASK_TOKEN, `E${'r'.repeat(400)}`, 'c'.repeat(40_000));

    // Assess
    const input = sfn.commandCalls(SendTaskFailureCommand)[0]?.args[0].input;
    expect(input?.taskToken).toBe(TASK_TOKEN);
    expect(input?.error?.length).toBe(MAX_ERROR_CHARS);
    expect(input?.cause?.length).toBe(MAX_CAUSE_CHARS);
    expect(input?.cause?.endsWith('…')).toBe(true);
  });

  it('passes short values through unchanged', async () => {
    await callbacks.fail(TASK_TOKEN, 'ApprovalRejectedError', 'rejected by U1');

    expect(sfn).toHaveReceivedCommandWith(SendTaskFailureCommand, { error: 'ApprovalRejectedError', cause: 'rejected by U1' });
  });

  it('reports a task that is no longer waiting as AlreadyDecidedError', async () => {
    sfn.on(SendTaskSuccessCommand).rejects(new TaskTimedOut({ $metadata: { httpStatusCode: 400 }, message: 'Task Timed Out' }));

    await expect(callbacks.succeed(TASK_TOKEN, null)).rejects.toThrow(AlreadyDecidedError);
  });
});

describe('truncate', () => {
  it('never splits a surrogate pair', () => {
    // Prepare: the cut falls between the two halves of 😀.
    const text = `${'a'.repeat(8)}😀tail`;

    // Act
    const cut = truncate(text, 10);

    // Assess
    expect(cut.length).toBeLessThanOrEqual(10);
    expect(cut).toBe(`${'a'.repeat(8)}…`);
    expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });
});
