import { createHmac, timingSafeEqual } from 'node:crypto';
import type http from 'node:http';
import { approvalBlocks, decidedBlocks } from '../adapters/aws/slack.ts';
import type { LocalDeps } from '../compose/local.ts';
import { decideApproval } from '../cores/approval.ts';
import { drift } from '../cores/drift.ts';
import { describeEntry } from '../cores/history.ts';
import { releasedVersions, rollback } from '../cores/rollback.ts';
import { status } from '../cores/status.ts';
import { BakeryError } from '../errors.ts';
import type { ApprovalRecord } from '../ports/approval.ts';
import type { DriftReport } from '../ports/notifier.ts';
import type { FunctionValidationReport } from '../state.ts';
import type { ExecutionRecord, ServeExecutions } from './executions.ts';
import type { Scheduler } from './schedule.ts';

export interface DashboardOptions {
  token: string;
  user: string;
  deps: LocalDeps;
  executions: ServeExecutions;
  scheduler: Scheduler;
  bucket: string;
  prefix: string;
}

/** Said on every decision made here, so the ledger shows where it came from. */
export const DASHBOARD_REASON = 'decided from the bakery serve dashboard';
const COOKIE = 'bakery_serve';
const MAX_FORM_BYTES = 16 * 1024;

const same = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

const esc = (text: unknown): string =>
  String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);

type Block = Record<string, unknown>;
type TextObject = { type: string; text: string };

const EMOJI: Record<string, string> = { white_check_mark: '✅', x: '❌', warning: '⚠️' };

/**
 * Slack mrkdwn as HTML: the subset the approval blocks use (*bold*, `code`, `<!date^…|fallback>`,
 * `<@user>`, `:emoji:`, line breaks). Escaped first, so nothing in a record becomes markup.
 */
export function mrkdwn(text: string): string {
  return esc(text)
    .replace(/&lt;!date\^\d+\^[^|]*\|([^&]*)&gt;/g, '$1')
    .replace(/&lt;@([A-Za-z0-9._-]+)&gt;/g, '@$1')
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*([^*\n]+)\*/g, '<strong>$1</strong>')
    .replace(/:([a-z_]+):/g, (m, name: string) => EMOJI[name] ?? m)
    .replace(/\n/g, '<br>');
}

const textOf = (t: TextObject | undefined): string => (t ? (t.type === 'mrkdwn' ? mrkdwn(t.text) : esc(t.text)) : '');

/**
 * Render the Block Kit blocks of the Slack approval message as HTML: the card shows exactly
 * what Slack shows. Its buttons become forms posting to the same decide-once core.
 */
export function renderBlocks(blocks: Block[], actions: (block: Block) => string): string {
  return blocks
    .map((block) => {
      switch (block.type) {
        case 'header':
          return `<h3 class="card-header">${textOf(block.text as TextObject)}</h3>`;
        case 'section': {
          const fields = (block.fields as TextObject[] | undefined) ?? [];
          const text = block.text ? `<p>${textOf(block.text as TextObject)}</p>` : '';
          return `<div class="section">${text}${fields.length ? `<div class="fields">${fields.map((f) => `<div>${textOf(f)}</div>`).join('')}</div>` : ''}</div>`;
        }
        case 'context':
          return `<p class="context">${((block.elements as TextObject[]) ?? []).map(textOf).join(' ')}</p>`;
        case 'actions':
          return actions(block);
        default:
          return '';
      }
    })
    .join('\n');
}

const duration = (from: string, to: string | null): string => {
  const ms = (to ? Date.parse(to) : Date.now()) - Date.parse(from);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
};

interface PageData {
  executions: ExecutionRecord[];
  approvals: Map<string, ApprovalRecord>;
  functions: Awaited<ReturnType<typeof status>>['functions'];
  drift: DriftReport | null;
  ledger: Awaited<ReturnType<LocalDeps['ledger']['list']>>;
}

