/**
 * Error classes whose `name` is the contract with `statemachines/bake.asl.json`.
 *
 * Step Functions matches `Retry`/`Catch` entries on the error *name* (the Lambda
 * `errorType`), exactly as aws-local-stepfunctions does locally, so every class
 * sets `this.name` explicitly instead of relying on the constructor name (which
 * a bundler may mangle). A test checks that every `ErrorEquals` in the ASL is a
 * `States.*` name, one of {@link LAMBDA_SERVICE_ERRORS}, or a class exported here.
 */

/** Base class: every bakery error carries a stable name and an optional hint on how to fix it. */
export class BakeryError extends Error {
  /** What the user can do about it; printed by the CLI under the message. */
  readonly hint: string | undefined;

  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'BakeryError';
    this.hint = options.hint;
  }
}

/** Input the user gave is wrong (spec, recipe, flags, state directory). CLI exit code 2. */
export class InputError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'InputError';
  }
}

/** A required setting is missing or malformed: the deployment is wrong, not the bake. CLI exit code 2. */
export class ConfigError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** The bake spec is missing, unreadable or does not match the schema. */
export class BakeSpecError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'BakeSpecError';
  }
}

/**
 * A bake bundle (the uploaded source zip, untrusted) that is not safe to extract: an
 * entry with an absolute path, a `..` segment, a link or another special file, or sizes
 * over Lambda's limits. Nothing of it is extracted.
 */
export class UnsafeSourceBundleError extends BakeSpecError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'UnsafeSourceBundleError';
  }
}

/** The spec names a runtime recipe that does not exist under `layers/`. */
export class UnknownRecipeError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'UnknownRecipeError';
  }
}

/** A recipe or component document is malformed or asks for something unsupported. */
export class RecipeError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'RecipeError';
  }
}

/** The state directory (`BAKERY_HOME`) cannot be used. */
export class StateDirError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'StateDirError';
  }
}

/**
 * A file of the state directory is not what bakery writes (not JSON, or not the shape it
 * records): changed outside bakery, or damaged. CLI exit code 1; the message names the file.
 */
export class StateDamagedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'StateDamagedError';
  }
}

/** Something the user referred to (a bake, an approval, a version) does not exist. */
export class NotFoundError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'NotFoundError';
  }
}

/** The runtime image build failed (a component step, a checksum, Image Builder itself). */
export class ImageBuildFailedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ImageBuildFailedError';
  }
}

/** The artefact cannot be packaged as a layer (symlink out of tree, size over the Lambda limits). */
export class LayerPackagingError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'LayerPackagingError';
  }
}

/** What Lambda stored is not byte-identical to what was built. */
export class LayerIntegrityError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'LayerIntegrityError';
  }
}

/** Publishing a function version failed or produced a version that does not match its inputs. */
export class PublishVersionError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'PublishVersionError';
  }
}

/** A validation case failed against the new version. */
export class ValidationFailedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ValidationFailedError';
  }
}

/** The version passes its cases with a network but fails them with none: it fetches something at run time. */
export class ArtefactNotSelfContainedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ArtefactNotSelfContainedError';
  }
}

/** The approver rejected the bake. */
export class ApprovalRejectedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ApprovalRejectedError';
  }
}

/** Nobody decided before the approval expired. */
export class ApprovalTimedOutError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ApprovalTimedOutError';
  }
}

/** The approval was already decided; a second decision changes nothing. */
export class AlreadyDecidedError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'AlreadyDecidedError';
  }
}

/** The approval window closed (its time passed, or RecordFailure marked it expired): a decision changes nothing. */
export class ApprovalExpiredError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'ApprovalExpiredError';
  }
}

/** Someone who is not on the bake's list of approvers tried to decide it. */
export class NotAnApproverError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'NotAnApproverError';
  }
}

/** The alias moved since we read it; we refuse to overwrite a concurrent change. */
export class AliasConflictError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'AliasConflictError';
  }
}

/**
 * A CloudWatch alarm named in the spec's gradual release was in ALARM (or gone) between
 * two traffic steps: the aliases were moved back to the previous version.
 */
export class CanaryAlarmError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'CanaryAlarmError';
  }
}

/**
 * A task's input does not match the state contract (src/state.ts): the message names the
 * state and the field, e.g. `PublishLayer: $.image.bakeKey: expected string, received undefined`.
 * A producer and a consumer disagree (a bug, or an execution started by an older
 * deployment), so the ASL does not retry it: each Task's `States.ALL` Catch sends it to
 * RecordFailure, and at RecordFailure itself the Catch ends in FailureNotRecorded.
 */
