import {
  GetFunctionConfigurationCommand,
  InvokeCommand,
  type InvokeCommandOutput,
  LambdaClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LambdaInvoker } from '../../../src/adapters/aws/invoker.ts';
import { NotFoundError } from '../../../src/errors.ts';

const lambdaClient = new LambdaClient({ region: 'eu-west-1' });
const lambda = mockClient(lambdaClient);

const TARGET = { name: 'hello', version: '7', initTimeoutMs: 10_000 };
const tail = (text: string) => Buffer.from(text).toString('base64');
/** A response payload; the SDK's blob adapter is a Uint8Array with helpers the adapter does not use. */
const bytes = (text: string) => Buffer.from(text) as unknown as NonNullable<InvokeCommandOutput['Payload']>;
const payload = (value: unknown) => bytes(JSON.stringify(value));

describe('LambdaInvoker', () => {
  let invoker: LambdaInvoker;

  beforeEach(() => {
    invoker = new LambdaInvoker({ lambda: lambdaClient, wait: { maxWaitTime: 1, minDelay: 0.01, maxDelay: 0.02 } });
    lambda.on(GetFunctionConfigurationCommand).resolves({ Version: '7', State: 'Active' });
  });

  afterEach(() => {
    lambda.reset();
  });

  it('invokes the version by number with the log tail, and reports Lambda’s own duration', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      Payload: payload({ greeting: 'hi' }),
      LogResult: tail(
        'START RequestId: r1\nhello log\nEND RequestId: r1\nREPORT RequestId: r1\tDuration: 12.6 ms\tBilled Duration: 13 ms\n',
      ),
    });

    // Act
    const session = await invoker.open(TARGET);
    const outcome = await session.invoke({ name: 'world' }, 3000);
    await session.close();

    // Assess
    expect(session.init).toEqual({ durationMs: null, error: null });
    expect(outcome).toMatchObject({ ok: true, result: { greeting: 'hi' }, durationMs: 13 });
    expect(outcome.logTail).toContain('hello log');
    expect(lambda).toHaveReceivedCommandWith(InvokeCommand, {
      FunctionName: 'hello',
      Qualifier: '7',
      InvocationType: 'RequestResponse',
      LogType: 'Tail',
    });
    const sentPayload = lambda.commandCalls(InvokeCommand)[0]?.args[0].input.Payload;
    expect(JSON.parse(Buffer.from(sentPayload as Uint8Array).toString())).toEqual({ name: 'world' });
  });

  it('turns a function error into a failed outcome with the error payload and decoded log tail', async () => {
    // Prepare
    lambda.on(InvokeCommand).resolves({
      StatusCode: 200,
      FunctionError: 'Unhandled',
      Payload: payload({ errorType: 'Runtime.ExitError', errorMessage: 'exit status 1' }),
      LogResult: tail('bootstrap: cannot find node\n'),
    });

    // Act
    const outcome = await (await invoker.open(TARGET)).invoke({}, 3000);

    // Assess
    expect(outcome).toMatchObject({
      ok: false,
      errorType: 'Runtime.ExitError',
      errorMessage: 'exit status 1',
      logTail: 'bootstrap: cannot find node\n',
    });
  });

  it('falls back to the FunctionError header when the payload has no errorType', async () => {
    lambda.on(InvokeCommand).resolves({ FunctionError: 'Unhandled', Payload: bytes('Task timed out') });

    const outcome = await (await invoker.open(TARGET)).invoke({}, 3000);

    expect(outcome).toMatchObject({ ok: false, errorType: 'Unhandled', errorMessage: 'Task timed out', logTail: '' });
  });

  it('waits for a version that is still Pending, and reports a Failed version as an init error', async () => {
    // Prepare
    lambda.reset();
    lambda
      .on(GetFunctionConfigurationCommand, { Qualifier: '7' })
      .resolvesOnce({ State: 'Pending' })
      .resolves({ State: 'Active' })
      .on(GetFunctionConfigurationCommand, { Qualifier: '8' })
      .resolves({ State: 'Failed', StateReasonCode: 'InvalidConfiguration', StateReason: 'layer not found' });

    // Act
    const pending = await invoker.open(TARGET);
    const failed = await invoker.open({ ...TARGET, version: '8' });

    // Assess
    expect(pending.init.error).toBeNull();
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 4);
    expect(failed.init.error).toMatch(/Failed: InvalidConfiguration layer not found/);
  });

  it('fails with NotFoundError for a version that does not exist, and never resolves an alias', async () => {
    lambda.reset();
    lambda.on(GetFunctionConfigurationCommand).rejects(new ResourceNotFoundException({ $metadata: {}, message: 'no' }));

    await expect(invoker.open(TARGET)).rejects.toThrow(NotFoundError);
    await expect(invoker.open({ ...TARGET, version: 'live' })).rejects.toThrow(NotFoundError);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 1);
    expect(lambda).not.toHaveReceivedCommand(InvokeCommand);
  });
});
