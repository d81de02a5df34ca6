// GET /admin: admins sign in (setting a new password the first time), see
// tenants by status, open one's details and history, and act on it.
import {
  ApiError,
  Form,
  PASSWORD_POLICIES,
  api,
  cognitoUser,
  completeNewPassword,
  currentSession,
  el,
  explainCognitoError,
  formatDate,
  openPool,
  showView,
  signIn,
  signInForm,
  signOut,
  timeElement,
  timeLeft,
} from './common.js';

const REFRESH_MS = 15000;
const PAGE_SIZE = 50;
const FAILURE_LOOKUPS = 20; // failed tenants whose failureReason the list fetches

const SECTIONS = [
  { status: 'onboarding', title: 'Awaiting approval', empty: 'No tenant is waiting for a decision.' },
  { status: 'active', title: 'Active', empty: 'No active tenant.' },
  { status: 'rejected', title: 'Rejected', empty: 'No rejected tenant.' },
  { status: 'timeout', title: 'Timed out', empty: 'No tenant timed out.' },
  { status: 'failed', title: 'Failed', empty: 'No failed onboarding.' },
  { status: 'offboarding', title: 'Offboarding', empty: 'No tenant is being offboarded.' },
  { status: 'offboarded', title: 'Offboarded', empty: 'No offboarded tenant.' },
];

const $ = (id) => document.getElementById(id);
const views = {
  signin: $('signin-view'),
  newPassword: $('new-password-view'),
  console: $('console-view'),
};

let pool = null;
let challengedUser = null; // the user asked for a new password
let lists = {}; // listKey() -> {tenants, nextToken, error}: the list shown
let failureReasons = {}; // reasonKey(tenant) -> failureReason (from the detail route)
let selected = null; // the tenant whose details are open
let refreshTimer = null;

function statusLabel(tenant) {
  if (tenant.status === 'onboarding') return tenant.decideBy ? 'Awaiting approval' : 'Setting up';
  const section = SECTIONS.find((s) => s.status === tenant.status);
  return section ? section.title : tenant.status;
}

function tone(status) {
  return { active: 'good', rejected: 'bad', timeout: 'bad', failed: 'bad', offboarded: 'neutral' }[status] || 'waiting';
}

// --- signing in --------------------------------------------------------------------------

const signinForm = signInForm();

signinForm.onSubmit(async () => {
  const credentials = signinForm.credentials();
  if (!credentials) return;
  const { email, password } = credentials;
  const user = cognitoUser(pool, email);
  let result;
  try {
    result = await signIn(user, email, password);
  } catch (error) {
    const { field, message } = explainCognitoError(error, 'signin');
    signinForm.showError(field, message);
    return;
  }
  signinForm.form.reset();
  if (result.newPasswordRequired) {
    challengedUser = user;
    newPasswordForm.clearErrors();
    showView(views, 'newPassword');
    return;
  }
  enterConsole();
});

const newPasswordForm = new Form($('new-password-form'), { newPassword: 'new-password' }, $('new-password-form-error'));

newPasswordForm.onSubmit(async () => {
  if (!newPasswordForm.requireFilled({ newPassword: 'Choose a new password.' })) return;
  try {
    await completeNewPassword(challengedUser, newPasswordForm.value('newPassword'));
  } catch (error) {
    const { field, message } = explainCognitoError(error, 'newPassword', PASSWORD_POLICIES.admin);
    if ((error.code || error.name) === 'NotAuthorizedException') {
      goToSignIn(message);
      return;
    }
    newPasswordForm.showError(field, message);
    return;
  }
  challengedUser = null;
  newPasswordForm.form.reset();
  enterConsole();
});

function goToSignIn(message) {
  clearInterval(refreshTimer);
  refreshTimer = null;
  challengedUser = null;
  newPasswordForm.form.reset(); // no password stays in the page for the next person
  showView(views, 'signin');
  const error = $('signin-form-error');
  error.textContent = message || '';
  error.hidden = !message;
}

$('sign-out').addEventListener('click', () => {
  signOut(pool);
  closeDetail();
  goToSignIn('You are signed out.');
});

async function enterConsole() {
  const current = await currentSession(pool);
  $('admin-email').textContent = current ? current.session.getIdToken().decodePayload().email || '' : '';
  showView(views, 'console');
  renderLists(); // the tabs at once; their counts and the list as they come
  await Promise.all([refreshLists(), openLinkedTenant()]);
  clearInterval(refreshTimer);
  refreshTimer = setInterval(() => {
    if (document.visibilityState !== 'hidden' && !views.console.hidden) refreshLists();
  }, REFRESH_MS);
}

