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
let lists = {}; // status -> {tenants, nextToken, error}
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
  await refreshLists();
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

// --- the lists -------------------------------------------------------------------------------

async function fetchSection(status, nextToken) {
  const query = new URLSearchParams({ status, limit: String(PAGE_SIZE) });
  if (nextToken) query.set('nextToken', nextToken);
  return call(`tenants?${query}`);
}

let refreshing = null; // the refresh in flight
let refreshAgain = false; // asked for meanwhile: the one in flight may answer from before

/** Refresh the lists; one request set at a time, and none answers from before the ask. */
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
  const status = $('console-status');
  const results = await Promise.all(
    SECTIONS.map(async (section) => {
      try {
        const page = await fetchSection(section.status);
        return [section.status, { tenants: page.tenants || [], nextToken: page.nextToken || null }];
      } catch (error) {
        return [section.status, { tenants: [], nextToken: null, error: error.message, code: error.status }];
      }
    }),
  );
  if (results.some(([, page]) => page.code === 401)) return;
  lists = Object.fromEntries(results);
  await lookUpFailureReasons();
  renderLists();
  status.textContent = `Updated at ${new Date().toLocaleTimeString()}.`;
}

/** A failure is one version of the record: retried and failed again, it has a new reason. */
const reasonKey = (tenant) => `${tenant.tenantId}@${tenant.updatedAt}`;

/** The list route does not carry failureReason: ask the detail route for the first few. */
async function lookUpFailureReasons() {
  const failed = (lists.failed ? lists.failed.tenants : [])
    .filter((t) => !(reasonKey(t) in failureReasons))
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

function sortedTenants(status) {
  const tenants = [...(lists[status] ? lists[status].tenants : [])];
  if (status === 'onboarding') {
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
  if (selected && selected.tenantId === tenant.tenantId) row.classList.add('selected');
  const open = el('button', tenant.name || '(no name)', {
    type: 'button',
    className: 'tenant-open',
    'data-focus-key': `open:${tenant.status}:${tenant.tenantId}`,
    'aria-current': selected && selected.tenantId === tenant.tenantId ? 'true' : null,
  });
  open.addEventListener('click', () => openTenant(tenant.tenantId, open));
  row.append(open, el('p', tenant.email, { className: 'tenant-email wrap' }));
  const meta = el('p', null, { className: 'tenant-meta' });
  if (tenant.status === 'onboarding' && tenant.decideBy) {
    meta.append(el('strong', timeLeft(tenant.decideBy)), ` · decide by ${formatDate(tenant.decideBy)}`);
  } else if (tenant.status === 'onboarding') {
    meta.textContent = `Setting up · signed up ${formatDate(tenant.createdAt)}`;
  } else {
    meta.textContent = `Since ${formatDate(tenant.updatedAt || tenant.createdAt)}`;
  }
  row.append(meta);
  const reason = failureReasons[reasonKey(tenant)];
  if (tenant.status === 'failed' && reason) row.append(el('p', reason, { className: 'tenant-reason wrap' }));
  return row;
}

function renderLists() {
  const focused = document.activeElement && document.activeElement.dataset
    ? document.activeElement.dataset.focusKey
    : null;
  const container = $('lists');
  container.replaceChildren();
  for (const section of SECTIONS) {
    const page = lists[section.status] || { tenants: [] };
    const tenants = sortedTenants(section.status);
    const headingId = `section-${section.status}`;
    const element = el('section', null, { className: 'tenant-section', 'aria-labelledby': headingId });
    const heading = el('h2', section.title, { id: headingId });
    heading.append(' ', el('span', `(${tenants.length}${page.nextToken ? '+' : ''})`, { className: 'count' }));
    element.append(heading);
    if (page.error) {
      element.append(el('p', page.error, { className: 'form-error' }));
    } else if (!tenants.length) {
      element.append(el('p', section.empty, { className: 'muted' }));
    } else {
      const list = el('ul', null, { className: 'tenant-list' });
      for (const tenant of tenants) list.append(tenantRow(tenant));
      element.append(list);
    }
    if (page.nextToken) {
      const more = el('button', `Show more ${section.title.toLowerCase()}`, {
        type: 'button',
        'data-focus-key': `more:${section.status}`,
      });
      more.addEventListener('click', () => showMore(section.status));
      element.append(more);
    }
    container.append(element);
  }
  if (focused) {
    const again = container.querySelector(`[data-focus-key="${CSS.escape(focused)}"]`);
    if (again) again.focus({ preventScroll: true });
  }
}

async function showMore(status) {
  const page = lists[status];
  try {
    const next = await fetchSection(status, page.nextToken);
    page.tenants = page.tenants.concat(next.tenants || []);
    page.nextToken = next.nextToken || null;
  } catch (error) {
    page.error = error.message;
  }
  await lookUpFailureReasons();
  renderLists();
}

$('refresh').addEventListener('click', async () => {
  await refreshLists();
  if (selected) await loadDetail(selected.tenantId);
});

// --- one tenant ------------------------------------------------------------------------------

let openedFrom = null; // the list button to return focus to

async function openTenant(tenantId, button) {
  openedFrom = button;
  setResult('', null);
  $('action-reason').value = '';
  actionForm.clearErrors();
  const loaded = await loadDetail(tenantId);
  if (loaded) {
    $('detail').hidden = false;
    renderLists();
    $('detail-heading').focus();
  }
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
}

$('close-detail').addEventListener('click', () => {
  const back = openedFrom && openedFrom.dataset.focusKey;
  closeDetail();
  renderLists();
  const button = back && $('lists').querySelector(`[data-focus-key="${CSS.escape(back)}"]`);
  if (button) button.focus();
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
