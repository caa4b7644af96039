import { ArtefactNotSelfContainedError, ValidationFailedError } from '../errors.ts';
import type { FunctionInvoker, InvokeOutcome, NetworkMode } from '../ports/lambda.ts';
import type { ArtefactStore } from '../ports/storage.ts';
import type { FunctionSpec, ValidationCase } from '../spec.ts';
import type {
  CaseReport,
  FunctionValidationReport,
  Json,
  PublishedFunctionVersion,
  PublishedVersions,
  ResolvedBake,
  ValidationReport,
} from '../state.ts';
import { mapLimit } from '../util/concurrency.ts';
import { diffJson } from '../util/json.ts';

function judge(kase: ValidationCase, outcome: InvokeOutcome): string | null {
  const problems: string[] = [];
  if (outcome.durationMs > kase.maxDurationMs) problems.push(`took ${outcome.durationMs} ms, limit ${kase.maxDurationMs} ms`);
  if (kase.expect.errorType !== undefined) {
    if (outcome.ok) problems.push(`expected error ${kase.expect.errorType}, got result ${JSON.stringify(outcome.result)}`);
    else if (outcome.errorType !== kase.expect.errorType) {
      problems.push(`expected error ${kase.expect.errorType}, got ${outcome.errorType}: ${outcome.errorMessage}`);
    }
  } else if (!outcome.ok) {
    problems.push(`handler failed: ${outcome.errorType}: ${outcome.errorMessage}`);
  } else if (kase.expect.result !== undefined) {
    problems.push(...diffJson(kase.expect.result as Json, outcome.result, kase.expect.match));
  }
  if (problems.length && outcome.logTail) problems.push(`log tail:\n${outcome.logTail}`);
  return problems.length ? problems.join('\n') : null;
}

/** Where the validation report of a bake is stored, passed or failed. */
export const validationReportKey = (bakeId: string): string => `reports/${bakeId}/validation.json`;

/** Open the version once and run every case concurrently (the invoker gives each its own environment). */
async function runCases(
  invoker: FunctionInvoker,
  published: PublishedFunctionVersion,
  fnSpec: FunctionSpec,
  network: NetworkMode,
): Promise<{ init: { durationMs: number | null; error: string | null }; cases: CaseReport[] }> {
  const session = await invoker.open({
    name: published.name,
    version: published.version,
    initTimeoutMs: fnSpec.validation.initTimeoutMs,
    network,
  });
  try {
    if (session.init.error !== null) return { init: session.init, cases: [] };
    const cases = await Promise.all(
      fnSpec.validation.cases.map(async (kase): Promise<CaseReport> => {
        const outcome = await session.invoke(kase.event as Json, Math.max(kase.maxDurationMs, fnSpec.timeout * 1000));
        const failure = judge(kase, outcome);
        return { name: kase.name, passed: failure === null, durationMs: outcome.durationMs, failure };
      }),
    );
    return { init: session.init, cases };
  } finally {
    await session.close();
  }
}

/** How many functions' validations run at once (each starts its version and runs its cases). */
export const VALIDATION_CONCURRENCY = 8;

/**
 * Validate: run every case of every function against the new version (by number,
 * never the alias), then run them again with no network at all where this machine
 * allows it: an artefact that only works with a network is not self-contained. All
 * functions are checked, and the report stored, before the bake can fail.
 */
export async function validateVersions(
  input: { bake: ResolvedBake; versions: PublishedVersions },
  deps: { invoker: FunctionInvoker; artefacts: ArtefactStore },
): Promise<ValidationReport> {
  const isolation = await deps.invoker.isolation();
  // Functions are validated concurrently, at most VALIDATION_CONCURRENCY at a time: at N
  // functions the bake costs about N / limit validations, not N; the report keeps their order.
  const reports = await mapLimit(input.versions.functions, VALIDATION_CONCURRENCY, async (published): Promise<FunctionValidationReport> => {
    const fnSpec = input.bake.spec.functions.find((f) => f.name === published.name);
    if (!fnSpec) throw new ValidationFailedError(`no validation cases for ${published.name}`);
    const online = await runCases(deps.invoker, published, fnSpec, 'host');
    const passedOnline = online.init.error === null && online.cases.every((c) => c.passed);
    let selfContained: FunctionValidationReport['selfContained'];
    if (!passedOnline) {
      selfContained = { checked: false, passed: null, reason: 'not run: the version already failed with a network', cases: [] };
    } else if (!isolation.available) {
      selfContained = { checked: false, passed: null, reason: isolation.reason ?? 'no network isolation here', cases: [] };
    } else {
      const offline = await runCases(deps.invoker, published, fnSpec, 'none');
      const passed = offline.init.error === null && offline.cases.every((c) => c.passed);
      selfContained = {
        checked: true,
        passed,
        reason: offline.init.error === null ? null : `init failed with no network: ${offline.init.error}`,
        cases: offline.cases,
      };
    }
    return {
      name: published.name,
      version: published.version,
      passed: passedOnline && selfContained.passed !== false,
      initDurationMs: online.init.durationMs,
      initError: online.init.error,
      cases: online.cases,
      selfContained,
    };
  });
  const report: ValidationReport = { passed: reports.every((r) => r.passed), functions: reports };
  const key = validationReportKey(input.bake.bakeId);
  await deps.artefacts.putJson(key, report);

  const failures = reports.flatMap((r) => [
    ...(r.initError ? [`${r.name}:${r.version} init failed: ${r.initError}`] : []),
    ...r.cases.filter((c) => !c.passed).map((c) => `${r.name}:${r.version} case "${c.name}": ${c.failure}`),
  ]);
  if (failures.length) throw new ValidationFailedError(`validation failed (report: ${key})\n${failures.join('\n')}`);
  const offlineOnly = reports.flatMap((r) =>
    r.selfContained.passed === false
      ? [
          ...(r.selfContained.reason ? [`${r.name}:${r.version} ${r.selfContained.reason}`] : []),
          ...r.selfContained.cases
            .filter((c) => !c.passed)
            .map((c) => `${r.name}:${r.version} case "${c.name}" fails only without a network: ${c.failure}`),
        ]
      : [],
  );
  if (offlineOnly.length) {
    throw new ArtefactNotSelfContainedError(`the artefact needs a network to work (report: ${key})\n${offlineOnly.join('\n')}`, {
      hint: 'Bake what the function fetches at run time into the layer or the code, so what runs is what was validated.',
    });
  }
  return report;
}