/** An API call that sends a signed-out admin back to the sign-in form. */
async function call(path, options) {
  try {
    return await api(pool, path, options);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut(pool);
      closeDetail();
      goToSignIn('Your session ended: sign in again.');
    }
    throw error;
  }
}

// --- the lists: one status at a time, or a search ----------------------------------------------

const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

let current = 'onboarding'; // the status whose tab is open
let sort = 'created';
let search = null; // {query, kind: 'email' | 'tenantId'} while a search is shown
let counts = {}; // status -> how many tenants it holds (GET tenants/counts)

function listQuery(nextToken) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (search && search.kind === 'tenantId') query.set('tenantId', search.query);
  else if (search) query.set('email', search.query);
  else {
    query.set('status', current);
    query.set('sort', sort);
  }
  if (nextToken) query.set('nextToken', nextToken);
  return `tenants?${query}`;
}

/** What the list shows now: a key that changes when the admin asks for another list. */
const listKey = () => (search ? `search:${search.kind}:${search.query}` : `status:${current}:${sort}`);

let refreshing = null; // the refresh in flight
let refreshAgain = false; // asked for meanwhile: the one in flight may answer from before

/** Refresh the counts and the list; one request set at a time, and none answers from before the ask. */
function refreshLists() {
  if (refreshing) {
    refreshAgain = true;
    return refreshing;
  }
  refreshing = (async () => {
    try {
      do {
        refreshAgain = false;
        await loadLists();
      } while (refreshAgain);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function loadLists() {
  const key = listKey();
  const [counted, page] = await Promise.all([
    call('tenants/counts').then((answer) => answer.counts || {}, () => null),
    call(listQuery()).then(
      (answer) => ({ tenants: answer.tenants || [], nextToken: answer.nextToken || null }),
      (error) => ({ tenants: [], nextToken: null, error: error.message, code: error.status }),
    ),
  ]);
  if (page.code === 401) return;
  if (key !== listKey()) {
    refreshAgain = true; // the admin chose another list meanwhile
    return;
  }
  if (counted) counts = counted;
  lists = { [key]: page };
  await lookUpFailureReasons();
  renderLists();
  $('console-status').textContent = `Updated at ${formatTime(new Date())}.`;
}

function formatTime(date) {
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short' });
}

/** A failure is one version of the record: retried and failed again, it has a new reason. */
const reasonKey = (tenant) => `${tenant.tenantId}@${tenant.updatedAt}`;

/** The list route does not carry failureReason: ask the detail route for the first few. */
async function lookUpFailureReasons() {
  const page = lists[listKey()];
  const failed = (page ? page.tenants : [])
    .filter((t) => t.status === 'failed' && !(reasonKey(t) in failureReasons))
    .slice(0, FAILURE_LOOKUPS);
  await Promise.all(
    failed.map(async (tenant) => {
      try {
        const detail = await call(`tenants/${encodeURIComponent(tenant.tenantId)}`);
        failureReasons[reasonKey(tenant)] = detail.failureReason || '';
      } catch (error) {
        /* shown when the tenant is opened */
      }
    }),
  );
}

function shownTenants() {
  const page = lists[listKey()];
  const tenants = [...(page ? page.tenants : [])];
  if (!search && current === 'onboarding' && sort === 'created') {
    // awaiting a decision first, the closest deadline first; then those still being set up
    tenants.sort((a, b) => {
      if (a.decideBy && b.decideBy) return a.decideBy.localeCompare(b.decideBy);
      return a.decideBy ? -1 : b.decideBy ? 1 : 0;
    });
  }
  return tenants;
}

function tenantRow(tenant) {
  const row = el('li', null, { className: 'tenant-row' });
  const isSelected = selected && selected.tenantId === tenant.tenantId;
  if (isSelected) row.classList.add('selected');
  const open = el('button', tenant.name || '(no name)', {
    type: 'button',
    className: 'tenant-open',
    'data-focus-key': `open:${tenant.tenantId}`,
    'aria-current': isSelected ? 'true' : null,
  });
  open.addEventListener('click', () => openTenant(tenant.tenantId, open));
  row.append(open, el('p', tenant.email, { className: 'tenant-email wrap' }));
  const meta = el('p', null, { className: 'tenant-meta' });
  if (search) {
    meta.append(el('span', statusLabel(tenant), { className: 'badge small', 'data-tone': tone(tenant.status) }), ' ');
  }
  if (tenant.status === 'onboarding' && tenant.decideBy) {
    meta.append(el('strong', timeLeft(tenant.decideBy)), ' · decide by ', timeElement(tenant.decideBy));
  } else if (tenant.status === 'onboarding') {
    meta.append('Setting up · signed up ', timeElement(tenant.createdAt));
  } else if (sort === 'created' && !search) {
    meta.append('Signed up ', timeElement(tenant.createdAt), ' · changed ', timeElement(tenant.updatedAt || tenant.createdAt));
  } else {
    meta.append('Changed ', timeElement(tenant.updatedAt || tenant.createdAt));
  }
  row.append(meta);
  const reason = failureReasons[reasonKey(tenant)];
  if (tenant.status === 'failed' && reason) row.append(el('p', reason, { className: 'tenant-reason wrap' }));
  return row;
}

function renderTabs() {
  const tabs = $('tabs');
  if (!tabs.children.length) {
    for (const section of SECTIONS) {
      const tab = el('button', section.title, {
        type: 'button', role: 'tab', id: `tab-${section.status}`, className: 'tab',
        'aria-controls': 'list-panel', 'data-status': section.status,
      });
      tab.append(' ', el('span', '', { className: 'count' }));
      tab.addEventListener('click', () => chooseStatus(section.status));
      tab.addEventListener('keydown', tabKeys);
      tabs.append(tab);
    }
  }
  for (const tab of tabs.children) {
    const status = tab.dataset.status;
    const chosen = !search && status === current;
    tab.setAttribute('aria-selected', chosen ? 'true' : 'false');
    // one tab in the Tab order (the chosen one; the first while a search is shown)
    tab.tabIndex = chosen || (search && status === SECTIONS[0].status) ? 0 : -1;
    tab.querySelector('.count').textContent = counts[status] === undefined ? '' : String(counts[status]);
  }
}

/** Arrow keys, Home and End move between the tabs (the WAI-ARIA tabs pattern). */
function tabKeys(event) {
  const order = SECTIONS.map((s) => s.status);
  const at = order.indexOf(event.currentTarget.dataset.status);
  const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: order.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  chooseStatus(order[(next + order.length) % order.length]);
  $(`tab-${current}`).focus();
}

function chooseStatus(status) {
  current = status;
  search = null;
  $('search').value = '';
  renderLists();
  refreshLists();
}

function renderLists() {
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focusKey
    : null;
  renderTabs();
  const section = SECTIONS.find((s) => s.status === current);
  const page = lists[listKey()];
  const tenants = shownTenants();
  const heading = $('list-heading');
  $('list-panel').setAttribute('aria-labelledby', search ? 'list-heading' : `tab-${current}`);
  $('sort-field').hidden = Boolean(search);
  $('clear-search').hidden = !search;
  if (search) {
    const found = page ? `${tenants.length}${page.nextToken ? '+' : ''}` : '…';
    heading.textContent = `${found} found for “${search.query}”`;
  } else {
    heading.textContent = section.title;
  }
  const body = $('list-body');
  body.replaceChildren();
  if (!page) {
    body.append(el('p', 'Loading…', { className: 'muted' }));
  } else if (page.error) {
    body.append(el('p', page.error, { className: 'form-error' }));
  } else if (!tenants.length) {
    body.append(el('p', search ? 'No tenant matches. An email search looks at the beginning of the address.' : section.empty, { className: 'muted' }));
  } else {
    const list = el('ul', null, { className: 'tenant-list' });
    for (const tenant of tenants) list.append(tenantRow(tenant));
    body.append(list);
  }
  if (page && page.nextToken) {
    const more = el('button', search ? 'Show more results' : `Show more ${section.title.toLowerCase()}`, {
      type: 'button',
      className: 'more',
      'data-focus-key': 'more',
    });
    more.addEventListener('click', () => showMore());
    body.append(more);
  }
  if (focused) {
    const again = $('list-pane').querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

async function showMore() {
  const key = listKey();
  const page = lists[key];
  try {
    const next = await call(listQuery(page.nextToken));
    page.tenants = page.tenants.concat(next.tenants || []);
    page.nextToken = next.nextToken || null;
  } catch (error) {
    page.error = error.message;
  }
  await lookUpFailureReasons();
  if (key === listKey()) renderLists();
}

$('sort').addEventListener('change', () => {
  sort = $('sort').value;
  renderLists();
  refreshLists();
});

const searchForm = new Form($('search-form'), { search: 'search' });

searchForm.onSubmit(async () => {
  const query = $('search').value.trim();
  if (!query) {
    searchForm.showError('search', 'Type an email address, its beginning, or a tenant id.');
    return;
  }
  search = { query, kind: TENANT_ID.test(query) ? 'tenantId' : 'email' };
  renderLists();
  await refreshLists();
  const page = lists[listKey()];
  if (page && page.error) searchForm.showError('search', page.error);
  else $('list-heading').focus();
});

$('clear-search').addEventListener('click', () => {
  chooseStatus(current);
  $('search').focus();
});

$('refresh').addEventListener('click', async () => {
  await refreshLists();
  if (selected) await loadDetail(selected.tenantId);
});

// --- one tenant ------------------------------------------------------------------------------

let openedFrom = null; // the list button to return focus to

async function openTenant(tenantId, button) {
  openedFrom = button || null;
  setResult('', null);
  $('action-reason').value = '';
  actionForm.clearErrors();
  const loaded = await loadDetail(tenantId);
  if (loaded) {
    $('detail').hidden = false;
    $('console').classList.add('showing-detail'); // on a phone the details take the list's place
    if (location.hash.slice(1) !== tenantId) window.history.replaceState(null, '', `#${tenantId}`);
    renderLists();
    $('detail').scrollIntoView({ block: 'start' });
    $('detail-heading').focus({ preventScroll: true });
  }
  return loaded;
}

async function loadDetail(tenantId) {
  let tenant;
  try {
    tenant = await call(`tenants/${encodeURIComponent(tenantId)}`);
  } catch (error) {
    $('console-status').textContent = error.status === 404 ? 'That tenant no longer exists.' : error.message;
    return false;
  }
  selected = tenant;
  renderDetail(tenant);
  return true;
}

function closeDetail() {
  selected = null;
  $('detail').hidden = true;
  $('console').classList.remove('showing-detail');
  if (location.hash) window.history.replaceState(null, '', location.href.split('#')[0]);
}

$('close-detail').addEventListener('click', () => {
  const back = openedFrom && openedFrom.dataset.focusKey;
  closeDetail();
  renderLists();
  const button = back && $('list-pane').querySelector(`[data-focus-key="${CSS.escape(back)}"]`);
  if (button) button.focus();
  else $('list-heading').focus();
});

/** /admin#<tenantId> opens that tenant: a link in a notification, or one an admin shares. */
async function openLinkedTenant() {
  const tenantId = decodeURIComponent(location.hash.slice(1));
  if (!TENANT_ID.test(tenantId) || (selected && selected.tenantId === tenantId)) return;
  if (!(await openTenant(tenantId, null))) {
    $('console-status').textContent = `No tenant ${tenantId}: the link may be mistyped, or the tenant gone.`;
  }
}

window.addEventListener('hashchange', () => {
  if (!views.console.hidden) openLinkedTenant();
});

function fact(list, term, value) {
  if (value === undefined || value === null || value === '') return;
  const row = el('div');
  const dd = el('dd', null, { className: 'wrap' });
  if (value instanceof Node) dd.append(value);
  else dd.textContent = String(value);
  row.append(el('dt', term), dd);
  list.append(row);
}

function history(tenant) {
  const entries = [];
  const add = (at, text) => at && entries.push({ at, text });
  add(tenant.createdAt, 'Signed up; onboarding started');
  for (const retry of tenant.retries || []) {
    const was = statusLabel({ status: retry.previousStatus }).toLowerCase();
    add(retry.retriedAt, `Attempt ${retry.attempt} started by ${retry.retriedBy || 'an admin'} (it had ${was}${retry.previousReason ? `: ${retry.previousReason}` : ''})`);
  }
  const decision = tenant.decision;
  if (decision) {
    const verb = decision.status === 'approved' ? 'Approved' : 'Rejected';
    add(decision.decidedAt, `${verb} by ${decision.decidedBy || 'an admin'}${decision.reason ? `: ${decision.reason}` : ''}`);
  }
  const released = tenant.released || {};
  if (released.user) {
    add(released.user.at, released.user.existed === false ? 'Login was already gone' : 'Login disabled');
  }
  if (released.stripeCustomer) {
    const id = released.stripeCustomer.customerId ? ` ${released.stripeCustomer.customerId}` : '';
    add(released.stripeCustomer.at, released.stripeCustomer.existed === false
      ? `Stripe customer${id} was already gone`
      : `Stripe customer${id} deleted`);
  }
  if (released.contactList) {
    const place = released.contactList.topic
      ? `contact-list topic ${released.contactList.topic}`
      : `contact list ${released.contactList.list || ''}`.trim();
    add(released.contactList.at, released.contactList.existed === false
      ? `SES ${place} was already gone`
      : `SES ${place} released`);
  }
  if (tenant.releaseFailure) {
    add(tenant.releaseFailure.at, `Giving back ${tenant.releaseFailure.what || 'a resource'} failed: ${tenant.releaseFailure.reason || ''}`);
  }
  if (tenant.offboarding) {
    const request = tenant.offboarding;
    add(request.requestedAt, `Offboarding requested by ${request.requestedBy || 'an admin'}${request.reason ? `: ${request.reason}` : ''}`);
  }
  if (tenant.offboardingFailure) {
    add(tenant.offboardingFailure.at, `Offboarding failed: ${tenant.offboardingFailure.reason || ''}`);
  }
  if (tenant.offboardedAt) {
    add(tenant.offboardedAt, `Offboarded by ${tenant.offboardedBy || 'an admin'}${tenant.offboardReason ? `: ${tenant.offboardReason}` : ''}`);
  }
  entries.sort((a, b) => String(a.at).localeCompare(String(b.at)));
  return entries;
}

function actionsFor(tenant) {
  switch (tenant.status) {
    case 'onboarding':
      return tenant.decideBy ? ['approve', 'reject'] : [];
    case 'failed':
    case 'timeout':
      return ['retry', 'offboard'];
    case 'active':
    case 'rejected':
      return ['offboard'];
    default:
      return [];
  }
}

function renderDetail(tenant) {
  $('detail-heading').textContent = tenant.name || '(no name)';
  const body = $('detail-body');
  body.replaceChildren();

  const badge = el('p', statusLabel(tenant), { className: 'badge', 'data-tone': tone(tenant.status) });
  body.append(badge);

  const facts = el('dl', null, { className: 'facts' });
  fact(facts, 'Email', tenant.email);
  fact(facts, 'Tenant id', tenant.tenantId);
  fact(facts, 'Signed up', timeElement(tenant.createdAt));
  fact(facts, 'Last change', timeElement(tenant.updatedAt));
  if (tenant.decideBy) {
    const deadline = el('span');
    deadline.append(timeElement(tenant.decideBy), ` (${timeLeft(tenant.decideBy)})`);
    fact(facts, tenant.status === 'onboarding' ? 'Decide by' : 'Deadline was', deadline);
  }
  fact(facts, 'Attempts', tenant.attempts || 1);
  fact(facts, 'Failure reason', tenant.failureReason);
  if (tenant.releaseFailure) fact(facts, 'Release failure', tenant.releaseFailure.reason);
  if (tenant.offboardingFailure) fact(facts, 'Offboarding failure', tenant.offboardingFailure.reason);
  body.append(facts);

  body.append(el('h3', 'Decision'));
  if (tenant.decision) {
    const decision = el('dl', null, { className: 'facts' });
    fact(decision, 'Decision', tenant.decision.status === 'approved' ? 'Approved' : 'Rejected');
    fact(decision, 'Reason', tenant.decision.reason);
    fact(decision, 'Decided by', tenant.decision.decidedBy);
    fact(decision, 'Decided at', timeElement(tenant.decision.decidedAt));
    body.append(decision);
  } else {
    body.append(el('p', 'No decision yet.', { className: 'muted' }));
  }

  body.append(el('h3', 'History'));
  const entries = history(tenant);
  const list = el('ol', null, { className: 'history' });
  for (const entry of entries) {
    const item = el('li');
    item.append(timeElement(entry.at), el('span', entry.text, { className: 'wrap' }));
    list.append(item);
  }
  body.append(list);

  const available = actionsFor(tenant);
  for (const button of document.querySelectorAll('#action-form [data-action]')) {
    button.hidden = !available.includes(button.dataset.action);
  }
  $('reason-field').hidden = available.length === 0; // each set of actions has one taking a reason
  $('no-actions').hidden = available.length > 0;
}

// --- actions ----------------------------------------------------------------------------------

function setResult(message, kind) {
  const result = $('action-result');
  result.textContent = message;
  if (kind) result.dataset.tone = kind;
  else delete result.dataset.tone;
}

const actionForm = new Form($('action-form'), { reason: 'action-reason' });

let acting = false;

// What Reject and Offboard do (chalicelib/releases.py, offboarding.json), said before they do it.
const CONSEQUENCES = {
  reject: [
    'Its onboarding ends as rejected; a rejection cannot be undone or retried.',
    'Its login is disabled, its Stripe customer (if it has one) is deleted, and its contact list is given back.',
  ],
  offboard: [
    'Its Stripe customer (if it has one) is deleted, its contact list is given back, and then its login is disabled.',
    'Its record is kept, as offboarded; an offboarding cannot be undone.',
  ],
};

/**
 * Ask, in a modal <dialog>, whether to reject or offboard `tenant`; resolves true
 * only when the admin presses the named button. Cancel or Escape change nothing,
 * and the focus goes back where it was.
 */
function confirmed(action, tenant, reason) {
  const dialog = $('confirm-dialog');
  const verb = action === 'reject' ? 'Reject' : 'Offboard';
  const name = tenant.name || '(no name)';
  $('confirm-heading').textContent = `${verb} ${name}?`;
  const what = $('confirm-what');
  what.replaceChildren(
    el('p', `${name} (${tenant.email || 'no email'}), tenant ${tenant.tenantId}.`, { className: 'wrap' }),
    ...CONSEQUENCES[action].map((line) => el('p', line)),
    el('p', `Reason: ${reason}`, { className: 'wrap quoted' }),
  );
  $('confirm-ok').textContent = `${verb} ${name}`;
  const back = document.activeElement;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (back && back.isConnected) back.focus();
      resolve(dialog.returnValue === 'confirm');
    }, { once: true });
    dialog.showModal();
    $('confirm-cancel').focus(); // the safe choice first
  });
}

async function act(action) {
  if (acting || !selected) return;
  const tenant = selected;
  const name = tenant.name || 'the tenant';
  const reason = $('action-reason').value.trim();
  actionForm.clearErrors();
  setResult('', null);
  if ((action === 'reject' || action === 'offboard') && !reason) {
    actionForm.showError('reason', `Give a reason to ${action} this tenant.`);
    return;
  }
  if ((action === 'reject' || action === 'offboard') && !(await confirmed(action, tenant, reason))) return;
  const path = `tenants/${encodeURIComponent(tenant.tenantId)}`;
  acting = true;
  $('action-form').setAttribute('aria-busy', 'true');
  try {
    let message;
    if (action === 'approve' || action === 'reject') {
      const body = { status: action === 'approve' ? 'approved' : 'rejected' };
      if (reason) body.reason = reason;
      await call(`${path}/decision`, { method: 'POST', body });
      message = action === 'approve'
        ? `Approved ${name}. The tenant becomes active in a moment.`
        : `Rejected ${name}. The tenant is told the reason.`;
    } else if (action === 'retry') {
      const answer = await call(`${path}/retry`, { method: 'POST', body: {} });
      message = `Started attempt ${answer && answer.attempt ? answer.attempt : 'again'} for ${name}.`;
    } else {
      await call(`${path}/offboarding`, { method: 'POST', body: { reason } });
      message = `Offboarding ${name} has started.`;
    }
    $('action-reason').value = '';
    setResult(message, 'good');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return;
    if (error instanceof ApiError && error.status === 400 && /reason/i.test(error.message)) {
      actionForm.showError('reason', error.message);
      return;
    }
    setResult(error.status === 404 ? 'That tenant no longer exists.' : error.message, 'bad');
  } finally {
    acting = false;
    $('action-form').removeAttribute('aria-busy');
  }
  $('action-result').focus();
  await Promise.all([loadDetail(tenant.tenantId), refreshLists()]);
  // the workflow finishes what the action started within moments
  setTimeout(async () => {
    if (selected && selected.tenantId === tenant.tenantId) await loadDetail(tenant.tenantId);
    await refreshLists();
  }, 2500);
}

for (const button of document.querySelectorAll('#action-form [data-action]')) {
  button.addEventListener('click', () => act(button.dataset.action));
}
$('action-form').addEventListener('submit', (event) => event.preventDefault());

// --- start ---------------------------------------------------------------------------------------

async function start() {
  pool = await openPool('admin');
  if (!pool) return;
  if (await currentSession(pool)) enterConsole();
  else showView(views, 'signin', { focus: false });
}

start();