function executionView(e: ExecutionRecord, approval: ApprovalRecord | undefined, csrf: string): string {
  const output = (e.output ?? {}) as {
    validation?: { functions: FunctionValidationReport[] };
    image?: {
      bakeKey: string;
      cacheHit: boolean;
      buildRecord?: { recipe: string; documents: Array<{ path: string }>; parameters: Record<string, string> };
    };
    release?: { functions: Array<{ name: string; alias: string; from: string | null; to: string }> };
  };
  const waiting = approval && !approval.decision;
  const label = e.status === 'running' && waiting ? 'waiting for approval' : e.status === 'succeeded' ? 'released' : e.status;
  const states = e.states
    .map(
      (s) =>
        `<tr class="state-${s.status}"><td>${esc(s.name)}</td><td>${esc(s.status)}${s.retries ? ` (${s.retries} retries)` : ''}</td><td>${duration(s.enteredAt, s.exitedAt)}</td><td>${s.error ? `${esc(s.error)}: ${esc(s.cause ?? '')}` : ''}</td></tr>`,
    )
    .join('');
  const build = output.image?.buildRecord
    ? `<p><strong>Build</strong> ${esc(output.image.buildRecord.recipe)}, bake key <code>${esc(output.image.bakeKey.slice(0, 12))}…</code>${output.image.cacheHit ? ' (cache hit)' : ''}; steps: ${output.image.buildRecord.documents.map((d) => `<code>${esc(d.path)}</code>`).join(', ')}</p>`
    : '';
  const steps = (e.build ?? [])
    .map(
      (b) =>
        `<tr class="step-${esc(b.status)}"><td><code>${esc(b.document)}</code></td><td>${esc(b.phase)}</td><td>${esc(b.step)}</td><td>${esc(b.status)}${b.attempt > 1 ? ` (attempt ${b.attempt})` : ''}</td><td>${b.durationMs === null ? '' : `${(b.durationMs / 1000).toFixed(1)} s`}</td><td>${b.error ? esc(b.error) : ''}</td></tr>`,
    )
    .join('');
  const buildSteps = steps
    ? `<table class="build-steps"><thead><tr><th>Document</th><th>Phase</th><th>Step</th><th>Status</th><th>Duration</th><th>Error</th></tr></thead><tbody>${steps}</tbody></table>`
    : '';
  const cases = (output.validation?.functions ?? [])
    .flatMap((f) =>
      f.cases.map(
        (c) =>
          `<li class="${c.passed ? 'pass' : 'fail'}">${c.passed ? '✅' : '❌'} ${esc(f.name)}: ${esc(c.name)} (${c.durationMs} ms)${c.failure ? `<pre>${esc(c.failure)}</pre>` : ''}</li>`,
      ),
    )
    .join('');
  const released = output.release?.functions.length
    ? `<p class="released"><strong>Released</strong> ${output.release.functions.map((m) => `${esc(m.name)}:${esc(m.alias)} ${esc(m.from ?? '(none)')} → ${esc(m.to)}`).join(', ')}</p>`
    : '';
  const failure = e.failure
    ? `<p class="failure"><strong>Failed in ${esc(e.failure.state)}</strong>: <code>${esc(e.failure.error)}</code> ${esc(e.failure.cause)}</p>`
    : '';
  const card = approval
    ? `<div class="card" data-approval="${esc(approval.id)}">${renderBlocks(
        (approval.decision ? decidedBlocks(approval) : approvalBlocks(approval)) as unknown as Block[],
        () =>
          `<div class="actions">${(['approve', 'reject'] as const)
            .map(
              (what) =>
                `<form method="post" action="/approvals/${esc(approval.id)}/${what}"><input type="hidden" name="csrf" value="${csrf}"><button type="submit" class="${what}">${what === 'approve' ? 'Approve' : 'Reject'}</button></form>`,
            )
            .join('')}</div>`,
      )}</div>`
    : '';
  const source = e.request.source.type === 's3' ? `s3://${e.request.source.bucket}/${e.request.source.key}` : e.request.source.path;
  return `<article class="execution status-${esc(e.status)}" id="${esc(e.name)}">
<h3>${esc(e.name)} <span class="badge">${esc(label)}</span></h3>
<p class="meta">${esc(e.request.trigger.type)} · ${esc(source)} · started ${esc(e.startedAt)}${e.endedAt ? ` · took ${duration(e.startedAt, e.endedAt)}` : ''}${e.restarts ? ` · resumed ${e.restarts}×` : ''}</p>
${card}${failure}${released}${build}${buildSteps}
<table class="states"><thead><tr><th>State</th><th>Status</th><th>Duration</th><th>Error</th></tr></thead><tbody>${states}</tbody></table>
${cases ? `<ul class="cases">${cases}</ul>` : ''}
</article>`;
}

