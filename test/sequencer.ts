import path from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The slowest files of the suite (each 10 s or more of a full run here on 2 cores, 2026-12-02),
 * slowest first. They start first so that the end of the run is not one of them running alone.
 * Vitest orders by each file's duration in its results cache, which a fresh clone (CI) has not
 * got, and falls back to file size, which left kill-resume (small and slow) to start last.
 * A file missing here only starts later; one listed that no longer exists is ignored.
 */
const SLOW_FIRST = [
  'test/statemachines/bake.asl.test.ts',
  'test/local/journal.test.ts',
  'test/cli/e2e.test.ts',
  'test/statemachines/up-to-date.asl.test.ts',
  'test/adapters/local/ledger-crash.test.ts',
  'test/deploy/stack.test.ts',
  'test/adapters/local/races.test.ts',
  'test/statemachines/state-size.asl.test.ts',
  'test/serve/dashboard.test.ts',
  'test/serve/restart.test.ts',
  'test/cli/kill-resume.test.ts',
  'test/statemachines/approval-binding.asl.test.ts',
  'test/s3local/server.test.ts',
  'test/statemachines/release.asl.test.ts',
  'test/statemachines/aws-build.asl.test.ts',
  'test/deploy/package.test.ts',
];

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const rank = (spec: TestSpecification) => {
      const index = SLOW_FIRST.indexOf(path.relative(this.ctx.config.root, spec.moduleId));
      return index === -1 ? SLOW_FIRST.length : index;
    };
    // Array#sort is stable: the rest keep vitest's order.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
