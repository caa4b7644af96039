import { createHmac } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../src/local/asl.ts';
import { DASHBOARD_REASON, mrkdwn } from '../../src/serve/dashboard.ts';
import { type ServeHandle, startServe } from '../../src/serve/serve.ts';
import { zipTree } from '../../src/zip/deterministic.ts';
import { approvalRequested, makeWorkspace, type Workspace } from '../helpers/local-bake.ts';
import { findChromium, toolMissing } from '../helpers/tools.ts';

/** Screenshots of the browser test land here (git-ignored), for a human to look at. */
const ARTEFACTS = path.join(PROJECT_ROOT, 'test-artifacts');
const SIGNING_SECRET = 'test-signing-secret';
const chromium = await findChromium();

describe('bakery serve: the dashboard', () => {
  let ws: Workspace;
  let serve: ServeHandle;
  let origin: string;

  beforeEach(async () => {
    ws = await makeWorkspace();
    serve = await startServe({
      home: ws.home,
      deps: ws.deps,
      user: 'dana',
      runOptions: { retryIntervalMs: 0, waitMs: 0 },
      slack: { replies: { tell: async () => {} }, signingSecret: async () => SIGNING_SECRET },
    });
    origin = new URL(serve.info.dashboard.url).origin;
  });

  afterEach(async () => {
    await serve.close();
    await ws.cleanup();
  });

  /** Upload the example bundle with the SDK and resolve with its approval once the bake waits. */
  async function uploadAndWait() {
    const bundle = await readFile((await zipTree(path.dirname(ws.specFile), path.join(ws.dir, 'bundle.zip'))).file);
    const asked = approvalRequested(ws.deps);
    const s3 = new S3Client({
      endpoint: serve.info.s3.endpoint,
      forcePathStyle: true,
      region: serve.info.s3.region,
      credentials: { accessKeyId: serve.info.s3.accessKeyId, secretAccessKey: serve.info.s3.secretAccessKey },
    });
    await s3.send(
      new PutObjectCommand({
        Bucket: 'bakery-source',
        Key: 'bakes/hello.zip',
        Body: Readable.from([bundle]),
        ContentLength: bundle.length,
      }),
    );
    return asked;
  }

  async function session(): Promise<string> {
    const signIn = await fetch(`${serve.info.dashboard.url}?token=${serve.info.dashboard.token}`, { redirect: 'manual' });
    expect(signIn.status).toBe(303);
    const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(signIn.headers.get('set-cookie')).toMatch(/HttpOnly; SameSite=Strict/);
    return cookie;
  }

  it('refuses pages without the token, and decisions without the CSRF token or from another origin; nothing is decided', async () => {
    const approval = await uploadAndWait();
    expect((await fetch(serve.info.dashboard.url)).status).toBe(401);
    expect((await fetch(`${serve.info.dashboard.url}?token=wrong`)).status).toBe(401);
    const cookie = await session();
    const page = await fetch(serve.info.dashboard.url, { headers: { cookie } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`Release approval: ${approval.bakeId}`);
    const csrf = /name="csrf" value="([0-9a-f]+)"/.exec(html)?.[1] ?? '';
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${origin}/approvals/${approval.id}/approve`, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
        body,
      });
    expect((await post({ cookie, origin }, '')).status).toBe(403);
    expect((await post({ cookie, origin }, 'csrf=0000')).status).toBe(403);
    expect((await post({ cookie, origin: 'http://evil.example' }, `csrf=${csrf}`)).status).toBe(403);
    expect((await post({ cookie }, `csrf=${csrf}`)).status).toBe(403);
    expect((await post({ origin }, `csrf=${csrf}`)).status).toBe(401);
    expect((await ws.deps.approvals.get(approval.id))?.decision).toBeNull();

    // The Slack endpoint shares the port and checks signatures: an unsigned click is refused.
    const click = await fetch(`${origin}/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'payload=%7B%7D',
    });
    expect(click.status).toBe(401);
    expect((await ws.deps.approvals.get(approval.id))?.decision).toBeNull();

    // With both, the decision is made once, as the configured user, from the dashboard.
    const ok = await post({ cookie, origin }, `csrf=${csrf}`);
    expect(ok.status).toBe(303);
    expect((await ws.deps.approvals.get(approval.id))?.decision).toMatchObject({
      outcome: 'approved',
      by: 'dana',
      reason: DASHBOARD_REASON,
    });
    expect((await post({ cookie, origin }, `csrf=${csrf}`)).status).toBe(409);
    await serve.executions.settled();
  });

  it("shows each execution's image build steps as the builder reports them, with their status and duration", async () => {
    // Act
    const approval = await uploadAndWait();
    const cookie = await session();
    const live = await (await fetch(`${origin}/live`, { headers: { cookie } })).text();
    const record = await serve.executions.get(approval.bakeId);

    // Assess
    expect(record?.build?.map((b) => `${b.document} ${b.phase} ${b.step} ${b.status} ${b.durationMs}`)).toEqual([
      'components/node22-runtime.yml build FakeStep succeeded 1200',
    ]);
    const table = /<table class="build-steps">.*?<\/table>/s.exec(live)?.[0] ?? '';
    expect(table).toContain('<td>FakeStep</td><td>succeeded</td><td>1.2 s</td>');
  });

  it('takes a signed Slack click on the same port, through the decide-once core', async () => {
    const approval = await uploadAndWait();
    const payload = JSON.stringify({
      type: 'block_actions',
      user: { id: 'U1', username: 'sam' },
      actions: [{ action_id: 'bakery_approve', value: approval.id }],
      response_url: 'http://127.0.0.1:9/never',
    });
    const body = `payload=${encodeURIComponent(payload)}`;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = `v0=${createHmac('sha256', SIGNING_SECRET).update(`v0:${timestamp}:${body}`).digest('hex')}`;
    const click = await fetch(`${origin}/slack/interactions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': timestamp,
        'x-slack-signature': signature,
      },
      body,
    });
    expect(click.status).toBe(200);
    await serve.executions.settled();
    expect((await ws.deps.approvals.get(approval.id))?.decision?.outcome).toBe('approved');
  });

  it('renders Slack mrkdwn without letting record text become markup', () => {
    expect(mrkdwn('*bold* `code` <!date^1^{date}|2026-12-01> :white_check_mark: <script>')).toBe(
      '<strong>bold</strong> <code>code</code> 2026-12-01 ✅ &lt;script&gt;',
    );
  });

  it.skipIf(toolMissing('chromium', chromium))(
    'in a real browser: open with the token, see the waiting bake and its approval card, click Approve, see the release',
    async () => {
      const { chromium: browserType } = await import('playwright-core');
      const approval = await uploadAndWait();
      const browser = await browserType.launch({
        executablePath: chromium as string,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
      try {
        const page = await browser.newPage();
        await page.goto(`${serve.info.dashboard.url}?token=${serve.info.dashboard.token}`);
        expect(new URL(page.url()).search).toBe('');
        const card = page.locator(`[data-approval="${approval.id}"]`);
        await card.waitFor();
        expect(await card.textContent()).toContain(`Release approval: ${approval.bakeId}`);
        expect(await card.textContent()).toContain('Layer SHA-256');
        expect(await page.locator(`#${approval.bakeId} .badge`).textContent()).toBe('waiting for approval');
        await mkdir(ARTEFACTS, { recursive: true });
        await page.screenshot({ path: path.join(ARTEFACTS, 'serve-dashboard-waiting.png'), fullPage: true });

        await card.locator('button.approve').click();
        await page.locator(`#${approval.bakeId} .badge`, { hasText: 'released' }).waitFor({ timeout: 60_000 });
        expect(await page.locator(`#${approval.bakeId} .released`).textContent()).toContain('hello:live (none) → 1');
        await page.screenshot({ path: path.join(ARTEFACTS, 'serve-dashboard-released.png'), fullPage: true });
      } finally {
        await browser.close();
      }
      expect((await ws.deps.functions.getAlias('hello', 'live'))?.version).toBe('1');
      expect((await ws.deps.approvals.get(approval.id))?.decision).toMatchObject({ by: 'dana', reason: DASHBOARD_REASON });
    },
    120_000,
  );
});