function functionsView(data: PageData, csrf: string): string {
  if (!data.functions.length) return '<p>Nothing released yet.</p>';
  const rows = data.functions
    .map((f) => {
      const d = data.drift?.functions.find((x) => x.name === f.name && x.alias === f.alias);
      const driftText = !d ? 'not checked' : d.differences.length ? `drifted (${d.differences.length})` : 'in sync';
      return `<tr><td>${esc(f.name)}:${esc(f.alias)}</td><td>${esc(f.version ?? '-')}</td><td>${f.layer ? `${esc(f.layer.arn)}${f.layer.version === null ? '' : ` (v${f.layer.version})`}` : '-'}</td><td><code>${esc(f.layer?.sha256?.slice(0, 16) ?? '-')}</code></td><td>${esc(f.bakeId ?? '-')}</td><td>${esc(driftText)}</td></tr>`;
    })
    .join('');
  const history = data.functions
    .map((f) => {
      const earlier = releasedVersions(data.ledger, f.name, f.alias).filter((r) => r.version !== f.version);
      if (!earlier.length) return '';
      return `<p>${esc(f.name)}:${esc(f.alias)} earlier releases: ${earlier
        .map(
          (r) =>
            `<form method="post" action="/rollback" class="inline"><input type="hidden" name="csrf" value="${csrf}"><input type="hidden" name="name" value="${esc(f.name)}"><input type="hidden" name="alias" value="${esc(f.alias)}"><input type="hidden" name="to" value="${esc(r.version)}"><button type="submit" class="rollback">Roll back to ${esc(r.version)}</button> <small>(${esc(r.bakeId)})</small></form>`,
        )
        .join(' ')}</p>`;
    })
    .join('');
  return `<table><thead><tr><th>Function</th><th>Version</th><th>Layer</th><th>Layer SHA-256</th><th>Released by bake</th><th>Drift</th></tr></thead><tbody>${rows}</tbody></table>${history}`;
}

