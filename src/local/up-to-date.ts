import type { LocalDecisionDeps } from '../compose/local-decision.ts';
import { upToDateBake } from '../cores/patch.ts';
import type { CheckedBakeInput } from '../cores/resolve.ts';
import { type BakeRequest, type Json, parseBakeRequest } from '../state.ts';
import { ExecutionJournal } from './journal.ts';
import type { RunnerEvent, UpToDateOutcome } from './runner.ts';

/**
 * `bakery bake` of a spec that is up to date, ended without starting the state machine:
 * ResolveBake's own decision (src/cores/patch.ts `upToDateBake`, the function the
 * state machine's IsUpToDate path follows) says so, and the execution is journaled as the
 * runner journals one that ends there (ResolveBake entered and returned, then `upToDate`),
 * in one write (src/local/journal.ts `recordEnded`), so `bakery executions` lists it the
 * same. A no-op then costs the decision, not the state-machine library, nor the ports
 * that bake (src/compose/local-decision.ts). `checked`: the spec as the CLI has just
 * checked it, so it is read once. Null when the bake is not up to date: run the state machine.
 */
export async function endIfUpToDate(
  request: BakeRequest & { bakeId: string },
  options: { deps: LocalDecisionDeps; spec: string; checked?: CheckedBakeInput; onEvent?: (event: RunnerEvent) => void },
): Promise<UpToDateOutcome | null> {
  const started = Date.now();
  const bake = await upToDateBake(parseBakeRequest(request), options.deps, options.checked ? { checked: options.checked } : {});
  if (!bake) return null;
  await ExecutionJournal.recordEnded(
    options.deps.home,
    request,
    options.spec,
    {
      state: 'ResolveBake',
      enteredAt: new Date(started).toISOString(),
      input: request as unknown as Json,
      result: { Payload: JSON.parse(JSON.stringify(bake)) as Json },
    },
    { status: 'upToDate', at: new Date().toISOString() },
  );
  options.onEvent?.({ type: 'entered', state: 'ResolveBake', stateType: 'Task' });
  options.onEvent?.({ type: 'succeeded', state: 'ResolveBake', durationMs: Date.now() - started, output: { bake } });
  return { status: 'upToDate', bakeId: request.bakeId, output: { bake } };
}