export class StateContractError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'StateContractError';
  }
}

/** A backend call failed in a way worth retrying (throttling, 5xx, a lost connection). */
export class TransientBackendError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'TransientBackendError';
  }
}

/** A lock of the local backend stayed held by a live process for longer than the bounded wait. */
export class LockTimeoutError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'LockTimeoutError';
  }
}

/** `bakery resume` of a local execution that is not interrupted: it still runs (its process is alive) or it has ended. */
export class NotInterruptedError extends InputError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'NotInterruptedError';
  }
}

/**
 * An approval decision was recorded for a local bake whose process is gone: nothing
 * resumed it; `bakery resume <bakeId>` continues it with that decision.
 */
export class BakeInterruptedError extends BakeryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, options);
    this.name = 'BakeInterruptedError';
  }
}

/**
 * Errors the Step Functions Lambda integration itself raises (not thrown by our code).
 * They are transient by AWS's own guidance, so the ASL retries them.
 */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
] as const;

/** Every error name the state machine may match on, besides `States.*`. */
export const ERROR_NAMES: readonly string[] = [
  BakeryError,
  InputError,
  ConfigError,
  BakeSpecError,
  UnsafeSourceBundleError,
  UnknownRecipeError,
  RecipeError,
  StateDirError,
  StateDamagedError,
  NotFoundError,
  ImageBuildFailedError,
  LayerPackagingError,
  LayerIntegrityError,
  PublishVersionError,
  ValidationFailedError,
  ArtefactNotSelfContainedError,
  ApprovalRejectedError,
  ApprovalTimedOutError,
  AlreadyDecidedError,
  ApprovalExpiredError,
  NotAnApproverError,
  AliasConflictError,
  CanaryAlarmError,
  StateContractError,
  TransientBackendError,
  LockTimeoutError,
  NotInterruptedError,
  BakeInterruptedError,
].map((ErrorClass) => new ErrorClass('probe').name);

// ---------------------------------------------------------------- errors that stay inside bakery
//
// These never reach the state machine under their own name (so they are not in ERROR_NAMES,
// and need not end in `Error`): each is caught and turned into one of the classes above, an
// exit code or an HTTP answer by its one consumer, named in its TSDoc.

/** A step's action failed (retried up to maxAttempts, subject to onFailure): src/recipes/toe.ts makes it an ImageBuildFailedError. */
export class ActionFailure extends Error {
  /** Output captured before the failure (the step's log). */
  readonly output: string;

  constructor(message: string, output = '') {
    super(message);
    this.name = 'ActionFailure';
    this.output = output;
  }
}

/** An action's inputs make no sense (never retried: another attempt cannot fix them); src/recipes/toe.ts reports it as the step's failure. */
export class ActionInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ActionInputError';
  }
}

/** A failure the CLI (src/cli/program.ts) reports with a given exit code, its message already printed. */
export class ExitError extends Error {
  readonly code: number;

  constructor(code: number, message = '') {
    super(message);
    this.name = 'ExitError';
    this.code = code;
  }
}

/** An S3 error response of the local S3-compatible server (src/s3local): HTTP status, S3's error code, message (rendered as S3's XML error document). */
export class S3Error extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'S3Error';
    this.status = status;
    this.code = code;
  }
}

/** A Slack click on a message other than the one the approval was posted as; src/cores/slack-callback.ts answers it with an ephemeral reply. */
export class NotItsMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotItsMessageError';
  }
}

/**
 * An error whose `name` is what the ASL's Retry/Catch will match, for names that are not
 * a class of this module (`States.Timeout`, or a task's error replayed by the local runner).
 */
export function namedError(name: string, message: string): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

/** `{Error, Cause}` as Step Functions hands a caught error to the next state. */
export interface StatesError {
  Error: string;
  Cause: string;
}

/**
 * The human message inside a Step Functions `Cause`. In AWS the Lambda integration
 * puts a JSON string `{"errorType","errorMessage","trace"}` there; locally it is the
 * plain message. Both are accepted.
 */
export function causeMessage(cause: unknown): string {
  if (typeof cause !== 'string') return cause === undefined ? '' : JSON.stringify(cause);
  try {
    const parsed: unknown = JSON.parse(cause);
    if (parsed && typeof parsed === 'object' && 'errorMessage' in parsed) {
      return String((parsed as { errorMessage: unknown }).errorMessage);
    }
  } catch {
    // not JSON: a plain message
  }
  return cause;
}
