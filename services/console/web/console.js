// Herald's console: plain JavaScript over the HTTP API, no framework, no
// build step. Every view reads an API endpoint and renders it; nothing is
// kept but what the page shows. Text from the server is set as text, never
// as HTML.
'use strict';

const REFRESH_MS = 2000;
const SLOW_REFRESH_MS = 10000;
const TAIL_LINES = 400;

const $ = (sel) => document.querySelector(sel);

// el builds an element: attributes (class, data-*, href …) and children
// (nodes or strings, set as text).
function el(tag, attrs, ...children) {
  const svg = ['svg', 'rect', 'line', 'title', 'text'].includes(tag);
  const e = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function key() { return sessionStorage.getItem('herald-operator-key') || ''; }

function headers(extra) {
  const h = Object.assign({}, extra);
  if (key()) h.Authorization = 'Bearer ' + key();
  return h;
}

class APIError extends Error {
  constructor(status, body) {
    super(body.detail || body.error || ('HTTP ' + status));
    this.status = status;
    this.code = body.error;
  }
}

async function call(method, path, body) {
  const init = { method, headers: headers({ Accept: 'application/json' }) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new APIError(r.status, data);
  return data;
}

// explain turns an API error into what the operator can do about it.
function explain(err) {
  if (err.status === 401) return 'this view needs the operator key (keys are configured): enter it above';
  if (err.status === 403) return 'the key given is not an operator key';
  if (err.status === 404) return 'not served by this process: the service behind it runs in another target';
  return String(err.message || err);
}

function show(target, ...nodes) { target.replaceChildren(...nodes); }

function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

function fmtDur(ms) {
  if (ms < 0) ms = 0;
  const s = Math.round(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
}

function labels(m) { return Object.entries(m || {}).map(([k, v]) => k + '=' + v).join(' '); }

// A view loads one endpoint and renders it into its element; errors are
// shown in place of the data.
function view(id, load, render) {
  const target = document.getElementById(id);
  return async () => {
    try {
      render(target, await load());
      target.dataset.loaded = 'true';
    } catch (err) {
      show(target, el('div', { class: 'error', 'data-status': err.status || 0 }, explain(err)));
    }
  };
}

// ---- incidents

const expanded = new Set();
const acks = {}; // answers of POST /v1/incidents/{id}/ack, shown beside the incident
let silences = [];

function silencedBy(inc) {
  const l = Object.assign({ rule: inc.rule, severity: inc.severity }, inc.group);
  return silences.find((s) => s.status !== 'expired' && (s.matchers || []).every((m) =>
    m.isRegex ? new RegExp('^(?:' + m.value + ')$').test(l[m.name] || '') : (l[m.name] || '') === m.value));
}

async function act(what, fn) {
  try {
    await fn();
    status(what + ': done');
    refresh();
  } catch (err) {
    status(what + ': ' + explain(err));
  }
}

function incidentRow(inc) {
  const open = inc.state === 'open' || inc.state === 'flapping';
  const end = inc.resolvedAt ? new Date(inc.resolvedAt) : new Date();
  const sil = silencedBy(inc);
  const ack = acks[inc.id];
  const row = el('tr', { class: 'incident', 'data-incident': inc.id, 'data-state': inc.state, 'data-severity': inc.severity,
    onclick: () => { expanded.has(inc.id) ? expanded.delete(inc.id) : expanded.add(inc.id); refreshIncidents(); } },
  el('td', {}, el('span', { class: 'sev ' + inc.severity }, inc.severity)),
  el('td', { class: 'state-' + inc.state }, inc.state, inc.suppressedBy ? ' by ' + inc.suppressedBy : ''),
  el('td', {}, inc.rule), el('td', { class: 'mono' }, labels(inc.group)),
  el('td', {}, fmtTime(inc.openedAt)), el('td', {}, fmtDur(end - new Date(inc.openedAt))),
  el('td', {}, inc.summary),
  el('td', {}, sil ? el('div', { class: 'note' }, 'silenced until ' + fmtTime(sil.endsAt)) : null,
    ack ? el('div', { class: 'note' }, 'acknowledged by ' + ack.by) : null,
    open && !ack ? el('button', { class: 'act', 'data-action': 'ack', onclick: (ev) => { ev.stopPropagation(); act('acknowledge ' + inc.id, async () => {
      const a = await call('POST', '/v1/incidents/' + encodeURIComponent(inc.id) + '/ack', { by: 'console' });
      if (a.acknowledgement) acks[inc.id] = a.acknowledgement;
    }); } }, 'acknowledge') : null,
    open && !sil ? el('button', { class: 'act', 'data-action': 'silence', onclick: (ev) => { ev.stopPropagation(); act('silence ' + inc.rule, () =>
      call('POST', '/v1/silences', { matchers: [{ name: 'rule', value: inc.rule }, ...Object.entries(inc.group || {}).map(([name, value]) => ({ name, value }))],
        duration: '1h', createdBy: 'console', comment: 'from the console, incident ' + inc.id })); } }, 'silence 1h') : null));
  return row;
}

async function incidentDetail(id) {
  const inc = await call('GET', '/v1/incidents/' + encodeURIComponent(id));
  // The notifier's view (its messages, the acknowledgement): absent when
  // this process runs no notifier.
  const sent = await call('GET', '/v1/incidents/' + encodeURIComponent(id) + '/notifications').catch(() => null);
  if (sent && sent.acknowledgement) acks[id] = sent.acknowledgement;
  const ev = (e) => e ? [e.failed + '/' + e.total + (e.ratio ? ' (' + Math.round(e.ratio * 100) + '%)' : '') + ' over ' + e.window,
    e.samples && e.samples.length ? ' samples ' + e.samples.join(', ') : ''] : '';
  return el('tr', { class: 'detail', 'data-detail': id }, el('td', { colspan: 8 },
    inc.runbook ? el('div', {}, 'runbook ', el('a', { href: inc.runbook, rel: 'noreferrer' }, inc.runbook)) : null,
    el('ol', { class: 'timeline' }, (inc.transitions || []).map((t) => el('li', { 'data-transition': t.type },
      fmtTime(t.at), ' ', el('b', {}, t.type), ' ', (t.from ? t.from + '→' : '') + t.severity, ' ', ev(t.evidence),
      t.published ? '' : ' (not published yet)'))),
    sent && sent.messages.length ? el('div', { 'data-messages': id }, 'messages: ', sent.messages.map((m) =>
      m.permalink ? el('a', { href: m.permalink, rel: 'noreferrer', 'data-permalink': m.destination }, m.destination + ' ')
        : el('span', {}, m.destination + ' '))) : null,
    sent && sent.acknowledgement ? el('div', { 'data-ack': id }, 'acknowledged by ' + sent.acknowledgement.by + ' at ' +
      fmtTime(sent.acknowledgement.at) + (sent.acknowledgement.effective ? '' : ' (after the resolve: changed nothing)')) : null,
    (inc.suppressions || []).length ? el('div', {}, 'suppressions: ', inc.suppressions.map((s) => s.rule + ' ' + labels(s.group) + ' ' + fmtTime(s.at)).join('; ')) : null));
}

const refreshIncidents = view('incidents', async () => {
  const page = await call('GET', '/v1/incidents?limit=50');
  const details = {};
  for (const inc of page.incidents) {
    if (expanded.has(inc.id)) details[inc.id] = await incidentDetail(inc.id).catch((err) => el('tr', {}, el('td', { colspan: 8, class: 'error' }, explain(err))));
  }
  return { page, details };
}, (target, { page, details }) => {
  if (!page.incidents.length) {
    show(target, el('div', { class: 'empty', 'data-empty': 'incidents' }, 'no incident (projection at EVENTS seq ' + page.seq + ')'));
    return;
  }
  show(target, el('table', {}, el('thead', {}, el('tr', {}, ['sev', 'state', 'rule', 'group', 'onset', 'duration', 'summary', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, page.incidents.map((inc) => [incidentRow(inc), details[inc.id]]))));
});

const refreshSilences = view('silences', () => call('GET', '/v1/silences'), (target, data) => {
  silences = data.silences || [];
  if (!silences.length) { show(target, el('div', { class: 'empty' }, 'no active silence')); return; }
  show(target, el('table', {}, el('tr', {}, ['id', 'matchers', 'ends', 'by', 'comment'].map((h) => el('th', {}, h))),
    silences.map((s) => el('tr', { 'data-silence': s.id }, el('td', { class: 'mono' }, s.id),
      el('td', { class: 'mono' }, (s.matchers || []).map((m) => m.name + (m.isRegex ? '=~' : '=') + m.value).join(' ')),
      el('td', {}, fmtTime(s.endsAt)), el('td', {}, s.createdBy), el('td', {}, s.comment || '')))));
});

// ---- delivery health

function chart(series) {
  const w = 300, h = 60, bw = w / series.length;
  const top = Math.max(1, ...series.map((b) => b.delivered + b.failed));
  const svg = el('svg', { class: 'chart', width: w, height: h, viewBox: '0 0 ' + w + ' ' + h, role: 'img' });
  series.forEach((b, i) => {
    const ok = b.delivered / top * h, bad = b.failed / top * h;
    const tip = el('title', {}, fmtTime(b.start) + ': ' + b.delivered + ' delivered, ' + b.failed + ' failed');
    if (ok > 0) svg.append(el('rect', { class: 'bar-ok', x: i * bw, y: h - ok, width: Math.max(bw - 1, 1), height: ok }, tip.cloneNode(true)));
    if (bad > 0) svg.append(el('rect', { class: 'bar-bad', x: i * bw, y: h - ok - bad, width: Math.max(bw - 1, 1), height: bad }, tip));
  });
  return svg;
}

function healthCard(title, kind, r) {
  return el('div', { class: 'card', 'data-health': kind + ':' + title, 'data-sent': r.sent, 'data-delivered': r.delivered, 'data-failed': r.failed },
    el('h3', {}, title),
    el('div', { class: 'nums' }, 'sent ', el('b', {}, r.sent), ' · delivered ', el('b', {}, r.delivered),
      ' · failed ', el('b', { class: r.failed ? 'bad' : '' }, r.failed), ' · fallback ', el('b', {}, r.fallback),
      ' · p50 ', el('b', {}, Math.round(r.p50Ms) + 'ms'), ' · p99 ', el('b', {}, Math.round(r.p99Ms) + 'ms')),
    chart(r.series));
}

const refreshHealth = view('health', () => call('GET', '/v1/health/delivery?window=' + encodeURIComponent($('#health-window').value)), (target, rep) => {
  const apps = rep.apps.map((r) => healthCard(r.app, 'app', r));
  const routes = rep.routes.map((r) => healthCard(r.provider + ' ' + r.route, 'route', r));
  show(target,
    el('div', { class: 'note' }, 'per app (OTPs completed, latency from request to completion)'),
    apps.length ? el('div', { class: 'cards' }, apps) : el('div', { class: 'empty' }, 'no OTP completed in the last hour'),
    el('div', { class: 'note' }, 'per provider/route (provider calls, latency of the call)'),
    routes.length ? el('div', { class: 'cards' }, routes) : el('div', { class: 'empty' }, 'no provider call in the last hour'));
});

// ---- policy, rules, dead letters

const refreshPolicy = view('policy', () => call('GET', '/platform/otp'), (target, p) => {
  show(target, el('div', { class: 'note' }, 'DLT ' + (p.dltEnabled ? 'enabled' : 'disabled') + ' (from ' + p.dltSource + ')'),
    el('table', {}, el('tr', {}, ['app', 'policy', 'route', 'fallback', 'providers', 'template', 'sender', 'healthy'].map((h) => el('th', {}, h))),
      (p.apps || []).map((a) => el('tr', { 'data-app': a.app }, el('td', {}, a.app), el('td', {}, a.deliveryPolicy), el('td', {}, a.effectiveRoute),
        el('td', {}, a.fallbackRoute || '-'), el('td', {}, (a.providers || []).join(', ')), el('td', {}, a.templateId || '-'),
        el('td', {}, a.senderId || '-'), el('td', { class: a.healthy ? 'state-resolved' : 'state-open' }, a.healthy ? 'yes' : 'no')))));
});

const refreshRules = view('rules', () => call('GET', '/v1/incident-rules'), (target, info) => {
  const sev = (r) => (r.severities || []).map((s) => s.level + (s.above !== undefined ? ' >' + s.above : '') +
    (s.atLeast !== undefined ? ' ≥' + s.atLeast : '') + (s.for ? ' for ' + s.for : '')).join(', ');
  show(target, el('div', { class: 'note' }, 'fingerprint ' + info.fingerprint + (info.error ? ' — ' + info.error : '')),
    el('table', {}, el('tr', {}, ['rule', 'kind', 'group by', 'window', 'severities', 'description'].map((h) => el('th', {}, h))),
      (info.inForce || []).map((r) => el('tr', { 'data-rule': r.name }, el('td', {}, r.name), el('td', {}, r.kind), el('td', {}, (r.groupBy || []).join(', ')),
        el('td', {}, r.window || ''), el('td', {}, sev(r)), el('td', {}, r.description || '')))));
});

const refreshDLQ = view('deadletters', () => call('GET', '/v1/dlq'), (target, data) => {
  const dl = data.deadLetters || [];
  if (!dl.length) { show(target, el('div', { class: 'empty' }, 'no dead letter')); return; }
  show(target, el('table', {}, el('tr', {}, ['seq', 'stored', 'consumer', 'origin', 'type', 'reason', 'error'].map((h) => el('th', {}, h))),
    dl.slice().reverse().map((d) => el('tr', { 'data-dlq': d.seq }, el('td', {}, d.seq), el('td', {}, fmtTime(d.stored)), el('td', {}, d.consumer),
      el('td', { class: 'mono' }, d.stream + '#' + d.sequence), el('td', {}, d.type || '-'), el('td', {}, d.reason), el('td', { class: 'mono' }, d.error)))));
});

// ---- live tail: server-sent events read with fetch, so that the operator
// key can go in the Authorization header (EventSource sends no header).

let tailAbort = null;

function tailLine(e) {
  const failed = /failed|failure/.test(e.type) || (e.data && e.data.status === 'failed');
  let d = JSON.stringify(e.data);
  if (d.length > 200) d = d.slice(0, 200) + '…';
  return el('li', { 'data-seq': e.seq, 'data-type': e.type, 'data-request': e.requestId || '' },
    el('span', { class: 't' }, fmtTime(e.time), ' #', e.seq, ' '),
    el('span', { class: 'ty' + (failed ? ' ty-failed' : '') }, e.type), ' ',
    e.app ? e.app + ' ' : '',
    e.requestId ? el('a', { href: '#trace=' + encodeURIComponent(e.requestId), class: 'mono' }, e.requestId) : '', ' ',
    el('span', { class: 'd' }, d));
}

async function runTail() {
  if (tailAbort) tailAbort.abort();
  const ctl = new AbortController();
  tailAbort = ctl;
  const lines = $('#tail-lines');
  const state = $('#tail-state');
  lines.replaceChildren();
  let last = '';
  while (!ctl.signal.aborted) {
    const q = new URLSearchParams();
    if ($('#tail-type').value) q.set('type', $('#tail-type').value.replace(/\s+/g, ''));
    if ($('#tail-app').value) q.set('app', $('#tail-app').value.trim());
    if ($('#tail-request').value) q.set('requestId', $('#tail-request').value.trim());
    if (last) q.set('after', last);
    try {
      const r = await fetch('/v1/events/stream?' + q, { headers: headers({ Accept: 'text/event-stream' }), signal: ctl.signal });
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        state.textContent = explain(new APIError(r.status, body));
        state.dataset.state = 'error';
        await sleep(3000, ctl.signal);
        continue;
      }
      state.textContent = 'following' + (q.toString() ? ' (' + q + ')' : '');
      state.dataset.state = 'following';
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const msg = {};
          for (const line of block.split('\n')) {
            const c = line.indexOf(':');
            if (c > 0) msg[line.slice(0, c)] = (msg[line.slice(0, c)] ? msg[line.slice(0, c)] + '\n' : '') + line.slice(c + 1).replace(/^ /, '');
          }
          last = msg.id || last;
          if (msg.event === 'event' && msg.data) {
            lines.prepend(tailLine(JSON.parse(msg.data)));
            while (lines.children.length > TAIL_LINES) lines.lastChild.remove();
          } else if (msg.event === 'error') {
            state.textContent = 'tail: ' + msg.data;
          }
        }
      }
    } catch (err) {
      if (ctl.signal.aborted) return;
      state.textContent = 'reconnecting: ' + err;
      await sleep(1000, ctl.signal);
    }
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });
}

// ---- trace

async function showTrace(id) {
  const target = $('#trace-view');
  $('#trace-id').value = id;
  if (!id) { show(target, el('div', { class: 'note' }, 'enter a request id, or follow one from the live tail')); return; }
  try {
    const tr = await call('GET', '/v1/trace/' + encodeURIComponent(id));
    const ms = (ns) => (ns / 1e6).toFixed(1) + 'ms';
    show(target, el('div', { 'data-trace': tr.requestId, 'data-outcome': tr.outcome },
      el('div', {}, el('b', {}, tr.requestId), tr.app ? ' app ' + tr.app : '', ' · outcome ', el('b', { class: tr.outcome === 'failed' ? 'state-open' : 'state-resolved' }, tr.outcome),
        ' · ', tr.steps.length, ' step(s) over ', ms(tr.durationNs)),
      tr.steps.length ? el('table', {}, el('tr', {}, ['time', '+', 'gap', 'seq', 'type', 'source', 'detail'].map((h) => el('th', {}, h))),
        tr.steps.map((s) => el('tr', { 'data-step': s.type }, el('td', {}, fmtTime(s.time)), el('td', {}, ms(s.sinceStartNs)), el('td', {}, ms(s.gapNs)),
          el('td', {}, s.seq), el('td', {}, el('b', {}, s.type)), el('td', {}, s.source), el('td', {}, s.invalid ? 'invalid: ' + s.invalid : s.detail || ''))))
        : el('div', { class: 'empty' }, 'the log has no event with this request id')));
  } catch (err) {
    show(target, el('div', { class: 'error' }, explain(err)));
  }
}

// ---- pages, refresh, key

function status(s) { $('#status').textContent = s; }

function route() {
  const h = location.hash.replace(/^#/, '');
  const [name, arg] = h.split('=');
  const page = ['tail', 'trace', 'config', 'dlq'].includes(name) ? name : 'overview';
  for (const p of document.querySelectorAll('.page')) p.classList.toggle('shown', p.id === page);
  if (page === 'trace') showTrace(decodeURIComponent(arg || ''));
}

function refresh() {
  const page = document.querySelector('.page.shown');
  if (!page) return;
  if (page.id === 'overview') { refreshSilences().then(refreshIncidents); refreshHealth(); }
  if (page.id === 'dlq') refreshDLQ();
}

function refreshSlow() { refreshPolicy(); refreshRules(); refreshDLQ(); }

document.addEventListener('DOMContentLoaded', () => {
  $('#key').value = key();
  $('#key-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem('herald-operator-key', $('#key').value.trim());
    status($('#key').value ? 'operator key set for this tab' : 'no key');
    refresh(); refreshSlow(); runTail();
  });
  $('#rebuild').addEventListener('click', () => act('rebuild', () => call('POST', '/v1/incidents/rebuild')));
  $('#health-window').addEventListener('change', refreshHealth);
  $('#tail-form').addEventListener('submit', (ev) => { ev.preventDefault(); runTail(); });
  $('#trace-form').addEventListener('submit', (ev) => { ev.preventDefault(); location.hash = 'trace=' + encodeURIComponent($('#trace-id').value.trim()); });
  window.addEventListener('hashchange', () => { route(); refresh(); });
  route();
  refresh();
  refreshSlow();
  runTail();
  setInterval(refresh, REFRESH_MS);
  setInterval(refreshSlow, SLOW_REFRESH_MS);
});
