import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as errors from '../src/errors.ts';
import { ERROR_NAMES, LAMBDA_SERVICE_ERRORS } from '../src/errors.ts';
import { PROJECT_ROOT, tasksOf } from '../src/local/asl.ts';
import { isTaskName, TASKS } from '../src/tasks.ts';

interface Catcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string;
}
interface State {
  Type: string;
  Comment?: string;
  Resource?: string;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  Retry?: Array<{ ErrorEquals: string[] }>;
  Catch?: Catcher[];
  Parameters?: { FunctionName?: unknown };
}
interface Definition {
  StartAt: string;
  States: Record<string, State>;
}

const STATEMACHINES = path.join(PROJECT_ROOT, 'statemachines');
const definitions = readdirSync(STATEMACHINES)
  .filter((file) => file.endsWith('.asl.json'))
  .map((file) => [file, JSON.parse(readFileSync(path.join(STATEMACHINES, file), 'utf8')) as Definition] as const);

type ErrorClass = new (message: string, options?: { cause?: unknown; hint?: string }) => Error;
const classes = Object.entries(errors as Record<string, unknown>).filter(
  ([, value]) => typeof value === 'function' && (value as { prototype?: unknown }).prototype instanceof Error,
);
/** The contract classes: BakeryError and every class under it. */
const errorClasses: Array<[string, ErrorClass]> = classes
  .filter(([, value]) => value === errors.BakeryError || (value as { prototype: unknown }).prototype instanceof errors.BakeryError)
  .map(([name, value]) => [name, value as ErrorClass]);
/** The errors that stay inside bakery (each turned into a contract error, an exit code or an answer by its consumer). */
const INTERNAL = ['ActionFailure', 'ActionInputError', 'ExitError', 'NotItsMessageError', 'S3Error'];

const taskStates = (definition: Definition) => Object.entries(definition.States).filter(([, state]) => state.Type === 'Task');

describe('statemachines', () => {
  it('has at least the bake state machine', () => {
    expect(definitions.map(([file]) => file)).toContain('bake.asl.json');
  });
});

