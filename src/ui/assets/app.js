// The action-log page. It reads the public compute API with the user's own token, so it shows
// exactly what policy lets that user see. Everything the API returns goes into the page as text
// (textContent and text nodes): tracebacks and names carry `<`, `&` and quotes.

const VERSION = document.querySelector('meta[name="compute-version"]').content;
// Relative to the page, so that the page also works under a proxy's path prefix.
const API = new URL('../v2.1/', document.baseURI);
const TOKEN_KEY = 'nova-actions.token';
const PAGE = 50;
// Lazy event reads for the result column: a couple at a time, only for rows on screen.
const SHOW_CONCURRENCY = 2;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

const main = document.getElementById('main');
const signOutButton = document.getElementById('sign-out');
const who = document.getElementById('who');

// Read by the browser test: milliseconds spent rendering each page of actions.
window.__uiTimings = { pages: [] };

// ------------------------------------------------------------------ small DOM helpers

function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function show(...nodes) {
  main.replaceChildren(...nodes);
}

function enc(text) {
  return encodeURIComponent(text);
}

// ------------------------------------------------------------------ times

// Nova writes UTC without a zone and with microseconds.
function parseTime(text) {
  if (!text) return null;
  let iso = String(text).replace(' ', 'T').replace(/(\.\d{3})\d+/, '$1');
  if (!/(Z|[+-]\d\d:?\d\d)$/.test(iso)) iso += 'Z';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? null : new Date(ms);
}

const localFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

function utcText(date) {
  return date.toISOString().replace('T', ' ').replace('Z', ' UTC');
}

function age(date, now = Date.now()) {
  const seconds = Math.round((now - date.getTime()) / 1000);
  const abs = Math.abs(seconds);
  let text;
  if (abs < 45) text = `${abs} s`;
  else if (abs < 90 * 60) text = `${Math.round(abs / 60)} min`;
  else if (abs < 48 * 3600) text = `${Math.round(abs / 3600)} h`;
  else if (abs < 60 * 86400) text = `${Math.round(abs / 86400)} d`;
  else if (abs < 730 * 86400) text = `${Math.round(abs / (30.44 * 86400))} mo`;
  else text = `${Math.round(abs / (365.25 * 86400))} y`;
  return seconds >= 0 ? `${text} ago` : `in ${text}`;
}

function timeNode(date, withAge) {
  if (!date) return el('span', { class: 'none', text: '—' });
  return el(
    'time',
    { datetime: date.toISOString(), title: utcText(date) },
    localFormat.format(date),
    withAge ? el('span', { class: 'age', text: age(date) }) : null,
  );
}

