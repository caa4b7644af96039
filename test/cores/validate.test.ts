import { describe, expect, it } from 'vitest';
import { VALIDATION_CONCURRENCY, validateVersions } from '../../src/cores/validate.ts';
import { ValidationFailedError } from '../../src/errors.ts';
import type { InvokeSession } from '../../src/ports/lambda.ts';
import type { Json, ValidationReport } from '../../src/state.ts';
import { functionSpec, publishedVersions, resolvedBake } from '../helpers/fixtures.ts';
import { failed, MemoryArtefactStore, ok, ScriptedInvoker } from '../helpers/memory.ts';
import { rejection } from '../helpers/rejection.ts';

const REPORT_KEY = 'reports/hello-20261122T073000-abcd/validation.json';

describe('validateVersions', () => {
  it('passes when an exact match is deep-equal, whatever the key order', async () => {
    // Prepare
    const bake = resolvedBake({
      functions: [functionSpec('hello', [{ name: 'exact', event: { n: 1 }, expect: { match: 'exact', result: { a: 1, b: [1, 2] } } }])],
    });
    const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ b: [1, 2], a: 1 }) } });
    const artefacts = new MemoryArtefactStore();

    // Act
    const report = await validateVersions({ bake, versions: publishedVersions(['hello', '7']) }, { invoker, artefacts });

    // Assess
    expect(report.passed).toBe(true);
    expect(report.functions).toEqual([
      expect.objectContaining({
        name: 'hello',
        version: '7',
        passed: true,
        initError: null,
        cases: [expect.objectContaining({ passed: true, failure: null })],
      }),
    ]);
    expect(invoker.opened).toEqual([{ name: 'hello', version: '7', initTimeoutMs: 10_000, network: 'host' }]);
    expect(invoker.invoked.map((i) => i.event)).toEqual([{ n: 1 }]);
  });

  it('fails an exact match on an extra key, with a readable diff line per difference', async () => {
    // Prepare
    const bake = resolvedBake({
      functions: [functionSpec('hello', [{ name: 'exact', expect: { match: 'exact', result: { message: 'Hello, bakery!' } } }])],
    });
    const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ message: 'Hello, world!', runtime: 'v22' }) } });
    const artefacts = new MemoryArtefactStore();

    // Act
    const error = await rejection(validateVersions({ bake, versions: publishedVersions(['hello', '2']) }, { invoker, artefacts }));

    // Assess
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect(error.name).toBe('ValidationFailedError');
    expect(error.message).toContain('hello:2 case "exact"');
    expect(error.message).toContain('$.message: expected "Hello, bakery!", got "Hello, world!"');
    expect(error.message).toContain('$.runtime: unexpected "v22"');
  });

  it('passes a subset match with extra keys but fails it on a differing nested value', async () => {
    // Prepare
    const expectResult = { match: 'subset' as const, result: { message: 'hi', meta: { lang: 'en' } } };
    const bake = resolvedBake({ functions: [functionSpec('hello', [{ name: 'subset', expect: expectResult }])] });
    const good = new ScriptedInvoker({ hello: { respond: () => ok({ message: 'hi', meta: { lang: 'en', extra: 1 }, runtime: 'v22' }) } });
    const bad = new ScriptedInvoker({ hello: { respond: () => ok({ message: 'hi', meta: { lang: 'fr' } }) } });

    // Act
    const report = await validateVersions(
      { bake, versions: publishedVersions(['hello', '1']) },
      { invoker: good, artefacts: new MemoryArtefactStore() },
    );
    const error = await rejection(
      validateVersions({ bake, versions: publishedVersions(['hello', '1']) }, { invoker: bad, artefacts: new MemoryArtefactStore() }),
    );

    // Assess
    expect(report.passed).toBe(true);
    expect(error.message).toContain('$.meta.lang: expected "en", got "fr"');
    expect(error.message).not.toContain('unexpected');
  });

  it('passes a case expecting an errorType only when the handler fails with that type', async () => {
    // Prepare
    const bake = resolvedBake({
      functions: [
        functionSpec('hello', [
          { name: 'right error', event: { kind: 'right' }, expect: { errorType: 'ValidationError' } },
          { name: 'wrong error', event: { kind: 'wrong' }, expect: { errorType: 'ValidationError' } },
          { name: 'no error', event: { kind: 'none' }, expect: { errorType: 'ValidationError' } },
        ]),
      ],
    });
    const invoker = new ScriptedInvoker({
      hello: {
        respond: (event: Json) => {
          const kind = (event as { kind: string }).kind;
          if (kind === 'right') return failed('ValidationError', 'name must be a string');
          if (kind === 'wrong') return failed('TypeError', 'boom');
          return ok({ message: 'fine' });
        },
      },
    });
    const artefacts = new MemoryArtefactStore();

    // Act
    const error = await rejection(validateVersions({ bake, versions: publishedVersions(['hello', '1']) }, { invoker, artefacts }));

    // Assess
    const stored = await artefacts.getJson<ValidationReport>(REPORT_KEY);
    expect(stored?.functions[0]?.cases.map((c) => [c.name, c.passed])).toEqual([
      ['right error', true],
      ['wrong error', false],
      ['no error', false],
    ]);
    expect(error.message).toContain('expected error ValidationError, got TypeError: boom');
    expect(error.message).toContain('expected error ValidationError, got result {"message":"fine"}');
    expect(error.message).not.toContain('"right error"');
  });

  it('fails a case whose handler throws when a result was expected, with the log tail', async () => {
    // Prepare
    const bake = resolvedBake({ functions: [functionSpec('hello', [{ name: 'result', expect: { result: { ok: true } } }])] });
    const invoker = new ScriptedInvoker({ hello: { respond: () => failed('Error', 'kaput', 10, 'line from the handler') } });

    // Act
    const error = await rejection(
      validateVersions({ bake, versions: publishedVersions(['hello', '1']) }, { invoker, artefacts: new MemoryArtefactStore() }),
    );

    // Assess
    expect(error.message).toContain('handler failed: Error: kaput');
    expect(error.message).toContain('log tail:\nline from the handler');
  });

  it('fails a case that took longer than its maxDurationMs even when the result is right', async () => {
    // Prepare
    const bake = resolvedBake({
      functions: [functionSpec('hello', [{ name: 'slow', maxDurationMs: 100, expect: { result: { ok: true } } }], { timeout: 1 })],
    });
    const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ ok: true }, 101) } });

    // Act
    const error = await rejection(
      validateVersions({ bake, versions: publishedVersions(['hello', '1']) }, { invoker, artefacts: new MemoryArtefactStore() }),
    );

    // Assess
    expect(error.message).toContain('took 101 ms, limit 100 ms');
    // The invocation deadline is the larger of the case limit and the function timeout.
    expect(invoker.invoked[0]?.timeoutMs).toBe(1000);
  });

  it('reports an init error without running any case, and closes the session', async () => {
    // Prepare
    const bake = resolvedBake();
    const invoker = new ScriptedInvoker({
      hello: { init: { durationMs: 40, error: 'Runtime.HandlerNotFound: no module index' }, respond: () => ok({ ok: true }) },
    });
    const artefacts = new MemoryArtefactStore();

    // Act
    const error = await rejection(validateVersions({ bake, versions: publishedVersions(['hello', '4']) }, { invoker, artefacts }));

    // Assess
    expect(error.message).toContain('hello:4 init failed: Runtime.HandlerNotFound: no module index');
    expect(invoker.invoked).toEqual([]);
    expect(invoker.closed).toEqual(['hello']);
    expect(await artefacts.getJson<ValidationReport>(REPORT_KEY)).toEqual({
      passed: false,
      functions: [
        {
          name: 'hello',
          version: '4',
          passed: false,
          initDurationMs: 40,
          initError: 'Runtime.HandlerNotFound: no module index',
          cases: [],
          selfContained: { checked: false, passed: null, reason: 'not run: the version already failed with a network', cases: [] },
        },
      ],
    });
  });

  it('validates every function before throwing, and stores the report either way', async () => {
    // Prepare
    const bake = resolvedBake({
      functions: [
        functionSpec('first', [{ name: 'a', expect: { result: 1 } }]),
        functionSpec('second', [{ name: 'b', expect: { result: 2 } }]),
      ],
    });
    const invoker = new ScriptedInvoker({ first: { respond: () => ok(0) }, second: { respond: () => ok(2) } });
    const artefacts = new MemoryArtefactStore();

    // Act
    const error = await rejection(
      validateVersions({ bake, versions: publishedVersions(['first', '1'], ['second', '9']) }, { invoker, artefacts }),
    );

    // Assess
    expect(invoker.opened.map((o) => `${o.name}:${o.version}`)).toEqual(['first:1', 'second:9']);
    expect(invoker.closed).toEqual(['first', 'second']);
    expect(error.message).toContain(`report: ${REPORT_KEY}`);
    expect(error.message).toContain('first:1 case "a": $: expected 1, got 0');
    expect(error.message).not.toContain('second:9');
    const stored = await artefacts.getJson<ValidationReport>(REPORT_KEY);
    expect(stored?.passed).toBe(false);
    expect(stored?.functions.map((f) => [f.name, f.passed])).toEqual([
      ['first', false],
      ['second', true],
    ]);
  });

  it('stores the report of a passing validation too', async () => {
    // Prepare
    const bake = resolvedBake();
    const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ ok: true }) } });
    const artefacts = new MemoryArtefactStore();

    // Act
    const report = await validateVersions({ bake, versions: publishedVersions(['hello', '1']) }, { invoker, artefacts });

    // Assess
    expect(await artefacts.getJson(REPORT_KEY)).toEqual(report);
  });

  it('refuses a published function that the spec has no cases for', async () => {
    // Prepare
    const bake = resolvedBake();
    const invoker = new ScriptedInvoker({ stranger: { respond: () => ok(null) } });

    // Act
    const error = await rejection(
      validateVersions({ bake, versions: publishedVersions(['stranger', '1']) }, { invoker, artefacts: new MemoryArtefactStore() }),
    );

    // Assess
    expect(error).toBeInstanceOf(ValidationFailedError);
    expect(error.message).toBe('no validation cases for stranger');
    expect(invoker.opened).toEqual([]);
  });

  describe('the no-network run', () => {
    const spec = () =>
      resolvedBake({
        functions: [
          functionSpec('hello', [
            { name: 'one', event: { n: 1 }, expect: { match: 'exact', result: { ok: true } } },
            { name: 'two', event: { n: 2 }, expect: { match: 'exact', result: { ok: true } } },
          ]),
        ],
      });

    it('runs every case again with no network and passes when they all pass', async () => {
      // Prepare
      const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ ok: true }) } });
      invoker.isolated = { offline: { hello: () => ok({ ok: true }) } };

      // Act
      const report = await validateVersions(
        { bake: spec(), versions: publishedVersions(['hello', '3']) },
        { invoker, artefacts: new MemoryArtefactStore() },
      );

      // Assess
      expect(invoker.opened.map((o) => o.network)).toEqual(['host', 'none']);
      expect(report.functions[0]?.selfContained).toMatchObject({ checked: true, passed: true, reason: null });
      expect(report.functions[0]?.selfContained.cases.map((c) => c.passed)).toEqual([true, true]);
    });

    it('fails with ArtefactNotSelfContainedError when a case fails only without a network', async () => {
      // Prepare
      const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ ok: true }) } });
      invoker.isolated = {
        offline: {
          hello: (event) => ((event as { n: number }).n === 2 ? failed('FetchError', 'getaddrinfo ENOTFOUND') : ok({ ok: true })),
        },
      };
      const artefacts = new MemoryArtefactStore();

      // Act
      const error = await rejection(
        validateVersions({ bake: spec(), versions: publishedVersions(['hello', '3']) }, { invoker, artefacts }),
      );

      // Assess
      expect(error.name).toBe('ArtefactNotSelfContainedError');
      expect(error.message).toContain('hello:3 case "two" fails only without a network: handler failed: FetchError: getaddrinfo ENOTFOUND');
      const stored = await artefacts.getJson<ValidationReport>(REPORT_KEY);
      expect(stored?.passed).toBe(false);
      expect(stored?.functions[0]?.selfContained).toMatchObject({ checked: true, passed: false });
    });

    it('says so in the report when the check cannot run here, and does not fail the bake for it', async () => {
      // Prepare
      const invoker = new ScriptedInvoker({ hello: { respond: () => ok({ ok: true }) } });

      // Act
      const report = await validateVersions(
        { bake: spec(), versions: publishedVersions(['hello', '3']) },
        { invoker, artefacts: new MemoryArtefactStore() },
      );

      // Assess
      expect(report.passed).toBe(true);
      expect(report.functions[0]?.selfContained).toEqual({ checked: false, passed: null, reason: 'scripted: no isolation', cases: [] });
      expect(invoker.opened.map((o) => o.network)).toEqual(['host']);
    });

    it('runs the cases of one function concurrently', async () => {
      // Prepare
      let inFlight = 0;
      let most = 0;
      const invoker = new ScriptedInvoker({
        hello: {
          respond: () => {
            throw new Error('unused');
          },
        },
      });
      invoker.open = async () => ({
        init: { durationMs: 1, error: null },
        invoke: async () => {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((resolve) => setImmediate(resolve));
          inFlight--;
          return ok({ ok: true });
        },
        close: async () => {},
      });

      // Act
      await validateVersions(
        { bake: spec(), versions: publishedVersions(['hello', '3']) },
        { invoker, artefacts: new MemoryArtefactStore() },
      );

      // Assess
      expect(most).toBe(2);
    });
  });

  it('validates many functions concurrently, at most VALIDATION_CONCURRENCY at a time, reporting them in order', async () => {
    // Prepare: 20 functions whose cases each take a few milliseconds; count the sessions open at once.
    const names = Array.from({ length: 20 }, (_, i) => `fn${String(i).padStart(2, '0')}`);
    const bake = resolvedBake({ functions: names.map((n) => functionSpec(n, [{ name: 'one', expect: { result: { n } } }])) });
    const scripted = new ScriptedInvoker(Object.fromEntries(names.map((n) => [n, { respond: () => ok({ n }) }])));
    let open = 0;
    let most = 0;
    const invoker = {
      isolation: () => scripted.isolation(),
      open: async (target: Parameters<ScriptedInvoker['open']>[0]): Promise<InvokeSession> => {
        const session = await scripted.open(target);
        most = Math.max(most, ++open);
        return {
          ...session,
          invoke: async (event, timeoutMs) => {
            await new Promise((resolve) => setTimeout(resolve, 5));
            return session.invoke(event, timeoutMs);
          },
          close: async () => {
            open--;
            await session.close();
          },
        };
      },
    };
    const versions = publishedVersions(...names.map((n, i): [string, string] => [n, String(i + 1)]));

    // Act
    const report = await validateVersions({ bake, versions }, { invoker, artefacts: new MemoryArtefactStore() });

    // Assess
    expect(report.passed).toBe(true);
    expect(report.functions.map((f) => `${f.name}:${f.version}`)).toEqual(names.map((n, i) => `${n}:${i + 1}`));
    expect(most).toBe(VALIDATION_CONCURRENCY);
    expect(scripted.closed.sort()).toEqual([...names].sort());
  });
});