function live(data: PageData, options: DashboardOptions, csrf: string): string {
  const ledger = [...data.ledger]
    .reverse()
    .slice(0, 30)
    .map((entry) => `<li>${esc(describeEntry(entry))}</li>`)
    .join('');
  const schedules = Object.entries(options.scheduler.expressions())
    .map(([name, expression]) => `${esc(name)} <code>${esc(expression)}</code>`)
    .join(', ');
  return `<section><h2>Functions</h2>${functionsView(data, csrf)}</section>
<section><h2>Executions</h2>${data.executions.map((e) => executionView(e, data.approvals.get(e.name), csrf)).join('\n') || `<p>No bakes yet. Upload a source zip to <code>s3://${esc(options.bucket)}/${esc(options.prefix)}</code>.</p>`}</section>
<section><h2>History</h2><ul class="history">${ledger || '<li>nothing yet</li>'}</ul><p class="meta">schedules: ${schedules || 'off'}</p></section>`;
}

const STYLE = `body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d1c1d}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
.card{border:1px solid #ccc;border-left:4px solid #36c5f0;border-radius:6px;padding:.5rem 1rem;margin:.5rem 0;max-width:48rem}.fields{display:grid;grid-template-columns:1fr 1fr;gap:.5rem}
.context,.meta{color:#616061;font-size:12px}.badge{font-size:12px;background:#eee;border-radius:4px;padding:.1rem .4rem}.approve{background:#007a5a;color:#fff}.reject{background:#e01e5a;color:#fff}
button{border:0;border-radius:4px;padding:.4rem .9rem;cursor:pointer}.actions form,form.inline{display:inline-block;margin-right:.5rem}.failure{color:#b00}.state-failed{background:#fee}pre{white-space:pre-wrap;background:#f6f6f6;padding:.25rem}`;

// Polls the server for the live part of the page: no framework, nothing from the internet.
const SCRIPT = `setInterval(async()=>{try{const r=await fetch('/live',{credentials:'same-origin'});if(r.ok)document.getElementById('live').innerHTML=await r.text();}catch{}},1500);`;

function page(body: string, user: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bakery serve</title><link rel="stylesheet" href="/assets/dashboard.css"></head>
<body><header><h1>bakery serve</h1><p class="meta">deciding as <strong>${esc(user)}</strong></p></header><main id="live">${body}</main><script src="/assets/dashboard.js"></script></body></html>`;
}

function reply(res: http.ServerResponse, status: number, type: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'self'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
    ...headers,
  });
  res.end(body);
}

const json = (res: http.ServerResponse, status: number, body: unknown) =>
  reply(res, status, 'application/json; charset=utf-8', JSON.stringify(body));

function cookieToken(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return value.join('=');
  }
  return undefined;
}

async function readForm(req: http.IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += String(chunk);
    if (body.length > MAX_FORM_BYTES) throw new BakeryError('form too large');
  }
  return new URLSearchParams(body);
}

/**
 * The dashboard, behind the token of serve.json: `/?token=…` once sets an HttpOnly,
 * SameSite=Strict cookie and redirects to `/`; every other page needs the cookie (scripts
 * send the token as a bearer token to `/api/*`). A POST needs the page's CSRF token (an
 * HMAC of the session token) and an Origin (or Referer) of this very server. Decisions go
 * through the decide-once approval core as the configured user; rollbacks through the
 * rollback core.
 */
export function dashboardListener(options: DashboardOptions): http.RequestListener {
  const { deps } = options;
  const csrf = createHmac('sha256', options.token).update('bakery-serve-csrf').digest('hex');

  async function data(): Promise<PageData> {
    const executions = await options.executions.list();
    const approvals = new Map<string, ApprovalRecord>();
    for (const e of executions) {
      const approval = await deps.approvals.findByBake(e.name);
      if (approval) approvals.set(e.name, approval);
    }
    const [{ functions }, report, ledger] = await Promise.all([status(deps), drift(deps).catch(() => null), deps.ledger.list()]);
    return { executions, approvals, functions, drift: report, ledger };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://local');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/assets/dashboard.css') return reply(res, 200, 'text/css; charset=utf-8', STYLE);
    if (method === 'GET' && url.pathname === '/assets/dashboard.js') return reply(res, 200, 'text/javascript; charset=utf-8', SCRIPT);

    const queryToken = url.searchParams.get('token');
    if (method === 'GET' && url.pathname === '/' && queryToken !== null) {
      if (!same(queryToken, options.token)) return reply(res, 401, 'text/plain; charset=utf-8', 'wrong token: use the one in serve.json');
      return reply(res, 303, 'text/plain; charset=utf-8', 'signed in', {
        location: '/',
        'set-cookie': `${COOKIE}=${options.token}; HttpOnly; SameSite=Strict; Path=/`,
      });
    }
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (url.pathname.startsWith('/api/')) {
      if (!bearer || !same(bearer, options.token)) return json(res, 401, { error: 'send the token from serve.json as a bearer token' });
      const schedule = /^\/api\/schedules\/(patch-rebuild|drift-check)$/.exec(url.pathname)?.[1] as
        | 'patch-rebuild'
        | 'drift-check'
        | undefined;
      if (method === 'POST' && schedule) {
        try {
          return json(res, 200, { firing: await options.scheduler.fire(schedule) });
        } catch (error) {
          return json(res, 500, { error: (error as Error).message });
        }
      }
      if (method === 'GET' && url.pathname === '/api/executions') return json(res, 200, { executions: await options.executions.list() });
      return json(res, 404, { error: 'not found' });
    }

    const session = cookieToken(req);
    if (!session || !same(session, options.token)) {
      return reply(
        res,
        401,
        'text/plain; charset=utf-8',
        'open the dashboard with the URL bakery serve printed (…/?token=…; the token is in serve.json)',
      );
    }
    if (method === 'GET' && url.pathname === '/')
      return reply(res, 200, 'text/html; charset=utf-8', page(live(await data(), options, csrf), options.user));
    if (method === 'GET' && url.pathname === '/live') return reply(res, 200, 'text/html; charset=utf-8', live(await data(), options, csrf));
    if (method !== 'POST') return reply(res, 404, 'text/plain; charset=utf-8', 'not found');

    // A form post: the same origin, and the page's CSRF token.
    const origin = req.headers.origin ?? (req.headers.referer ? new URL(req.headers.referer).origin : undefined);
    if (origin !== `http://${req.headers.host}`) return reply(res, 403, 'text/plain; charset=utf-8', 'cross-origin request refused');
    const form = await readForm(req);
    const sent = form.get('csrf') ?? '';
    if (!same(sent, csrf)) return reply(res, 403, 'text/plain; charset=utf-8', 'missing or wrong CSRF token: reload the dashboard');
    const decision = /^\/approvals\/([A-Za-z0-9_-]+)\/(approve|reject)$/.exec(url.pathname);
    try {
      if (decision) {
        await decideApproval(
          {
            ref: decision[1] as string,
            outcome: decision[2] === 'approve' ? 'approved' : 'rejected',
            by: options.user,
            reason: DASHBOARD_REASON,
          },
          deps,
        );
      } else if (url.pathname === '/rollback') {
        await rollback({ name: form.get('name') ?? '', alias: form.get('alias') ?? '', to: form.get('to') ?? '', by: options.user }, deps);
      } else return reply(res, 404, 'text/plain; charset=utf-8', 'not found');
    } catch (error) {
      const status = error instanceof BakeryError ? 409 : 500;
      return reply(
        res,
        status,
        'text/html; charset=utf-8',
        page(
          `<p class="failure">${esc((error as Error).name)}: ${esc((error as Error).message)}</p><p><a href="/">back</a></p>`,
          options.user,
        ),
      );
    }
    return reply(res, 303, 'text/plain; charset=utf-8', 'done', { location: '/' });
  }

  return (req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) reply(res, 500, 'text/plain; charset=utf-8', `internal error: ${(error as Error).message}`);
    });
  };
}