function duration(ms) {
  if (ms === null || ms === undefined || ms < 0) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

// ------------------------------------------------------------------ the API

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// Nova's faults are {"itemNotFound": {"code": 404, "message": "..."}}; keystonemiddleware's
// 401 is {"error": {"message": ...}}.
function faultMessage(body) {
  if (!body || typeof body !== 'object') return null;
  if (typeof body.message === 'string') return body.message;
  for (const value of Object.values(body)) {
    if (value && typeof value.message === 'string') return value.message;
  }
  return null;
}

async function api(path, params = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    signOut('Sign in to read server actions.', true);
    throw new ApiError(401, 'Not signed in.');
  }
  const url = new URL(path, API);
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(key, value);
  }
  let response;
  try {
    response = await fetch(url, {
      headers: {
        'X-Auth-Token': token,
        'OpenStack-API-Version': `compute ${VERSION}`,
        Accept: 'application/json',
      },
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch (e) {
    throw new ApiError(0, `The service could not be reached (${e.message}).`);
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (response.ok) return body;
  const message = faultMessage(body) || response.statusText || `HTTP ${response.status}`;
  if (response.status === 401) signOut(`Your token was refused (401): ${message}`, true);
  throw new ApiError(response.status, message);
}

function errorBox(error, retry) {
  const titles = {
    0: 'Service unreachable',
    401: 'Not signed in',
    403: 'Not allowed (403)',
    404: 'Not found (404)',
    503: 'Service unavailable (503)',
  };
  const title = titles[error.status] || `Error ${error.status || ''}`.trim();
  return el(
    'div',
    { class: 'error', role: 'alert' },
    el('strong', { text: title }),
    el('p', { class: 'fault', text: error.message }),
    retry ? el('button', { type: 'button', onclick: retry, text: 'Try again' }) : null,
  );
}

// ------------------------------------------------------------------ sign-in and routing

let signInReason = null;
// Each view bumps it; work started for an earlier view sees the change and stops.
let generation = 0;
let cleanups = [];

function signOut(reason, keepPlace) {
  sessionStorage.removeItem(TOKEN_KEY);
  showCache.clear();
  signInReason = reason ? { text: reason, refused: keepPlace } : null;
  if (!keepPlace && location.hash !== '#/') {
    location.hash = '#/';
  } else {
    route();
  }
}

signOutButton.addEventListener('click', () => signOut('You signed out; the token is forgotten.', false));

function route() {
  generation += 1;
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  const token = sessionStorage.getItem(TOKEN_KEY);
  signOutButton.hidden = !token;
  who.textContent = token ? 'Signed in' : '';
  if (!token) {
    signInView();
    return;
  }
  const match = /^#\/servers\/([^/]+)(?:\/actions\/(.+))?$/.exec(location.hash);
  if (match) serverView(decodeURIComponent(match[1]), match[2] ? decodeURIComponent(match[2]) : null);
  else searchView();
}

function signInView() {
  const input = el('input', {
    id: 'token', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true,
  });
  const status = el('p', { class: 'status', 'aria-live': 'polite' });
  const form = el(
    'form',
    { class: 'card signin' },
    el('h1', { text: 'Sign in' }),
    signInReason
      ? el('p', { class: signInReason.refused ? 'error reason' : 'notice reason', role: signInReason.refused ? 'alert' : 'status', text: signInReason.text })
      : null,
    el('label', { for: 'token', text: 'Token' }),
    input,
    el(
      'ul',
      { class: 'hint' },
      el('li', {}, el('strong', { text: 'noauth: ' }), el('code', { text: 'user:project' }),
        ' or ', el('code', { text: 'user:project:role,role' })),
      el('li', {}, el('strong', { text: 'keystone: ' }), 'a token from ',
        el('code', { text: 'openstack token issue -f value -c id' })),
    ),
    el('button', { type: 'submit', text: 'Sign in' }),
    status,
    el('p', {
      class: 'hint',
      text: 'The token stays in this tab’s session storage: never in a URL, forgotten on sign-out.',
    }),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    signInReason = null;
    status.textContent = 'Checking the token…';
    try {
      await api('servers', { limit: 1 });
    } catch (e) {
      // 401 has already sent us back here with its reason; 403 only means listing is not
      // allowed, which says nothing about the actions this user may read.
      if (e.status === 401) return;
    }
    route();
  });
  show(form);
  input.focus();
}

function escapeRegex(text) {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
}

function searchView() {
  const input = el('input', { id: 'server-query', type: 'search', required: true, autocomplete: 'off' });
  const allProjects = el('input', { id: 'all-projects', type: 'checkbox' });
  const results = el('div', { id: 'results', 'aria-live': 'polite' });
  const form = el(
    'form',
    { class: 'card search' },
    el('h1', { text: 'Find a server' }),
    el('label', { for: 'server-query', text: 'Server UUID or name' }),
    el('div', { class: 'inline' }, input, el('button', { type: 'submit', text: 'Open' })),
    el('label', { class: 'check' }, allProjects, ' Every project (admins)'),
    results,
  );
  const mine = generation;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const query = input.value.trim();
    if (!query) return;
    if (UUID.test(query)) {
      location.hash = `#/servers/${enc(query)}`;
      return;
    }
    results.replaceChildren(el('p', { class: 'status', text: `Looking for “${query}”…` }));
    try {
      const params = { name: `^${escapeRegex(query)}$` };
      if (allProjects.checked) params.all_tenants = '1';
      const body = await api('servers/detail', params);
      if (mine !== generation) return;
      // The name is searched as a regular expression: keep exact matches, as the clients do.
      const found = (body.servers || []).filter((s) => s.name === query);
      if (found.length === 1) {
        location.hash = `#/servers/${enc(found[0].id)}`;
      } else if (found.length === 0) {
        results.replaceChildren(el('p', {
          class: 'empty',
          text: allProjects.checked
            ? `No server is named “${query}”.`
            : `No server named “${query}” in your project.`,
        }));
      } else {
        results.replaceChildren(chooser(found));
      }
    } catch (e) {
      if (mine === generation && e.status !== 401) results.replaceChildren(errorBox(e));
    }
  });
  show(form);
  input.focus();
}

