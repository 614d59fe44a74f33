/**
 * The dashboard's web app (preact + htm, bundled by esbuild): the dispatch list, one dispatch
 * as a live graph with its node panel, cancel dialogs and reports, and the audit timeline.
 *
 * Live data arrives over one SSE stream per page from the server's shared poll loop; the page
 * itself never polls. Every control has an accessible name; graph nodes carry
 * `data-node-id` (the path, `"3"` or `"5/2"`) and `data-status`.
 *
 * @module
 */
import { render } from 'preact';
import { html } from 'htm/preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type {
  Capabilities,
  CancelAcceptedView,
  CancelAuditEntry,
  CancelManyResult,
  CancelProgressView,
  CancelReportView,
  DispatchHeader,
  DispatchRow,
  DispatchUpdate,
  NodeStatusName,
  NodeView,
  OutputPreview,
  RedispatchPlanView,
  StatusCounts,
} from '../shared/api.ts';
import { DISPATCH_STATUSES, NODE_STATUSES } from '../shared/api.ts';
import { childrenOf, countPaths, downstream, LAYOUT_RESTARTED, layoutGraph, NODE_H, NODE_W, restartLayoutEngine, structureKey, visibleNodes, type Box, type Layout } from './graph.ts';

/**
 * A layout still unanswered after this long is reported, with a restart. 1,000 nodes lay out in
 * about 1.5 s on a quiet 2-core machine and 2.5 s beside three busy processes (3 Dec 2026); a
 * notice that comes early only says so, and goes when the layout arrives.
 */
const SLOW_LAYOUT_MS = 15_000;

/** How often the page asks again for a server that did not answer its first request. */
const CONNECT_RETRY_MS = 2_000;

// ---------- small helpers ----------

const STATUS_LABEL: Record<NodeStatusName, string> = {
  NEW_OBJECT: 'not started',
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
};

function clock(iso: string | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })} ${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function duration(from: string | undefined, to: string | undefined, now: number): string {
  if (!from) return '—';
  const ms = (to ? Date.parse(to) : now) - Date.parse(from);
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return m < 60 ? `${m} m ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')} s` : `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} m`;
}

async function api<T>(path: string, init?: { method: 'POST'; body: unknown }): Promise<T> {
  const response = await fetch(path, init ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) } : {});
  const payload = (await response.json()) as T & { message?: string };
  if (!response.ok) throw new Error(payload.message ?? `HTTP ${response.status}`);
  return payload;
}

function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

function useRoute(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = (): void => setHash(location.hash);
    addEventListener('hashchange', onChange);
    // Effects run after the first paint: a hash that changed between the first render and now
    // fired its hashchange before anyone listened (a test's goto right after the page loaded
    // showed the list instead of the dispatch it asked for), so read it once more.
    onChange();
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return hash;
}

function Counts({ counts }: { counts: StatusCounts | undefined }) {
  if (!counts) return html`<span class="muted">…</span>`;
  return html`<span class="counts">${NODE_STATUSES.filter((s) => counts[s]).map(
    (s) => html`<span class="count" data-status=${s} title=${STATUS_LABEL[s]}><i class="dot"></i>${counts[s]} ${STATUS_LABEL[s]}</span>`,
  )}</span>`;
}

function StatusPill({ status }: { status: string }) {
  return html`<span class="pill" data-status=${status}>${status === 'NEW_OBJECT' ? 'NOT STARTED' : status}</span>`;
}

// ---------- the dispatch list ----------

function ListPage({ capabilities }: { capabilities: Capabilities }) {
  const [rows, setRows] = useState<DispatchRow[] | undefined>(undefined);
  const [failure, setFailure] = useState<string | undefined>(undefined);
  const [lattice, setLattice] = useState('');
  const [status, setStatus] = useState('');
  const [bulk, setBulk] = useState(false);
  const [results, setResults] = useState<CancelManyResult | undefined>(undefined);
  const now = useNow();
  useEffect(() => {
    const source = new EventSource('/api/events/list');
    source.addEventListener('list', (e) => {
      setRows(JSON.parse((e as MessageEvent<string>).data) as DispatchRow[]);
      setFailure(undefined);
    });
    source.addEventListener('failure', (e) => setFailure((JSON.parse((e as MessageEvent<string>).data) as { message: string }).message));
    return () => source.close();
  }, []);
  const lattices = useMemo(() => [...new Set((rows ?? []).map((r) => r.lattice))].sort(), [rows]);
  const shown = (rows ?? []).filter((r) => (!lattice || r.lattice === lattice) && (!status || r.status === status));
  const cancellable = shown.filter((r) => r.status === 'RUNNING');
  return html`<main class="page">
    <header class="bar"><h1>Dispatches</h1><span class="muted">${rows ? `${shown.length} of ${rows.length} newest` : 'loading…'} · live</span></header>
    ${failure && html`<p class="banner" role="alert">Reading dispatches failed: ${failure}</p>`}
    <div class="filters" role="search">
      <label>Lattice <select value=${lattice} onChange=${(e: Event) => setLattice((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${lattices.map((l) => html`<option value=${l}>${l}</option>`)}
      </select></label>
      <label>Status <select value=${status} onChange=${(e: Event) => setStatus((e.target as HTMLSelectElement).value)}>
        <option value="">all</option>${DISPATCH_STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <button class="danger" disabled=${cancellable.length === 0} onClick=${() => setBulk(true)}>Cancel matching dispatches (${cancellable.length})</button>
    </div>
    <table class="list">
      <thead><tr><th>Dispatch</th><th>Lattice</th><th>Status</th><th>Started</th><th>Duration</th><th>Nodes</th></tr></thead>
      <tbody>${shown.map(
        (r) => html`<tr data-dispatch-id=${r.dispatchId} data-status=${r.status}>
          <td><a href=${`#/dispatch/${r.dispatchId}`} title=${r.dispatchId}><code>${r.dispatchId.slice(0, 8)}</code></a></td>
          <td>${r.lattice}</td><td><${StatusPill} status=${r.status} /></td>
          <td>${clock(r.startedAt)}</td><td>${duration(r.startedAt, r.endedAt, now)}</td>
          <td><span class="muted">${r.nodeCount} ·</span> <${Counts} counts=${r.counts} /></td>
        </tr>`,
      )}</tbody>
    </table>
    ${rows && shown.length === 0 && html`<p class="muted">No dispatch matches.</p>`}
    ${results && html`<section class="card" aria-label="Cancel results"><h2>Cancel results</h2>${results.results.map(
      (r) => html`<div data-dispatch-id=${r.dispatchId}><a href=${`#/dispatch/${r.dispatchId}`}><code>${r.dispatchId.slice(0, 8)}</code></a> ${'report' in r ? html`<${Report} report=${r.report} />` : 'accepted' in r ? html`accepted as request <code>${r.accepted.requestId.slice(0, 8)}</code>: its progress is on the dispatch’s page` : 'skipped' in r ? html`skipped: ${r.skipped}` : html`<span class="error">${r.error}</span>`}</div>`,
    )}</section>`}
    ${bulk && html`<${CancelDialog}
      title=${`Cancel ${cancellable.length} matching dispatch${cancellable.length === 1 ? '' : 'es'}`}
      summary=${bulkSummary(cancellable, lattice, status)}
      capabilities=${capabilities}
      onClose=${() => setBulk(false)}
      onConfirm=${async (reason: string, force: boolean) => {
        setResults(await api<CancelManyResult>('/api/cancel-many', { method: 'POST', body: { dispatchIds: cancellable.map((r) => r.dispatchId), reason, force } }));
      }}
    />`}
  </main>`;
}

