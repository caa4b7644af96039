import type { Deps } from './compose/deps.ts';
import { requestApproval } from './cores/approval.ts';
import { startImageBuild } from './cores/image.ts';
import { publishLayer } from './cores/layer.ts';
import { resolveBakeTask } from './cores/patch.ts';
import { recordFailure, recordSuccess } from './cores/record.ts';
import { release, shiftTraffic, undoRelease } from './cores/release.ts';
import { validateVersions } from './cores/validate.ts';
import { publishVersions } from './cores/version.ts';
import { parseBakeRequest, parseFailureInput, parseTaskInput } from './state.ts';

/**
 * The state machine's tasks by function key (the key in serverless.yml). A Lambda
 * handler and the local runner call exactly these, with AWS or local ports. Each parses
 * its payload with its state's schema first (src/state.ts): a mismatch is a
 * StateContractError naming the state and the field.
 */
export const TASKS = {
  resolveBake: (payload: unknown, deps: Deps) => resolveBakeTask(parseBakeRequest(payload), deps),
  buildImage: (payload: unknown, deps: Deps) => startImageBuild(parseTaskInput('BuildImage', payload), deps),
  publishLayer: (payload: unknown, deps: Deps) => publishLayer(parseTaskInput('PublishLayer', payload), deps),
  publishVersion: (payload: unknown, deps: Deps) => publishVersions(parseTaskInput('PublishVersion', payload), deps),
  validate: (payload: unknown, deps: Deps) => validateVersions(parseTaskInput('Validate', payload), deps),
  requestApproval: (payload: unknown, deps: Deps) => requestApproval(parseTaskInput('RequestApproval', payload), deps),
  release: (payload: unknown, deps: Deps) => release(parseTaskInput('Release', payload), deps),
  shiftTraffic: (payload: unknown, deps: Deps) => shiftTraffic(parseTaskInput('ShiftTraffic', payload), deps),
  undoRelease: (payload: unknown, deps: Deps) => undoRelease(parseTaskInput('UndoRelease', payload), deps),
  recordSuccess: (payload: unknown, deps: Deps) => recordSuccess(parseTaskInput('RecordSuccess', payload), deps),
  recordFailure: (payload: unknown, deps: Deps) => recordFailure(parseFailureInput(payload), deps),
} as const;

export type TaskName = keyof typeof TASKS;

export const isTaskName = (name: string): name is TaskName => Object.hasOwn(TASKS, name);