function chooser(servers) {
  return el(
    'div',
    { class: 'chooser' },
    el('p', { text: `${servers.length} servers have this name; choose one:` }),
    el('ul', {}, ...servers.map((s) => el(
      'li',
      {},
      el(
        'a',
        { href: `#/servers/${enc(s.id)}`, class: 'choice' },
        el('strong', { text: s.name }),
        el('code', { text: s.id }),
        el('span', { text: [s.status, s.tenant_id].filter(Boolean).join(' · ') }),
        s.created ? timeNode(parseTime(s.created), true) : null,
      ),
    ))),
  );
}

// ------------------------------------------------------------------ one action

// Finished actions do not change, so each is read once per sign-in. Keyed by server too: one
// request (a multi-create) can leave the same request id on several servers.
const showCache = new Map();

function fetchAction(serverId, requestId) {
  const key = `${serverId} ${requestId}`;
  let pending = showCache.get(key);
  if (!pending) {
    pending = api(`servers/${enc(serverId)}/os-instance-actions/${enc(requestId)}`).then((body) => {
      const action = body.instanceAction;
      // A running action is read again next time, to see it finish.
      if ((action.events || []).some((e) => !e.finish_time)) showCache.delete(key);
      return action;
    });
    pending.catch(() => showCache.delete(key));
    showCache.set(key, pending);
  }
  return pending;
}

function resultOf(action, events) {
  if (events) {
    if (events.some((e) => String(e.result || '').toLowerCase() === 'error')) return 'failed';
    if (events.some((e) => !e.finish_time)) return 'running';
    return events.length ? 'succeeded' : 'no events';
  }
  // The list has no events, but a failed event leaves "Error" as the action's message.
  return action.message === 'Error' ? 'failed' : null;
}

function finishOf(action, events) {
  if (events && events.length) {
    if (events.some((e) => !e.finish_time)) return null;
    return events.map((e) => parseTime(e.finish_time)).reduce((a, b) => (b > a ? b : a));
  }
  return parseTime(action.updated_at);
}

function resultBadge(result) {
  if (!result) return el('span', { class: 'badge pending', text: '…', title: 'Expand to read the events' });
  return el('span', { class: `badge ${result.replace(' ', '-')}`, text: result });
}

function field(label, value) {
  return [el('dt', { text: label }), el('dd', {}, value)];
}

function textOrDash(value) {
  return value === null || value === undefined || value === '' ? el('span', { class: 'none', text: '—' }) : String(value);
}

function deepLink(serverId, requestId) {
  return `#/servers/${enc(serverId)}/actions/${enc(requestId)}`;
}