function bulkSummary(rows: readonly DispatchRow[], lattice: string, status: string): string {
  const running = rows.reduce((n, r) => n + (r.counts?.RUNNING ?? 0), 0);
  const waiting = rows.reduce((n, r) => n + (r.counts?.NEW_OBJECT ?? 0), 0);
  const filter = [lattice && `lattice ${lattice}`, status && `status ${status}`].filter(Boolean).join(', ') || 'no filter';
  return `Matching ${filter}: ${rows.length} running dispatch${rows.length === 1 ? '' : 'es'}. This stops ${running} running and ${waiting} not-started tasks (as last read).`;
}

// ---------- cancel dialog and report ----------

function CancelDialog(props: {
  title: string;
  summary: string;
  capabilities: Capabilities;
  disabled?: boolean;
  onClose: () => void;
  onConfirm: (reason: string, force: boolean) => Promise<void>;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const [reason, setReason] = useState('');
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    ref.current?.showModal();
  }, []);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (reason.trim() === '') return setError('A reason is required.');
    setBusy(true);
    try {
      await props.onConfirm(reason.trim(), force);
      ref.current?.close();
      props.onClose();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return html`<dialog ref=${ref} class="dialog" aria-labelledby="cancel-title" onClose=${props.onClose}>
    <form method="dialog" onSubmit=${(e: Event) => void submit(e)}>
      <h2 id="cancel-title">${props.title}</h2>
      <p class="summary" data-testid="cancel-summary">${props.summary}</p>
      <label for="cancel-reason">Reason</label>
      <textarea id="cancel-reason" required maxlength="1000" rows="3" placeholder="Why? It is recorded in the audit trail." value=${reason}
        onInput=${(e: Event) => setReason((e.target as HTMLTextAreaElement).value)}></textarea>
      ${props.capabilities.force && html`<label class="check"><input type="checkbox" checked=${force} onChange=${(e: Event) => setForce((e.target as HTMLInputElement).checked)} />
        Force: skip the grace period (running tasks are killed at once, with no time to clean up)</label>`}
      ${error && html`<p class="error" role="alert">${error}</p>`}
      <div class="actions">
        <button type="button" onClick=${() => ref.current?.close()}>Keep running</button>
        <button type="submit" class="danger" disabled=${busy || props.disabled === true}>${busy ? 'Cancelling…' : 'Confirm cancel'}</button>
      </div>
    </form>
  </dialog>`;
}

// ---------- redispatch dialog ----------

/**
 * Redispatch with the plan shown first: opening the dialog asks the server for a dry run (the
 * deployed runtime decides every node, nothing runs); "Run redispatch" then starts it for real
 * and opens the new dispatch.
 */