describe.each(definitions)('%s', (_file, definition) => {
  it('matches only States.* names, Lambda service errors or bakery error names in ErrorEquals', () => {
    // Prepare
    const known = new Set<string>([...LAMBDA_SERVICE_ERRORS, ...ERROR_NAMES]);
    const used = Object.entries(definition.States).flatMap(([name, state]) =>
      [...(state.Retry ?? []), ...(state.Catch ?? [])].flatMap((rule) => rule.ErrorEquals.map((error) => ({ state: name, error }))),
    );

    // Act
    const unknown = used.filter(({ error }) => !error.startsWith('States.') && !known.has(error));

    // Assess
    expect(used.length).toBeGreaterThan(0);
    expect(unknown).toEqual([]);
  });

  it('puts States.ALL alone and last in every Retry and Catch list', () => {
    for (const [name, state] of Object.entries(definition.States)) {
      for (const rules of [state.Retry ?? [], state.Catch ?? []]) {
        rules.forEach((rule, index) => {
          if (!rule.ErrorEquals.includes('States.ALL')) return;
          expect({ state: name, errorEquals: rule.ErrorEquals, last: index === rules.length - 1 }).toEqual({
            state: name,
            errorEquals: ['States.ALL'],
            last: true,
          });
        });
      }
    }
  });

  it('never retries an error that will not go away by itself', () => {
    const retried = new Set(Object.values(definition.States).flatMap((state) => (state.Retry ?? []).flatMap((r) => r.ErrorEquals)));
    expect([...retried].sort()).toEqual([...LAMBDA_SERVICE_ERRORS, 'TransientBackendError'].sort());
  });

  it('catches every failure of every Task into RecordFailure, in $.errors.<State>', () => {
    for (const [name, state] of taskStates(definition)) {
      if (name === 'RecordFailure') continue;
      // A release that happened (or a gradual one under way) is undone before the failure is recorded;
      // a CanaryAlarmError has moved every alias back already.
      const next = name === 'RecordSuccess' || name === 'ShiftTraffic' ? 'UndoRelease' : 'RecordFailure';
      const specific =
        name === 'ShiftTraffic' ? [{ ErrorEquals: ['CanaryAlarmError'], ResultPath: `$.errors.${name}`, Next: 'RecordFailure' }] : [];
      expect({ name, catch: state.Catch }).toEqual({
        name,
        catch: [...specific, { ErrorEquals: ['States.ALL'], ResultPath: `$.errors.${name}`, Next: next }],
      });
    }
    expect((definition.States.UndoRelease as State & { Next?: string }).Next).toBe('RecordFailure');
  });

  it('sends a failure of RecordFailure to FailureNotRecorded, and RecordFailure on to BakeFailed', () => {
    // Prepare
    const recordFailure = definition.States.RecordFailure as State & { Next?: string };

    // Assess
    expect(recordFailure.Type).toBe('Task');
    expect(recordFailure.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.recordFailureError', Next: 'FailureNotRecorded' }]);
    expect(recordFailure.Next).toBe('BakeFailed');
    expect(definition.States.BakeFailed).toMatchObject({ Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' });
    expect(definition.States.FailureNotRecorded).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.recordFailureError.Error',
      CausePath: '$.recordFailureError.Cause',
    });
  });

  it('gives every Task a timeout and a Comment', () => {
    for (const [name, state] of taskStates(definition)) {
      const hasTimeout =
        (typeof state.TimeoutSeconds === 'number' && state.TimeoutSeconds > 0) || typeof state.TimeoutSecondsPath === 'string';
      expect({ name, hasTimeout, comment: typeof state.Comment === 'string' && state.Comment.length > 0 }).toEqual({
        name,
        hasTimeout: true,
        comment: true,
      });
    }
  });

  it('runs a known bakery task in every Task state', () => {
    // Act
    const tasks = tasksOf(definition);

    // Assess
    expect(tasks.map((t) => t.state)).toEqual(taskStates(definition).map(([name]) => name));
    for (const { task } of tasks) expect(isTaskName(task)).toBe(true);
    expect(new Set(tasks.map((t) => t.task))).toEqual(new Set(Object.keys(TASKS)));
  });

  it('waits for a task token exactly in the states whose task settles one', () => {
    // Act
    const callbacks = tasksOf(definition).filter((t) => t.callback);

    // Assess
    expect(callbacks.map((t) => t.task).sort()).toEqual(['buildImage', 'requestApproval']);
  });
});

describe('tasksOf', () => {
  it('refuses a Task state whose function is not a bakery task', () => {
    // Prepare
    const definition = {
      States: {
        Oops: { Type: 'Task', Parameters: { FunctionName: { 'Fn::GetAtt': ['DeployEverythingLambdaFunction', 'Arn'] } } },
      },
    };

    // Act + Assess
    expect(() => tasksOf(definition)).toThrow('state Oops invokes DeployEverythingLambdaFunction, which is not a bakery task');
  });

  it('refuses a Task state that names its function some other way', () => {
    const definition = { States: { Raw: { Type: 'Task', Parameters: { FunctionName: 'arn:aws:lambda:eu-west-1:1:function:x' } } } };
    expect(() => tasksOf(definition)).toThrow('state Raw invokes an unknown function');
  });
});

describe('errors.ts', () => {
  it('exports the error classes', () => {
    expect(errorClasses.length).toBeGreaterThanOrEqual(17);
  });

  it.each(errorClasses)('gives %s a name equal to its class name, which the state machine may match', (className, ErrorClass) => {
    // Act
    const error = new ErrorClass('probe');

    // Assess
    expect(error.name).toBe(className);
    expect(ERROR_NAMES).toContain(className);
    expect(error.message).toBe('probe');
  });

  it('holds every error class of bakery: the contract classes and the few that stay inside, each named as its class', () => {
    // Assess: nothing else, so a new class must be placed on purpose.
    expect(
      classes
        .map(([name]) => name)
        .filter((name) => !errorClasses.some(([n]) => n === name))
        .sort(),
    ).toEqual(INTERNAL);
    const probes: Record<string, Error> = {
      ActionFailure: new errors.ActionFailure('probe', 'log'),
      ActionInputError: new errors.ActionInputError('probe'),
      ExitError: new errors.ExitError(1, 'probe'),
      NotItsMessageError: new errors.NotItsMessageError('probe'),
      S3Error: new errors.S3Error(404, 'NoSuchKey', 'probe'),
    };
    for (const name of INTERNAL) {
      expect(probes[name]?.name, name).toBe(name);
      expect(ERROR_NAMES, name).not.toContain(name);
    }
    const named = errors.namedError('States.Timeout', 'took too long');
    expect([named.name, named.message]).toEqual(['States.Timeout', 'took too long']);
  });

  it('names every bakery error with an Error suffix and keeps them unique', () => {
    for (const name of ERROR_NAMES) expect(name).toMatch(/Error$/);
    expect(new Set(ERROR_NAMES).size).toBe(ERROR_NAMES.length);
  });

  it('passes the cause and the hint through', () => {
    // Prepare
    const root = new Error('disk full');

    // Act
    const error = new errors.LayerPackagingError('cannot zip', { cause: root, hint: 'free some space' });

    // Assess
    expect(error.cause).toBe(root);
    expect(error.hint).toBe('free some space');
    expect(error).toBeInstanceOf(errors.BakeryError);
  });

  it('makes the user-input errors InputErrors (CLI exit code 2) and the others not', () => {
    const input = errorClasses.filter(([, E]) => new E('x') instanceof errors.InputError).map(([name]) => name);
    expect(input.sort()).toEqual(
      [
        'AlreadyDecidedError',
        'ApprovalExpiredError',
        'BakeSpecError',
        'ConfigError',
        'InputError',
        'NotAnApproverError',
        'NotFoundError',
        'NotInterruptedError',
        'RecipeError',
        'StateDirError',
        'UnknownRecipeError',
        'UnsafeSourceBundleError',
      ].sort(),
    );
  });
});

describe('causeMessage', () => {
  it('reads errorMessage out of the JSON cause of the AWS Lambda integration', () => {
    const cause = JSON.stringify({ errorType: 'ValidationFailedError', errorMessage: 'case "x" failed', trace: [] });
    expect(errors.causeMessage(cause)).toBe('case "x" failed');
  });

  it('keeps a plain cause, and JSON without errorMessage, as it is', () => {
    expect(errors.causeMessage('rejected by bob')).toBe('rejected by bob');
    expect(errors.causeMessage('{"a":1}')).toBe('{"a":1}');
    expect(errors.causeMessage('42')).toBe('42');
  });

  it('turns a missing cause into an empty string and a non-string into JSON', () => {
    expect(errors.causeMessage(undefined)).toBe('');
    expect(errors.causeMessage({ a: 1 })).toBe('{"a":1}');
  });
});