function actionDetail(serverId, action) {
  const events = action.events || [];
  const start = parseTime(action.start_time);
  const finish = finishOf(action, events);
  return el(
    'div',
    { class: 'detail-body' },
    el(
      'dl',
      { class: 'fields' },
      ...field('Request ID', el('code', { text: action.request_id })),
      ...field('Result', resultBadge(resultOf(action, events))),
      ...field('Start', timeNode(start, true)),
      ...field('Finish', timeNode(finish, true)),
      ...field('Duration', start && finish ? duration(finish - start) : '—'),
      ...field('Message', textOrDash(action.message)),
      ...field('Link', el('a', { href: deepLink(serverId, action.request_id), text: 'Link to this action' })),
    ),
    timeline(action, events),
  );
}

function timeline(action, events) {
  if (!events.length) return el('p', { class: 'empty', text: 'No events recorded for this action.' });
  const now = Date.now();
  const sorted = [...events].sort((a, b) => (parseTime(a.start_time) || 0) - (parseTime(b.start_time) || 0));
  const starts = sorted.map((e) => parseTime(e.start_time)).filter(Boolean);
  const ends = sorted.map((e) => (e.finish_time ? parseTime(e.finish_time) : new Date(now))).filter(Boolean);
  const actionStart = parseTime(action.start_time);
  const spanStart = Math.min(...starts.map(Number), actionStart ? Number(actionStart) : Infinity);
  const spanEnd = Math.max(...ends.map(Number), spanStart);
  const span = spanEnd - spanStart;
  return el(
    'ol',
    { class: 'timeline', 'aria-label': 'Events, oldest first' },
    ...sorted.map((e) => {
      const s = parseTime(e.start_time);
      const f = e.finish_time ? parseTime(e.finish_time) : null;
      const result = String(e.result || '').toLowerCase() === 'error' ? 'failed' : f ? 'succeeded' : 'running';
      const bar = el('div', { class: `bar ${result}${f ? '' : ' open'}` });
      const from = s ? Number(s) : spanStart;
      const to = f ? Number(f) : now;
      // Through the CSSOM, which the style-src policy allows (a style attribute it would not).
      bar.style.left = span > 0 ? `${((from - spanStart) / span) * 100}%` : '0%';
      bar.style.width = span > 0 ? `${Math.max(((to - from) / span) * 100, 0.5)}%` : '100%';
      const extra = [];
      if ('hostId' in e) extra.push(...field('hostId', textOrDash(e.hostId)));
      if ('host' in e) extra.push(...field('Host', textOrDash(e.host)));
      if ('details' in e) extra.push(...field('Details', textOrDash(e.details)));
      return el(
        'li',
        { class: `event ${result}` },
        el(
          'div',
          { class: 'event-head' },
          el('span', { class: 'event-name', text: e.event }),
          el('span', { class: `badge ${result}`, text: e.result || 'unfinished' }),
          el('span', { class: 'event-times' }, timeNode(s, false), ' → ',
            f ? timeNode(f, false) : el('span', { text: 'now (unfinished)' }),
            el('span', { class: 'age', text: s ? duration((f ? Number(f) : now) - Number(s)) : '' })),
        ),
        el('div', { class: 'track', 'aria-hidden': 'true' }, bar),
        extra.length ? el('dl', { class: 'fields' }, ...extra) : null,
        e.traceback ? el('pre', { class: 'traceback', tabindex: '0', 'aria-label': 'Traceback', text: e.traceback }) : null,
      );
    }),
  );
}

// ------------------------------------------------------------------ a server's actions

const COLUMNS = ['Action', 'Request ID', 'User', 'Project', 'Start', 'Finish', 'Duration', 'Result', 'Message'];