function RedispatchDialog({ dispatchId, reuse, onClose }: { dispatchId: string; reuse: boolean; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  const [plan, setPlan] = useState<RedispatchPlanView | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const url = `/api/dispatches/${encodeURIComponent(dispatchId)}/redispatch`;
  useEffect(() => {
    ref.current?.showModal();
    let live = true;
    void api<RedispatchPlanView>(url, { method: 'POST', body: { dryRun: true, reuse } })
      .then((p) => live && setPlan(p))
      .catch((e: Error) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [dispatchId]);
  const run = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const started = await api<RedispatchPlanView>(url, { method: 'POST', body: { dryRun: false, reuse } });
      ref.current?.close();
      location.hash = `#/dispatch/${encodeURIComponent(started.dispatchId)}`;
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };
  const reused = plan?.nodes.filter((n) => n.action === 'reuse').length ?? 0;
  const rerun = plan ? plan.nodes.length - reused : 0;
  const inner = plan?.nodes.reduce((k, n) => k + (n.children?.length ?? 0), 0) ?? 0;
  const runLabel = reuse ? 'Run redispatch' : 'Rerun everything';
  return html`<dialog ref=${ref} class="dialog wide" aria-labelledby="redispatch-title" onClose=${onClose}>
    <h2 id="redispatch-title">${reuse ? 'Redispatch' : 'Rerun everything of'} <code>${dispatchId.slice(0, 8)}</code></h2>
    ${!plan && !error && html`<p class="muted" role="status">Deciding the plan (a dry run: the runtime checks every node, nothing runs)…</p>`}
    ${plan && html`<p class="summary" data-testid="redispatch-summary">${reused} reused, ${rerun} to run${plan.newNodes.length ? ` (${plan.newNodes.length} new)` : ''}${inner ? `, and ${inner} inside sublattices` : ''}.${reuse ? '' : ' Reuse is off: every node runs again.'} A new dispatch; this one is kept as it is.</p>
      <table class="mini plan" aria-label="Redispatch plan"><thead><tr><th>Node</th><th>Name</th><th>Plan</th><th>Why / from</th></tr></thead><tbody>${plan.nodes.map(
        (n) => html`<tr data-node-id=${String(n.nodeId)} data-action=${n.action}><td>${n.nodeId}</td><td>${n.name}</td>
          <td><span class="pill" data-status=${n.action === 'reuse' ? 'COMPLETED' : 'RUNNING'}>${n.action === 'reuse' ? 'reuse' : 'run'}</span></td>
          <td>${n.action === 'reuse' && n.from ? html`from <code title=${n.from.dispatchId}>${n.from.dispatchId.slice(0, 8)}</code> node ${n.from.nodeId}` : n.reason}</td></tr>
          ${(n.children ?? []).map((c) => html`<tr class="inner" data-node-id=${c.path} data-action=${c.action}><td>↳ ${c.path}</td><td>${c.name}</td>
            <td><span class="pill" data-status="RUNNING">run</span></td><td>${c.reason} (was ${STATUS_LABEL[c.was]})</td></tr>`)}`,
      )}</tbody></table>`}
    ${error && html`<p class="error" role="alert">${error}</p>`}
    <div class="actions">
      <button type="button" onClick=${() => ref.current?.close()}>Close</button>
      <button type="button" class="primary" disabled=${!plan || busy} onClick=${() => void run()}>${busy ? 'Starting…' : runLabel}</button>
    </div>
  </dialog>`;
}

function held(stopped: CancelReportView['cancelled'][number]['stopped']): string {
  if (!stopped) return '';
  const parts = [`ran ${duration(new Date(0).toISOString(), new Date(stopped.ranMs).toISOString(), 0)}`];
  if (stopped.vcpus) parts.push(`${stopped.vcpus} vCPU`);
  if (stopped.memoryMiB) parts.push(`${stopped.memoryMiB} MiB`);
  if (stopped.gpus) parts.push(`${stopped.gpus} GPU`);
  if (stopped.shots) parts.push(`${stopped.shots} shots`);
  return parts.join(', ');
}

/** A cancel request's final report: what it stopped (and what that work held), what had ended, what another request had. */
function Report({ report }: { report: CancelReportView }) {
  return html`<div class="report" data-request-id=${report.requestId}>
    <p><strong>Report</strong>${report.executionStopped ? ' · execution stopped' : ''} · ${report.cancelled.length} cancelled</p>
    ${report.cancelled.length > 0 && html`<table class="mini" aria-label="Cancelled tasks"><thead><tr><th>Task</th><th>Name</th><th>Was</th><th>Now</th><th>How</th><th>Held</th></tr></thead><tbody>${report.cancelled.map(
      (c) => html`<tr data-node-id=${String(c.id)}><td>${String(c.id)}</td><td>${c.name}</td><td>${c.previousStatus}</td><td><${StatusPill} status=${c.status} /></td><td>${c.method}${c.error ? html` <span class="error">${c.error}</span>` : ''}</td><td>${held(c.stopped)}</td></tr>`,
    )}</tbody></table>`}
    ${report.alreadyTerminal.length > 0 && html`<p class="muted">Already ended: ${report.alreadyTerminal.map((t) => `${String(t.id)} (${t.status})`).join(', ')}</p>`}
    ${(report.merged?.length ?? 0) > 0 && html`<p class="muted">Flagged first by another request: ${report.merged!.map((t) => `${String(t.id)} (request ${t.requestId.slice(0, 8)})`).join(', ')}</p>`}
    ${report.notFound.length > 0 && html`<p class="error">Not found: ${report.notFound.join(', ')}</p>`}
  </div>`;
}

/**
 * Every cancel request of the dispatch, from any client (this page, the CLI, a script), newest
 * first and live, as the cancel issue defines its progress: `OPEN` with the step it is in,
 * targets done out of all, attempts and the last failed attempt; then `DONE` with its final
 * report, read once from the server (which keeps it).
 */
function CancelRequests(props: {
  requests: readonly CancelAuditEntry[];
  reports: ReadonlyMap<string, CancelReportView>;
  accepted: readonly CancelAcceptedView[];
  capabilities: Capabilities;
  onReport: (report: CancelReportView) => void;
}) {
  const asked = useRef(new Set<string>());
  const [failures, setFailures] = useState<ReadonlyMap<string, string>>(new Map());
  const requests = [...props.requests].sort((a, b) => b.requestedAt.localeCompare(a.requestedAt));
  useEffect(() => {
    if (!props.capabilities.cancelProgress) return;
    for (const r of requests) {
      if (r.state === 'OPEN' || props.reports.has(r.requestId) || asked.current.has(r.requestId)) continue;
      asked.current.add(r.requestId);
      void api<CancelProgressView>(`/api/dispatches/${encodeURIComponent(r.dispatchId)}/cancels/${encodeURIComponent(r.requestId)}`)
        .then((p) => (p.report ? props.onReport(p.report) : asked.current.delete(r.requestId)))
        .catch((e: Error) => setFailures((f) => new Map(f).set(r.requestId, e.message)));
    }
  }, [requests.map((r) => `${r.requestId}:${r.state ?? ''}`).join(',')]);
  const known = new Set(requests.map((r) => r.requestId));
  const waiting = props.accepted.filter((a) => !known.has(a.requestId));
  if (requests.length === 0 && waiting.length === 0) return html`<p class="muted">No cancel requests.</p>`;
  return html`<ol class="cancel-requests">
    ${waiting.map((a) => html`<li class="cancel-request" data-request-id=${a.requestId} data-state="OPEN"><p><span class="pill" data-status="RUNNING">OPEN</span> <code>${a.requestId.slice(0, 8)}</code> accepted; waiting for its first progress…</p></li>`)}
    ${requests.map((r) => {
      const state = r.state ?? 'DONE';
      const report = props.reports.get(r.requestId);
      // Once done, the count comes from the final report (the last recorded step may be older).
      const reported = report ? report.cancelled.length + report.alreadyTerminal.length + (report.merged?.length ?? 0) + report.notFound.length : 0;
      const p = state === 'DONE' && report ? { phase: 'done', done: reported, total: reported } : r.progress;
      return html`<li class="cancel-request" data-request-id=${r.requestId} data-state=${state}>
        <p><span class="pill" data-status=${state === 'OPEN' ? 'RUNNING' : 'COMPLETED'}>${state}</span> <code title=${r.requestId}>${r.requestId.slice(0, 8)}</code>${' '}
          ${r.targets.length === 0 ? 'whole dispatch' : `task${r.targets.length === 1 ? '' : 's'} ${r.targets.join(', ')}`} · <span class="who">${r.requestedBy}</span> at ${clock(r.requestedAt)}${r.reason ? html` · <q>${r.reason}</q>` : ''}</p>
        ${p && html`<div class="progress-row"><progress aria-label=${`Cancel ${r.requestId.slice(0, 8)} progress`} max=${Math.max(1, p.total)} value=${p.done}></progress>
          <span class="small" data-testid="cancel-progress">${p.done.toLocaleString('en-US')}/${p.total.toLocaleString('en-US')} targets · ${p.phase}</span></div>`}
        ${state === 'OPEN' && !p && html`<p class="muted small">Accepted; working on it.</p>`}
        ${(r.attempts ?? 0) > 1 && html`<p class="muted small">${r.attempts} attempts</p>`}
        ${r.lastError && html`<p class="error small">Last attempt failed (retried): ${r.lastError}</p>`}
        ${state === 'DONE' && (report ? html`<${Report} report=${report} />` : failures.has(r.requestId) ? html`<p class="error small">${failures.get(r.requestId)}</p>` : props.capabilities.cancelProgress ? html`<p class="muted small">Reading its report…</p>` : null)}
        ${r.finishedAt && html`<p class="muted small">finished ${clock(r.finishedAt)}</p>`}
      </li>`;
    })}
  </ol>`;
}

// ---------- one dispatch ----------

interface DispatchState {
  readonly header?: DispatchHeader;
  readonly nodes: Map<string, NodeView>;
  readonly version: number;
}

function useDispatch(id: string): [DispatchState, string | undefined] {
  const [state, setState] = useState<DispatchState>({ nodes: new Map(), version: 0 });
  const [failure, setFailure] = useState<string | undefined>(undefined);
  useEffect(() => {
    const source = new EventSource(`/api/events/dispatch/${encodeURIComponent(id)}`);
    const apply = (e: Event): void => {
      const update = JSON.parse((e as MessageEvent<string>).data) as DispatchUpdate;
      setFailure(undefined);
      setState((prev) => {
        const nodes = update.full ? new Map<string, NodeView>() : new Map(prev.nodes);
        for (const node of update.nodes) nodes.set(node.path, node);
        return { header: update.header, nodes, version: prev.version + 1 };
      });
    };
    source.addEventListener('snapshot', apply);
    source.addEventListener('delta', apply);
    source.addEventListener('failure', (e) => setFailure((JSON.parse((e as MessageEvent<string>).data) as { message: string }).message));
    return () => source.close();
  }, [id]);
  return [state, failure];
}

type Selection = { kind: 'node'; path: string } | { kind: 'cluster'; key: string } | undefined;
type CancelAsk = { kind: 'dispatch' } | { kind: 'task'; path: string; downstream: boolean };

function DispatchPage({ id, capabilities }: { id: string; capabilities: Capabilities }) {
  const [state, failure] = useDispatch(id);
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const [selection, setSelection] = useState<Selection>(undefined);
  const [ask, setAsk] = useState<CancelAsk | undefined>(undefined);
  const [reports, setReports] = useState<ReadonlyMap<string, CancelReportView>>(new Map());
  const [accepted, setAccepted] = useState<CancelAcceptedView[]>([]);
  const [layout, setLayout] = useState<Layout | undefined>(undefined);
  const [query, setQuery] = useState('');
  const [redispatching, setRedispatching] = useState<'reuse' | 'all' | undefined>(undefined);
  const now = useNow();
  const { header, nodes } = state;
  const shown = useMemo(() => visibleNodes(nodes, expanded), [state.version, expanded]);
  const key = structureKey(shown, expanded);
  // What keeps the layout from showing, if anything: a failure, or a layout far slower than it
  // should be (the engine may have wedged). Either is said, with a way to start it again.
  const [layoutTrouble, setLayoutTrouble] = useState<{ kind: 'failed' | 'slow'; message: string } | undefined>(undefined);
  const [layoutAttempt, setLayoutAttempt] = useState(0);
  useEffect(() => {
    if (shown.length === 0) return;
    let live = true;
    setLayoutTrouble(undefined);
    const count = shown.length;
    const slow = setTimeout(() => live && setLayoutTrouble({ kind: 'slow', message: `Still laying out ${count} nodes after ${SLOW_LAYOUT_MS / 1000} s.` }), SLOW_LAYOUT_MS);
    layoutGraph(shown, expanded).then(
      (l) => {
        if (!live) return;
        setLayout(l);
        setLayoutTrouble(undefined);
      },
      (error: unknown) => {
        // A restart fails the layout it replaces; the new one reports for itself.
        if (!live || (error instanceof Error && error.name === LAYOUT_RESTARTED)) return;
        setLayoutTrouble({ kind: 'failed', message: `The layout failed: ${error instanceof Error ? error.message : String(error)}.` });
      },
    ).finally(() => clearTimeout(slow));
    return () => {
      live = false;
      clearTimeout(slow);
    };
  }, [key, layoutAttempt]);
  const relayout = (): void => {
    restartLayoutEngine();
    setLayoutAttempt((a) => a + 1);
  };
  const children = useMemo(() => childrenOf(nodes), [nodes.size, state.version === 0]);
  const topCounts = useMemo(() => countPaths([...nodes.keys()].filter((p) => !p.includes('/')), nodes), [state.version]);
  const matches = useMemo(() => {
    const q = query.trim().toLowerCase();
    if (!q) return [];
    return [...nodes.values()].filter((n) => n.path === q || String(n.id) === q || n.name.toLowerCase().includes(q)).slice(0, 50);
  }, [query, state.version]);

  if (!header) return html`<main class="page"><p class="muted">${failure ? html`<span class="error" role="alert">${failure}</span>` : 'Loading dispatch…'}</p></main>`;
  const running = header.status === 'RUNNING';
  const targetsOf = (a: CancelAsk): Set<string> => (a.kind === 'dispatch' ? new Set(nodes.keys()) : downstream(a.path, children));
  const askSummary = (a: CancelAsk): [string, number] => {
    const counts = countPaths(targetsOf(a), nodes);
    const live = (counts.RUNNING ?? 0) + (counts.NEW_OBJECT ?? 0);
    const ended = (counts.COMPLETED ?? 0) + (counts.FAILED ?? 0) + (counts.CANCELLED ?? 0);
    const what = a.kind === 'dispatch' ? 'the whole dispatch' : `task ${a.path} (${nodes.get(a.path)?.name ?? '?'}) and everything downstream of it`;
    return [`This cancels ${what}: it stops ${counts.RUNNING ?? 0} running and ${counts.NEW_OBJECT ?? 0} not-started tasks${ended ? `; ${ended} already ended` : ''}.`, live];
  };
  const doCancel = async (a: CancelAsk, reason: string, force: boolean): Promise<void> => {
    const body = a.kind === 'dispatch' ? { reason, force } : { taskIds: [a.path], reason, force };
    // 200: the final report; 202: accepted, and its progress arrives with the live updates.
    const answer = await api<CancelReportView | CancelAcceptedView>(`/api/dispatches/${encodeURIComponent(id)}/cancel`, { method: 'POST', body });
    if ('accepted' in answer) setAccepted((a) => [answer, ...a]);
    else addReport(answer);
  };
  function addReport(report: CancelReportView): void {
    setReports((r) => new Map(r).set(report.requestId, report));
  }
  const selected = selection?.kind === 'node' ? nodes.get(selection.path) : undefined;
  const jump = (path: string): void => {
    // Open every enclosing sublattice so the node is drawn (when the full view is used).
    const parts = path.split('/');
    if (parts.length > 1) setExpanded((e) => new Set([...e, ...parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'))]));
    setSelection({ kind: 'node', path });
  };
  return html`<main class="page dispatch">
    <header class="bar">
      <a href="#/" class="back">← Dispatches</a>
      <h1><span class="muted">${header.lattice}</span> <code title=${header.dispatchId}>${header.dispatchId.slice(0, 8)}</code></h1>
      <${StatusPill} status=${header.status} />
      <span class="muted">started ${clock(header.startedAt)} · ${duration(header.startedAt, header.endedAt, now)}</span>
      <${Counts} counts=${topCounts} />
      <span class="spacer"></span>
      ${capabilities.redispatch && html`<button disabled=${running} title=${running ? 'A dispatch can be redispatched once it ended' : 'Run it again, reusing what completed; the plan is shown first'}
        onClick=${() => setRedispatching('reuse')}>Redispatch…</button>`}
      ${capabilities.redispatch && html`<button disabled=${running} title=${running ? 'A dispatch can be rerun once it ended' : 'Run every node again (reuse off); the plan is shown first'}
        onClick=${() => setRedispatching('all')}>Rerun everything…</button>`}
      <button class="danger" disabled=${!running} onClick=${() => setAsk({ kind: 'dispatch' })}>Cancel dispatch</button>
    </header>
    ${failure && html`<p class="banner" role="alert">Live updates failing: ${failure}</p>`}
    ${header.error && html`<p class="banner">Failed: ${header.error.name}: ${header.error.message}</p>`}
    <div class="work">
      <section class="graph-area" aria-label="Transport graph">
        <div class="toolbar">
          <label class="search">Search nodes <input type="search" value=${query} placeholder="id or name"
            onInput=${(e: Event) => setQuery((e.target as HTMLInputElement).value)}
            onKeyDown=${(e: KeyboardEvent) => e.key === 'Enter' && matches[0] && jump(matches[0].path)} /></label>
          ${query && html`<span class="muted">${matches.length}${matches.length === 50 ? '+' : ''} match${matches.length === 1 ? '' : 'es'}</span>`}
          ${layout && html`<span class="muted small">${layout.mode === 'summary' ? `summary of ${nodes.size} nodes in ${layout.boxes.length} clusters` : `${shown.length} nodes`} · layout ${Math.round(layout.millis)} ms</span>`}
        </div>
        ${query && matches.length > 0 && html`<ul class="matches" aria-label="Search results">${matches.slice(0, 12).map(
          (n) => html`<li><button class="link" onClick=${() => jump(n.path)}>${n.path} · ${n.name} · ${STATUS_LABEL[n.status]}</button></li>`,
        )}</ul>`}
        ${layoutTrouble && html`<p class="pad layout-trouble" role="alert">${layoutTrouble.message} <button onClick=${relayout}>${layoutTrouble.kind === 'slow' ? 'Restart layout' : 'Retry layout'}</button></p>`}
        ${layout
          ? html`<${GraphView} layout=${layout} nodes=${nodes} expanded=${expanded} selection=${selection} highlight=${new Set(matches.map((m) => m.path))}
              onSelect=${setSelection} onToggle=${(path: string) => setExpanded((e) => { const n = new Set(e); if (n.has(path)) n.delete(path); else n.add(path); return n; })} />`
          : !layoutTrouble && html`<p class="muted pad">Laying out ${shown.length} nodes…</p>`}
      </section>
      <aside class="panel" aria-label="Details">
        ${selected
          ? html`<${NodePanel} node=${selected} dispatchId=${id} header=${header} expanded=${expanded.has(selected.path)}
              onToggle=${() => setExpanded((e) => { const n = new Set(e); if (n.has(selected.path)) n.delete(selected.path); else n.add(selected.path); return n; })}
              onCancel=${(down: boolean) => setAsk({ kind: 'task', path: selected.path, downstream: down })}
              descendants=${downstream(selected.path, children)} nodes=${nodes} onClose=${() => setSelection(undefined)} />`
          : selection?.kind === 'cluster' && layout
            ? html`<${ClusterPanel} box=${layout.boxes.find((b) => b.key === selection.key)} nodes=${nodes} onPick=${(p: string) => setSelection({ kind: 'node', path: p })} />`
            : html`<p class="muted">Select a node (click, or Tab to it and press Enter) to see its executor, job, timings, error and output. Scroll to zoom, drag to pan; keys: arrows pan, + and − zoom, 0 fits.</p>`}
      </aside>
    </div>
    <div class="lower">
      <section class="card" aria-label="Cancel requests"><h2>Cancel requests</h2>
        <${CancelRequests} requests=${header.cancelRequests} reports=${reports} accepted=${accepted} capabilities=${capabilities} onReport=${addReport} />
      </section>
      <${Timeline} header=${header} nodes=${nodes} />
    </div>
    ${ask && html`<${CancelDialog}
      title=${ask.kind === 'dispatch' ? 'Cancel dispatch' : ask.downstream ? `Cancel task ${ask.path} and everything downstream` : `Cancel task ${ask.path}`}
      summary=${askSummary(ask)[0]} disabled=${askSummary(ask)[1] === 0} capabilities=${capabilities}
      onClose=${() => setAsk(undefined)} onConfirm=${(reason: string, force: boolean) => doCancel(ask, reason, force)} />`}
    ${redispatching && html`<${RedispatchDialog} key=${redispatching} dispatchId=${id} reuse=${redispatching === 'reuse'} onClose=${() => setRedispatching(undefined)} />`}
  </main>`;
}

function GraphView(props: {
  layout: Layout;
  nodes: Map<string, NodeView>;
  expanded: Set<string>;
  selection: Selection;
  highlight: Set<string>;
  onSelect: (s: Selection) => void;
  onToggle: (path: string) => void;
}) {
  const { layout, nodes } = props;
  const svg = useRef<SVGSVGElement>(null);
  const [view, setView] = useState({ x: 0, y: 0, k: 1 });
  const drag = useRef<{ x: number; y: number; vx: number; vy: number } | undefined>(undefined);
  const fit = (): void => {
    const el = svg.current;
    if (!el) return;
    const { width, height } = el.getBoundingClientRect();
    const k = Math.min(1.2, Math.max(0.02, Math.min(width / (layout.width + 40), height / (layout.height + 40))));
    setView({ k, x: (width - layout.width * k) / 2, y: 16 });
  };
  useEffect(fit, [layout]);
  const zoom = (factor: number, cx?: number, cy?: number): void =>
    setView((v) => {
      const rect = svg.current?.getBoundingClientRect();
      const px = cx ?? (rect ? rect.width / 2 : 0);
      const py = cy ?? (rect ? rect.height / 2 : 0);
      const k = Math.min(4, Math.max(0.02, v.k * factor));
      return { k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
    });
  // Centre on a selected node found by search.
  useEffect(() => {
    if (props.selection?.kind !== 'node') return;
    const key = layout.mode === 'summary' ? layout.clusterOf.get(props.selection.path) : props.selection.path;
    const box = layout.boxes.find((b) => b.key === key);
    const rect = svg.current?.getBoundingClientRect();
    if (!box || !rect) return;
    setView((v) => {
      const inside = box.x * v.k + v.x > 0 && box.y * v.k + v.y > 0 && (box.x + box.w) * v.k + v.x < rect.width && (box.y + box.h) * v.k + v.y < rect.height;
      if (inside) return v;
      const k = Math.max(v.k, 0.6);
      return { k, x: rect.width / 2 - (box.x + box.w / 2) * k, y: rect.height / 2 - (box.y + box.h / 2) * k };
    });
  }, [props.selection]);
  const boxes = new Map(layout.boxes.map((b) => [b.key, b] as const));
  const onKey = (e: KeyboardEvent): void => {
    const step = 60;
    const moves: Record<string, [number, number]> = { ArrowLeft: [step, 0], ArrowRight: [-step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] };
    const move = moves[e.key];
    if (move && e.target === e.currentTarget) {
      e.preventDefault();
      setView((v) => ({ ...v, x: v.x + move[0], y: v.y + move[1] }));
    } else if (e.key === '+' || e.key === '=') zoom(1.25);
    else if (e.key === '-') zoom(0.8);
    else if (e.key === '0') fit();
    else if (e.key === 'Escape') props.onSelect(undefined);
  };
  const selectedKey = props.selection?.kind === 'node' ? (layout.mode === 'summary' ? layout.clusterOf.get(props.selection.path) : props.selection.path) : props.selection?.key;
  return html`<div class="graph-wrap">
    <div class="zoom" role="group" aria-label="Zoom">
      <button aria-label="Zoom in" onClick=${() => zoom(1.25)}>+</button>
      <button aria-label="Zoom out" onClick=${() => zoom(0.8)}>−</button>
      <button aria-label="Fit graph" onClick=${fit}>⤢</button>
    </div>
    <svg ref=${svg} class="graph" tabindex="0" role="application" aria-label=${`Graph of ${nodes.size} nodes; arrows pan, plus and minus zoom, 0 fits`}
      data-mode=${layout.mode} onKeyDown=${onKey}
      onWheel=${(e: WheelEvent) => { e.preventDefault(); const r = svg.current!.getBoundingClientRect(); zoom(e.deltaY < 0 ? 1.15 : 1 / 1.15, e.clientX - r.left, e.clientY - r.top); }}
      onPointerDown=${(e: PointerEvent) => { if ((e.target as Element).closest('[data-node-id],[data-cluster-id]')) return; drag.current = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y }; (e.currentTarget as Element).setPointerCapture(e.pointerId); }}
      onPointerMove=${(e: PointerEvent) => { const d = drag.current; if (d) setView((v) => ({ ...v, x: d.vx + e.clientX - d.x, y: d.vy + e.clientY - d.y })); }}
      onPointerUp=${() => (drag.current = undefined)}>
      <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead" /></marker></defs>
      <g transform=${`translate(${view.x},${view.y}) scale(${view.k})`}>
        ${layout.boxes.filter((b) => b.kind === 'group').map((b) => {
          const n = nodes.get(b.key);
          return html`<g class="group" data-node-id=${b.key} data-status=${n?.status ?? ''}>
            <rect x=${b.x} y=${b.y} width=${b.w} height=${b.h} rx="10" />
            <text x=${b.x + 12} y=${b.y + 20} class="group-label" onClick=${() => props.onSelect({ kind: 'node', path: b.key })}>▾ ${n?.name ?? b.key} · sublattice ${b.key}</text>
          </g>`;
        })}
        <g class="edges">${layout.edges.map(([from, to]) => {
          const a = boxes.get(from);
          const b = boxes.get(to);
          if (!a || !b) return null;
          const x1 = a.x + a.w / 2, y1 = a.y + a.h, x2 = b.x + b.w / 2, y2 = b.y;
          const my = (y1 + y2) / 2;
          return html`<path d=${`M${x1},${y1} C${x1},${my} ${x2},${my} ${x2},${y2 - 2}`} marker-end="url(#arrow)" />`;
        })}</g>
        ${layout.boxes.filter((b) => b.kind === 'node').map((b) => html`<${NodeBox} box=${b} node=${nodes.get(b.key)} selected=${selectedKey === b.key} hit=${props.highlight.has(b.key)}
          onSelect=${() => props.onSelect({ kind: 'node', path: b.key })} onToggle=${() => props.onToggle(b.key)} />`)}
        ${layout.boxes.filter((b) => b.kind === 'cluster').map((b) => html`<${ClusterBox} box=${b} nodes=${nodes} selected=${selectedKey === b.key}
          onSelect=${() => props.onSelect({ kind: 'cluster', key: b.key })} />`)}
      </g>
    </svg>
  </div>`;
}

function NodeBox({ box, node, selected, hit, onSelect, onToggle }: { box: Box; node: NodeView | undefined; selected: boolean; hit: boolean; onSelect: () => void; onToggle: () => void }) {
  if (!node) return null;
  const label = node.name.length > 18 ? `${node.name.slice(0, 17)}…` : node.name;
  return html`<g class=${`node${selected ? ' selected' : ''}${hit ? ' hit' : ''}`} data-node-id=${node.path} data-status=${node.status} tabindex="0" role="button"
    aria-label=${`Node ${node.path} ${node.name}, ${STATUS_LABEL[node.status]}`} aria-pressed=${selected}
    onClick=${onSelect} onKeyDown=${(e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(); } }}>
    <rect x=${box.x} y=${box.y} width=${NODE_W} height=${NODE_H} rx="8" />
    <rect x=${box.x} y=${box.y} width="6" height=${NODE_H} rx="3" class="stripe" />
    <text x=${box.x + 14} y=${box.y + 17} class="name">${label}</text>
    <text x=${box.x + 14} y=${box.y + 32} class="meta">#${node.path} · ${node.executor}${node.kind === 'sublattice' ? ' · sub' : ''} · ${STATUS_LABEL[node.status]}</text>
    ${node.kind === 'sublattice' && node.childDispatchId && html`<text x=${box.x + NODE_W - 18} y=${box.y + 25} class="expand" aria-hidden="true"
      onClick=${(e: Event) => { e.stopPropagation(); onToggle(); }}>▸</text>`}
  </g>`;
}

function ClusterBox({ box, nodes, selected, onSelect }: { box: Box; nodes: Map<string, NodeView>; selected: boolean; onSelect: () => void }) {
  const counts = countPaths(box.members ?? [], nodes);
  const total = box.members?.length ?? 1;
  let x = box.x + 10;
  const bar = NODE_STATUSES.filter((s) => counts[s]).map((s) => {
    const w = ((box.w - 20) * (counts[s] ?? 0)) / total;
    const seg = html`<rect x=${x} y=${box.y + 38} width=${w} height="12" class="seg" data-status=${s} />`;
    x += w;
    return seg;
  });
  const busiest = (['RUNNING', 'FAILED', 'CANCELLED', 'NEW_OBJECT', 'COMPLETED'] as const).find((s) => counts[s]) ?? 'NEW_OBJECT';
  return html`<g class=${`cluster${selected ? ' selected' : ''}`} data-cluster-id=${box.key} data-status=${busiest} tabindex="0" role="button"
    aria-label=${`${box.label ?? ''}: ${NODE_STATUSES.filter((s) => counts[s]).map((s) => `${counts[s]} ${STATUS_LABEL[s]}`).join(', ')}`}
    onClick=${onSelect} onKeyDown=${(e: KeyboardEvent) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); onSelect(); } }}>
    <rect x=${box.x} y=${box.y} width=${box.w} height=${box.h} rx="8" />
    <text x=${box.x + 10} y=${box.y + 24} class="name">${box.label}</text>
    ${bar}
  </g>`;
}

function ClusterPanel({ box, nodes, onPick }: { box: Box | undefined; nodes: Map<string, NodeView>; onPick: (path: string) => void }) {
  if (!box) return null;
  return html`<div><h2>${box.label}</h2><${Counts} counts=${countPaths(box.members ?? [], nodes)} />
    <ul class="members">${(box.members ?? []).map((p) => {
      const n = nodes.get(p);
      return html`<li><button class="link" data-status=${n?.status} onClick=${() => onPick(p)}><i class="dot"></i>${p} · ${n?.name}</button></li>`;
    })}</ul></div>`;
}

function consoleLink(node: NodeView, region: string | undefined): string | undefined {
  const handle = node.jobHandle;
  if (!region || !handle?.startsWith('arn:aws')) return undefined;
  const base = `https://${region}.console.aws.amazon.com`;
  if (handle.includes(':batch:')) return `${base}/batch/home?region=${region}#jobs/detail/${handle.split('/').pop()}`;
  if (handle.includes(':quantum-task/')) return `${base}/braket/home?region=${region}#/tasks/${encodeURIComponent(handle)}`;
  if (handle.includes(':job/')) return `${base}/braket/home?region=${region}#/jobs/${handle.split('/').pop()}`;
  return undefined;
}

function NodePanel(props: {
  node: NodeView;
  dispatchId: string;
  header: DispatchHeader;
  expanded: boolean;
  descendants: Set<string>;
  nodes: Map<string, NodeView>;
  onToggle: () => void;
  onCancel: (downstream: boolean) => void;
  onClose: () => void;
}) {
  const { node } = props;
  const now = useNow();
  const [output, setOutput] = useState<OutputPreview | undefined>(undefined);
  useEffect(() => {
    setOutput(undefined);
    if (node.status !== 'COMPLETED') return;
    void api<OutputPreview>(`/api/dispatches/${encodeURIComponent(props.dispatchId)}/output?path=${encodeURIComponent(node.path)}`)
      .then(setOutput)
      .catch((e: Error) => setOutput({ unavailable: e.message }));
  }, [node.path, node.status]);
  const link = consoleLink(node, props.header.consoleRegion);
  const live = [...props.descendants].filter((p) => p !== node.path && (props.nodes.get(p)?.status === 'RUNNING' || props.nodes.get(p)?.status === 'NEW_OBJECT')).length;
  const selfLive = node.status === 'RUNNING' || node.status === 'NEW_OBJECT';
  return html`<div class="node-panel" data-node-id=${node.path} data-status=${node.status}>
    <div class="panel-head"><h2>${node.name} <span class="muted">#${node.path}</span></h2><button class="link" aria-label="Close details" onClick=${props.onClose}>✕</button></div>
    <${StatusPill} status=${node.status} />
    <dl>
      <dt>Kind</dt><dd>${node.kind}</dd>
      <dt>Executor</dt><dd>${node.executor}</dd>
      <dt>Job handle</dt><dd>${node.jobHandle ? html`<code class="wrap">${node.jobHandle}</code>${link && html` <a href=${link} target="_blank" rel="noopener noreferrer">console ↗</a>`}` : '—'}</dd>
      <dt>Attempts</dt><dd>${node.attempts}</dd>
      <dt>Started</dt><dd>${clock(node.startedAt)}</dd>
      <dt>Ended</dt><dd>${clock(node.endedAt)}</dd>
      <dt>Duration</dt><dd>${node.startedAt ? duration(node.startedAt, node.endedAt, now) : '—'}</dd>
      <dt>Cancel</dt><dd>${node.cancelRequested ? `requested${node.cancelledBy ? ` · method ${node.cancelledBy}` : ''}` : 'not requested'}${node.cancelReason ? html`<br /><q>${node.cancelReason}</q>` : ''}</dd>
      ${node.error && html`<dt>Error</dt><dd class="error"><strong>${node.error.name}</strong>${node.error.code ? ` (${node.error.code})` : ''}: ${node.error.message}</dd>`}
      ${node.childDispatchId && html`<dt>Child dispatch</dt><dd><a href=${`#/dispatch/${node.childDispatchId}`}><code>${node.childDispatchId.slice(0, 8)}</code></a></dd>`}
    </dl>
    ${node.kind === 'sublattice' && node.childDispatchId && html`<button aria-expanded=${props.expanded} onClick=${props.onToggle}>${props.expanded ? 'Collapse sublattice' : 'Expand sublattice'}</button>`}
    <div class="actions">
      <button class="danger" disabled=${!selfLive} onClick=${() => props.onCancel(false)}>Cancel task</button>
      <button class="danger" disabled=${!selfLive && live === 0} onClick=${() => props.onCancel(true)}>Cancel task and downstream</button>
    </div>
    <p class="muted small">A cancelled task’s downstream tasks can never start, so both requests also cancel its ${props.descendants.size - 1} downstream task(s) (${live} still running or not started).</p>
    <h3>Output</h3>
    ${node.status !== 'COMPLETED' ? html`<p class="muted">Available once the node completed.</p>` : !output ? html`<p class="muted">Loading…</p>` : output.unavailable ? html`<p class="muted">${output.unavailable}</p>` : html`<pre class="output" aria-label="Output preview">${output.preview}${output.truncated ? '\n… (cut)' : ''}</pre>`}
  </div>`;
}

interface TimelineEntry {
  readonly at: string;
  readonly kind: 'cancel' | 'status' | 'dispatch';
  readonly text: string;
  readonly who?: string;
  readonly status?: string;
}

function Timeline({ header, nodes }: { header: DispatchHeader; nodes: Map<string, NodeView> }) {
  const [cancelsOnly, setCancelsOnly] = useState(false);
  const entries: TimelineEntry[] = [{ at: header.startedAt, kind: 'dispatch', text: `Dispatch started (${header.lattice})`, status: 'RUNNING' }];
  if (header.endedAt) entries.push({ at: header.endedAt, kind: 'dispatch', text: `Dispatch ended ${header.status}`, status: header.status });
  for (const c of header.cancelRequests) {
    entries.push({ at: c.requestedAt, kind: 'cancel', who: c.requestedBy, text: `cancelled ${c.targets.length === 0 ? 'the whole dispatch' : `task${c.targets.length === 1 ? '' : 's'} ${c.targets.join(', ')}`}${c.reason ? ` — “${c.reason}”` : ' — no reason given'}` });
  }
  if (!cancelsOnly) {
    for (const n of nodes.values()) {
      if (n.startedAt) entries.push({ at: n.startedAt, kind: 'status', text: `${n.path} ${n.name} → RUNNING`, status: 'RUNNING' });
      if (n.endedAt) entries.push({ at: n.endedAt, kind: 'status', text: `${n.path} ${n.name} → ${n.status}${n.cancelledBy ? ` (${n.cancelledBy})` : ''}`, status: n.status });
    }
  }
  entries.sort((a, b) => b.at.localeCompare(a.at));
  const cap = 300;
  return html`<section class="card timeline" aria-label="Audit timeline">
    <div class="panel-head"><h2>Audit timeline</h2><label class="check small"><input type="checkbox" checked=${cancelsOnly} onChange=${(e: Event) => setCancelsOnly((e.target as HTMLInputElement).checked)} /> Cancels only</label></div>
    <ol>${entries.slice(0, cap).map(
      (e) => html`<li class=${e.kind} data-kind=${e.kind} data-status=${e.status ?? ''}><time>${clock(e.at)}</time> ${e.who ? html`<strong class="who">${e.who}</strong> ` : ''}${e.text}</li>`,
    )}</ol>
    ${entries.length > cap && html`<p class="muted small">${entries.length - cap} older entries not shown.</p>`}
  </section>`;
}

// ---------- the app ----------

function App() {
  const route = useRoute();
  const [capabilities, setCapabilities] = useState<Capabilities | undefined>(undefined);
  const [unreachable, setUnreachable] = useState<string | undefined>(undefined);
  useEffect(() => {
    // Until the server answers, say why not and ask again, rather than "Connecting…" for ever.
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ask = (): void => {
      api<Capabilities>('/api/capabilities').then(
        (c) => {
          if (!live) return;
          setUnreachable(undefined);
          setCapabilities(c);
        },
        (error: unknown) => {
          if (!live) return;
          setUnreachable(error instanceof Error ? error.message : String(error));
          timer = setTimeout(ask, CONNECT_RETRY_MS);
        },
      );
    };
    ask();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, []);
  if (!capabilities) {
    return html`<main class="page"><p class="muted">Connecting…</p>${unreachable && html`<p class="error" role="alert">The dashboard server did not answer: ${unreachable}. Trying again every ${CONNECT_RETRY_MS / 1000} s.</p>`}</main>`;
  }
  const m = /^#\/dispatch\/([^/]+)$/.exec(route);
  return m ? html`<${DispatchPage} key=${m[1]} id=${decodeURIComponent(m[1]!)} capabilities=${capabilities} />` : html`<${ListPage} capabilities=${capabilities} />`;
}

render(html`<${App} />`, document.getElementById('app')!);
