import { clearCaches } from '@aws-lambda-powertools/parameters';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { type FetchFunction, LogLevel } from '@slack/web-api';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SlackNotifier } from '../../../src/adapters/aws/slack.ts';
import type { DriftReport } from '../../../src/ports/notifier.ts';

const ssm = mockClient(SSMClient);
const PARAM = '/bakery/slack/bot-token';

describe('SlackNotifier.driftFound', () => {
  beforeEach(() => {
    ssm.on(GetParameterCommand, { Name: PARAM }).resolves({ Parameter: { Name: PARAM, Type: 'SecureString', Value: 'xoxb-test-token' } });
  });
  afterEach(() => {
    ssm.reset();
    clearCaches();
  });
  afterAll(() => {
    ssm.restore();
  });

  it('posts each drifted alias with what differs, escaped, to the channel', async () => {
    // Prepare
    const posted: URLSearchParams[] = [];
    const fetch: FetchFunction = async (_url, init) => {
      posted.push(new URLSearchParams(String(init?.body ?? '')));
      return new Response(JSON.stringify({ ok: true, ts: '1.0' }), { status: 200, headers: { 'content-type': 'application/json' } });
    };
    const notifier = new SlackNotifier({
      channel: 'C0RELEASES',
      tokenParameter: PARAM,
      clientOptions: { fetch, retryConfig: { retries: 0 }, logLevel: LogLevel.ERROR },
    });
    const report: DriftReport = {
      checkedAt: '2026-11-22T07:30:00.000Z',
      drifted: true,
      functions: [
        { name: 'baked-ok', alias: 'live', bakeId: 'b0', expectedVersion: '1', liveVersion: '1', differences: [] },
        {
          name: 'baked-hello',
          alias: 'live',
          bakeId: 'b1',
          expectedVersion: '5',
          liveVersion: '6',
          differences: [
            { field: 'alias.version', expected: '5', live: '6' },
            { field: 'environment.names', expected: ['A'], live: ['A', '<B>'] },
          ],
        },
      ],
    };

    // Act
    await notifier.driftFound(report);

    // Assess
    expect(posted).toHaveLength(1);
    expect(posted[0]?.get('channel')).toBe('C0RELEASES');
    const text = posted[0]?.get('text') ?? '';
    expect(text).toContain(':warning: Drift');
    expect(text).toContain('*baked-hello* `live` (bake b1): alias.version expected `"5"`, live `"6"`');
    expect(text).toContain('environment.names expected `["A"]`, live `["A","&lt;B&gt;"]`');
    expect(text).not.toContain('baked-ok');
  });
});