function copyButton(text) {
  const button = el('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${text}`, text: 'Copy' });
  button.addEventListener('click', async (event) => {
    event.stopPropagation();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Select it';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  return button;
}

function serverView(serverId, linkedRequestId) {
  const mine = generation;
  const title = el('h1', { tabindex: '-1' }, 'Server ', el('code', { text: serverId }));
  const meta = el('p', { class: 'server-meta' });
  const since = el('input', { id: 'since', type: 'datetime-local', step: '1' });
  const before = el('input', { id: 'before', type: 'datetime-local', step: '1' });
  const nameFilter = el('input', { id: 'action-filter', type: 'search', placeholder: 'e.g. reboot', autocomplete: 'off' });
  const filterNote = el('p', { class: 'hint', 'aria-live': 'polite' });
  const linked = el('section', { class: 'linked', hidden: !linkedRequestId });
  const list = el('ol', { class: 'actions', 'aria-label': 'Actions, newest first' });
  const status = el('div', { class: 'list-status', 'aria-live': 'polite' });
  const more = el('button', { type: 'button', class: 'more', text: 'Load more' });
  const sentinel = el('div', { class: 'sentinel', 'aria-hidden': 'true' });
  const windowForm = el(
    'form',
    { class: 'filters' },
    el('div', {}, el('label', { for: 'since', text: 'Changed since' }), since),
    el('div', {}, el('label', { for: 'before', text: 'Changed before' }), before),
    el('div', { class: 'buttons' },
      el('button', { type: 'submit', text: 'Apply' }),
      el('button', { type: 'button', class: 'quiet', text: 'Clear', onclick: () => { since.value = ''; before.value = ''; reset(); } })),
    el('div', { class: 'name-filter' }, el('label', { for: 'action-filter', text: 'Action name (loaded rows)' }), nameFilter),
  );
  windowForm.addEventListener('submit', (event) => { event.preventDefault(); reset(); });

  show(
    el('nav', { class: 'crumbs' }, el('a', { href: '#/', text: '← Find another server' })),
    el('section', { class: 'server' }, title, meta),
    linked,
    windowForm,
    filterNote,
    el('div', { class: 'head', 'aria-hidden': 'true' }, ...COLUMNS.map((c) => el('span', { text: c }))),
    list,
    status,
    more,
    sentinel,
  );
  title.focus();

  api(`servers/${enc(serverId)}`).then((body) => {
    if (mine !== generation || !body || !body.server) return;
    const s = body.server;
    title.replaceChildren(s.name ? el('span', { text: s.name }) : 'Server', ' ', el('code', { text: s.id }));
    meta.replaceChildren([s.status, s.tenant_id && `project ${s.tenant_id}`].filter(Boolean).join(' · '));
  }, () => {
    // Deleted servers and other projects' servers are 404 here yet may still have actions.
  });

  if (linkedRequestId) {
    linked.replaceChildren(el('h2', { text: 'Linked action' }), el('p', { class: 'status', text: 'Loading…' }));
    fetchAction(serverId, linkedRequestId).then((action) => {
      if (mine !== generation) return;
      linked.replaceChildren(
        el('h2', {}, el('span', { text: action.action }), ' ', el('code', { text: action.request_id })),
        el('p', { class: 'row-meta', text: `${action.user_id} · ${action.project_id}` }),
        actionDetail(serverId, action),
      );
    }, (e) => {
      if (mine === generation && e.status !== 401) linked.replaceChildren(el('h2', { text: 'Linked action' }), errorBox(e));
    });
  }

  // The list's own state; reset() starts it over for a new time window.
  let rows = [];
  let marker = null;
  let ended = false;
  let loading = false;
  let runId = 0;
  const queue = [];
  let running = 0;

  const rowObserver = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const row = entry.target.__row;
      row.visible = entry.isIntersecting;
      if (row.visible && !row.events && !row.queued) {
        row.queued = true;
        queue.push(row);
      }
    }
    pump();
  });
  const sentinelObserver = new IntersectionObserver((entries) => {
    // Paging on its own would read a whole history in search of a rare name: not while filtering.
    if (entries.some((e) => e.isIntersecting) && !nameFilter.value.trim()) loadPage();
  }, { rootMargin: '400px 0px' });
  sentinelObserver.observe(sentinel);
  cleanups.push(() => { rowObserver.disconnect(); sentinelObserver.disconnect(); });

  function pump() {
    while (running < SHOW_CONCURRENCY && queue.length) {
      const row = queue.shift();
      row.queued = false;
      if (!row.visible || row.events || row.run !== runId) continue;
      running += 1;
      fetchAction(serverId, row.action.request_id).then((action) => {
        if (mine === generation) setEvents(row, action);
      }, (e) => {
        if (e.status !== 401) row.cells.result.replaceChildren(el('span', { class: 'badge unknown', text: '?', title: e.message }));
      }).finally(() => {
        running -= 1;
        pump();
      });
    }
  }

  function setEvents(row, action) {
    row.events = action.events || [];
    row.full = action;
    const start = parseTime(row.action.start_time);
    const finish = finishOf(row.action, row.events);
    row.cells.result.replaceChildren(resultBadge(resultOf(row.action, row.events)));
    row.cells.finish.replaceChildren(timeNode(finish, false));
    row.cells.duration.textContent = start && finish ? duration(finish - start) : '—';
    if (row.open) row.detail.replaceChildren(actionDetail(serverId, action));
  }

  function toggle(row) {
    row.open = !row.open;
    row.button.setAttribute('aria-expanded', String(row.open));
    row.item.classList.toggle('open', row.open);
    row.detail.hidden = !row.open;
    if (!row.open) return;
    if (row.full) {
      row.detail.replaceChildren(actionDetail(serverId, row.full));
      return;
    }
    row.detail.replaceChildren(el('p', { class: 'status', text: 'Loading events…' }));
    fetchAction(serverId, row.action.request_id).then((action) => {
      if (mine === generation) setEvents(row, action);
    }, (e) => {
      if (mine === generation && e.status !== 401) row.detail.replaceChildren(errorBox(e, () => { toggle(row); toggle(row); }));
    });
  }

  function cell(name, label, ...children) {
    return el('span', { class: `c-${name}`, 'data-label': label }, ...children);
  }

  function makeRow(action, index) {
    const start = parseTime(action.start_time);
    const finish = parseTime(action.updated_at);
    const detailId = `detail-${runId}-${index}`;
    const button = el('button', {
      type: 'button', class: 'expand', 'aria-expanded': 'false', 'aria-controls': detailId, text: action.action,
    });
    const cells = {
      finish: cell('finish', 'Finish', timeNode(finish, false)),
      duration: cell('duration', 'Duration', start && finish ? duration(finish - start) : '—'),
      result: cell('result', 'Result', resultBadge(resultOf(action, null))),
    };
    const summary = el(
      'div',
      { class: 'summary' },
      cell('action', 'Action', button),
      cell('rid', 'Request ID', el('code', { text: action.request_id }), copyButton(action.request_id)),
      cell('user', 'User', textOrDash(action.user_id)),
      cell('project', 'Project', textOrDash(action.project_id)),
      cell('start', 'Start', timeNode(start, true)),
      cells.finish,
      cells.duration,
      cells.result,
      cell('message', 'Message', textOrDash(action.message)),
    );
    const detail = el('div', { class: 'detail', id: detailId, hidden: true });
    const item = el('li', { class: 'action', 'data-request-id': action.request_id }, summary, detail);
    if (action.request_id === linkedRequestId) item.classList.add('linked-row');
    const row = { action, item, button, detail, cells, open: false, events: null, full: null, visible: false, queued: false, run: runId };
    item.__row = row;
    summary.addEventListener('click', (event) => {
      if (event.target.closest('button.copy') || event.target.closest('button.expand')) return;
      if (getSelection().toString()) return; // selecting text to copy is not a click to expand
      toggle(row);
    });
    button.addEventListener('click', () => toggle(row));
    return row;
  }

  function applyNameFilter() {
    const wanted = nameFilter.value.trim().toLowerCase();
    let shown = 0;
    for (const row of rows) {
      const hit = !wanted || row.action.action.toLowerCase().includes(wanted);
      row.item.hidden = !hit;
      if (hit) shown += 1;
    }
    filterNote.textContent = wanted
      ? `${shown} of ${rows.length} loaded actions match; “Load more” reads further pages.`
      : '';
  }
  nameFilter.addEventListener('input', applyNameFilter);

  // Up and down move between rows, as in a list.
  list.addEventListener('keydown', (event) => {
    if (!event.target.classList.contains('expand') || !['ArrowDown', 'ArrowUp'].includes(event.key)) return;
    const visible = rows.filter((r) => !r.item.hidden);
    const at = visible.findIndex((r) => r.button === event.target);
    const next = visible[at + (event.key === 'ArrowDown' ? 1 : -1)];
    if (next) {
      event.preventDefault();
      next.button.focus();
    }
  });

  function windowParams() {
    const params = {};
    const asIso = (input) => {
      const date = input.value ? new Date(input.value) : null;
      return date && !Number.isNaN(date.getTime()) ? date.toISOString() : null;
    };
    params['changes-since'] = asIso(since);
    params['changes-before'] = asIso(before);
    return params;
  }

  function updateStatus(error) {
    more.hidden = ended || loading || Boolean(error);
    if (error) {
      status.replaceChildren(errorBox(error, loadPage));
    } else if (loading) {
      status.replaceChildren(el('p', { class: 'status', text: 'Loading actions…' }));
    } else if (ended && rows.length === 0) {
      const windowed = since.value || before.value;
      status.replaceChildren(el('p', {
        class: 'empty',
        text: windowed ? 'No action changed in this time window.' : 'No actions recorded for this server.',
      }));
    } else if (ended) {
      status.replaceChildren(el('p', { class: 'end', text: `End of history · ${rows.length} actions` }));
    } else {
      status.replaceChildren(el('p', { class: 'status', text: `${rows.length} actions loaded` }));
    }
  }

  async function loadPage() {
    if (loading || ended || mine !== generation) return;
    loading = true;
    updateStatus();
    const run = runId;
    let body;
    try {
      body = await api(`servers/${enc(serverId)}/os-instance-actions`, { limit: PAGE, marker, ...windowParams() });
    } catch (e) {
      if (run !== runId || mine !== generation) return;
      loading = false;
      if (e.status !== 401) updateStatus(e);
      return;
    }
    if (run !== runId || mine !== generation) return;
    const actions = body.instanceActions || [];
    const next = (body.links || []).find((l) => l.rel === 'next');
    let nextMarker = null;
    if (next) {
      try {
        nextMarker = new URL(next.href).searchParams.get('marker');
      } catch {
        nextMarker = null;
      }
    }
    if (!nextMarker && next && actions.length) nextMarker = actions[actions.length - 1].request_id;
    ended = !next || actions.length === 0;
    marker = nextMarker;

    const started = performance.now();
    const fragment = document.createDocumentFragment();
    const fresh = actions.map((a, i) => makeRow(a, rows.length + i));
    for (const row of fresh) fragment.append(row.item);
    list.append(fragment);
    rows.push(...fresh);
    applyNameFilter();
    void list.offsetHeight; // the layout is part of rendering
    const spent = performance.now() - started;
    if (actions.length) window.__uiTimings.pages.push({ rows: actions.length, ms: spent });
    document.documentElement.dataset.lastRenderMs = spent.toFixed(2);

    for (const row of fresh) rowObserver.observe(row.item);
    loading = false;
    updateStatus();
    // A short first page can leave the sentinel on screen without a new intersection.
    if (!ended && !nameFilter.value.trim()) {
      requestAnimationFrame(() => {
        const box = sentinel.getBoundingClientRect();
        if (box.top < window.innerHeight + 400 && run === runId) loadPage();
      });
    }
  }

  function reset() {
    runId += 1;
    rows = [];
    marker = null;
    ended = false;
    loading = false;
    queue.length = 0;
    rowObserver.disconnect();
    list.replaceChildren();
    loadPage();
  }

  more.addEventListener('click', () => loadPage());
  loadPage();
}

window.addEventListener('hashchange', route);
route();
