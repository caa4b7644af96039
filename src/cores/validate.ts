import { ValidationFailedError } from '../errors.ts';
import type {
  ArtefactStore,
  CaseReport,
  FunctionInvoker,
  FunctionValidationReport,
  Json,
  PublishedVersions,
  ResolvedBake,
  ValidationReport,
} from '../ports.ts';
import type { ValidationCase } from '../spec.ts';
import { diffJson } from '../util/json.ts';

function judge(kase: ValidationCase, outcome: Awaited<ReturnType<Awaited<ReturnType<FunctionInvoker['open']>>['invoke']>>): string | null {
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

/**
 * Validate: run every case of every function against the new version (by number,
 * never the alias). All functions are checked before anything can move.
 */
export async function validateVersions(
  input: { bake: ResolvedBake; versions: PublishedVersions },
  deps: { invoker: FunctionInvoker; artefacts: ArtefactStore },
): Promise<ValidationReport> {
  const reports: FunctionValidationReport[] = [];
  for (const published of input.versions.functions) {
    const fnSpec = input.bake.spec.functions.find((f) => f.name === published.name);
    if (!fnSpec) throw new ValidationFailedError(`no validation cases for ${published.name}`);
    const session = await deps.invoker.open({
      name: published.name,
      version: published.version,
      initTimeoutMs: fnSpec.validation.initTimeoutMs,
    });
    const cases: CaseReport[] = [];
    try {
      if (session.init.error === null) {
        for (const kase of fnSpec.validation.cases) {
          const outcome = await session.invoke(kase.event as Json, Math.max(kase.maxDurationMs, fnSpec.timeout * 1000));
          const failure = judge(kase, outcome);
          cases.push({ name: kase.name, passed: failure === null, durationMs: outcome.durationMs, failure });
        }
      }
    } finally {
      await session.close();
    }
    reports.push({
      name: published.name,
      version: published.version,
      passed: session.init.error === null && cases.every((c) => c.passed),
      initDurationMs: session.init.durationMs,
      initError: session.init.error,
      cases,
    });
  }
  const report: ValidationReport = { passed: reports.every((r) => r.passed), functions: reports };
  const key = `reports/${input.bake.bakeId}/validation.json`;
  await deps.artefacts.putJson(key, report);
  if (!report.passed) {
    const lines = reports.flatMap((r) => [
      ...(r.initError ? [`${r.name}:${r.version} init failed: ${r.initError}`] : []),
      ...r.cases.filter((c) => !c.passed).map((c) => `${r.name}:${r.version} case "${c.name}": ${c.failure}`),
    ]);
    throw new ValidationFailedError(`validation failed (report: ${key})\n${lines.join('\n')}`);
  }
  return report;
}
