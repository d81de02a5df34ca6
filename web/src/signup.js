// GET /signup: a tenant signs up, confirms its email, signs in and watches
// its onboarding from GET /me, which this page polls by itself.
import { CognitoUserAttribute } from 'amazon-cognito-identity-js';
import {
  ApiError,
  Form,
  PASSWORD_POLICIES,
  api,
  cognitoUser,
  currentSession,
  el,
  explainCognitoError,
  formatDate,
  loadConfig,
  openPool,
  promised,
  showView,
  signIn,
  signInForm,
  signOut,
  timeLeft,
} from './common.js';

const POLL_WAITING_MS = 3000; // while something is about to change
const POLL_SETTLED_MS = 15000; // active, rejected, timed out, failed, closed

const $ = (id) => document.getElementById(id);
const views = {
  signup: $('signup-view'),
  confirm: $('confirm-view'),
  signin: $('signin-view'),
  status: $('status-view'),
};

let pool = null;
// Kept in memory only, to sign in right after the confirmation.
let pending = { email: '', password: '' };
let pollTimer = null;

// --- what each status says --------------------------------------------------------

function describe(me) {
  if (!me || (me.status === 'onboarding' && !me.decideBy)) {
    return {
      badge: 'Setting up',
      tone: 'waiting',
      detail: 'We are setting up your account. This page updates by itself.',
      settled: false,
    };
  }
  switch (me.status) {
    case 'onboarding':
      return {
        badge: 'Awaiting approval',
        tone: 'waiting',
        detail: `An administrator will decide by ${formatDate(me.decideBy)} (${timeLeft(me.decideBy)}).`,
        settled: false,
      };
    case 'active':
      return { badge: 'Active', tone: 'good', detail: 'Your account is approved and ready to use.', settled: true };
    case 'rejected':
      return {
        badge: 'Rejected',
        tone: 'bad',
        detail: me.reason ? `Your sign-up was not approved. Reason: ${me.reason}` : 'Your sign-up was not approved.',
        settled: true,
      };
    case 'timeout':
      return {
        badge: 'Timed out',
        tone: 'bad',
        detail: `No decision was made ${me.decideBy ? `by ${formatDate(me.decideBy)}` : 'in time'}. Contact us and we can start again.`,
        settled: true,
      };
    case 'failed':
      return {
        badge: 'Failed',
        tone: 'bad',
        detail: 'Setting up your account failed on our side. We have been told and can try again.',
        settled: true,
      };
    case 'offboarding':
      return { badge: 'Closing', tone: 'waiting', detail: 'Your account is being closed.', settled: false };
    case 'offboarded':
      return { badge: 'Closed', tone: 'neutral', detail: 'Your account is closed.', settled: true };
    default:
      return { badge: me.status || 'Unknown', tone: 'neutral', detail: '', settled: true };
  }
}

// --- the status view ------------------------------------------------------------------

function showStatus(me, fallbackName, fallbackEmail) {
  const said = describe(me);
  showSubscribers(Boolean(me && me.status === 'active'));
  $('status-heading').textContent = (me && me.name) || fallbackName || 'Your account';
  const badge = $('status-badge');
  badge.textContent = said.badge;
  badge.dataset.tone = said.tone;
  badge.dataset.status = me ? me.status : 'setting-up';
  $('status-detail').textContent = said.detail;
  $('status-email').textContent = (me && me.email) || fallbackEmail || '—';
  $('status-created').textContent = me && me.createdAt ? formatDate(me.createdAt) : '—';
  $('status-checked').textContent = `Checked at ${new Date().toLocaleTimeString()}. This page updates by itself.`;
  return said.settled;
}

// --- the active tenant's subscribers -------------------------------------------------------

const subscriberForm = new Form(
  $('subscriber-form'),
  { email: 'subscriber-email', name: 'subscriber-name' },
  $('subscriber-form-error'),
);
let subscriberNext = null; // where the next page of the list begins

function showSubscribers(active) {
  const section = $('subscribers');
  if (!active) {
    section.hidden = true;
    return;
  }
  if (section.hidden) {
    section.hidden = false;
    loadSubscribers();
  }
}

function countSentence(count) {
  return count === 1 ? '1 subscriber' : `${count} subscribers`;
}

async function loadSubscribers(more = false) {
  const query = more && subscriberNext ? `&nextToken=${encodeURIComponent(subscriberNext)}` : '';
  let page;
  try {
    page = await api(pool, `me/subscribers?limit=50${query}`);
  } catch (error) {
    $('subscriber-said').textContent = error.message;
    return;
  }
  const list = $('subscriber-list');
  if (!more) list.replaceChildren();
  for (const subscriber of page.subscribers) list.append(subscriberItem(subscriber));
  $('subscriber-count').textContent = countSentence(page.count);
  subscriberNext = page.nextToken;
  $('subscriber-more').hidden = !subscriberNext;
}

function subscriberItem(subscriber) {
  const item = el('li');
  const id = `subscriber-${Math.random().toString(36).slice(2)}`;
  const who = el('span', subscriber.email, { id, class: 'wrap' });
  item.append(who);
  if (subscriber.name) item.append(el('span', ` (${subscriber.name})`, { class: 'muted wrap' }));
  const remove = el('button', 'Remove', { type: 'button', 'aria-describedby': id });
  remove.addEventListener('click', () => removeSubscriber(subscriber.email, remove));
  item.append(' ', remove);
  return item;
}

async function removeSubscriber(email, button) {
  button.disabled = true;
  try {
    await api(pool, `me/subscribers/${encodeURIComponent(email)}`, { method: 'DELETE' });
    $('subscriber-said').textContent = `Removed ${email}.`;
  } catch (error) {
    $('subscriber-said').textContent = error.message;
    button.disabled = false;
    return;
  }
  await loadSubscribers();
}

subscriberForm.onSubmit(async () => {
  if (!subscriberForm.requireFilled({ email: "Enter the subscriber's email address." })) return;
  const email = subscriberForm.value('email').trim();
  const name = subscriberForm.value('name').trim();
  let answer;
  try {
    answer = await api(pool, 'me/subscribers', { method: 'POST', body: name ? { email, name } : { email } });
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) {
      subscriberForm.showError(/name/i.test(error.message) && !/email/i.test(error.message) ? 'name' : 'email',
        error.message);
    } else {
      subscriberForm.showError(null, error.message);
    }
    return;
  }
  subscriberForm.form.reset();
  $('subscriber-said').textContent = answer.added
    ? `Added ${answer.subscriber.email}.`
    : `${answer.subscriber.email} is already a subscriber.`;
  await loadSubscribers();
  subscriberForm.input('email').focus();
});

$('subscriber-more').addEventListener('click', () => loadSubscribers(true));

function stopPolling() {
  if (pollTimer) clearTimeout(pollTimer);
  pollTimer = null;
}

let polling = false;

async function poll() {
  stopPolling();
  if (polling) return; // the poll in flight schedules the next one
  polling = true;
  try {
    await pollOnce();
  } finally {
    polling = false;
  }
}

async function pollOnce() {
  const current = await currentSession(pool);
  if (!current) {
    goToSignIn('Your session ended: sign in again.');
    return;
  }
  const claims = current.session.getIdToken().decodePayload();
  let settled = false;
  try {
    const me = await api(pool, 'me');
    settled = showStatus(me, claims.name, claims.email);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      showStatus(null, claims.name, claims.email); // the record is being made
    } else if (error instanceof ApiError && error.status === 401) {
      signOut(pool);
      goToSignIn('Your session ended: sign in again.');
      return;
    } else {
      $('status-checked').textContent = error.message;
    }
  }
  if (!views.status.hidden && document.visibilityState !== 'hidden') {
    pollTimer = setTimeout(poll, settled ? POLL_SETTLED_MS : POLL_WAITING_MS);
  }
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !views.status.hidden) poll();
});

function enterStatus() {
  showView(views, 'status');
  poll();
}

function goToSignIn(message) {
  stopPolling();
  forgetWhatWasTyped();
  showView(views, 'signin');
  const error = $('signin-form-error');
  error.textContent = message || '';
  error.hidden = !message;
}

// --- sign up ------------------------------------------------------------------------------

const signupForm = new Form(
  $('signup-form'),
  { company: 'signup-company', email: 'signup-email', password: 'signup-password' },
  $('signup-form-error'),
);

signupForm.onSubmit(async () => {
  const ok = signupForm.requireFilled({
    company: 'Enter your company name.',
    email: 'Enter your email address.',
    password: 'Choose a password.',
  });
  if (!ok) return;
  if (signupForm.input('email').validity.typeMismatch) {
    signupForm.showError('email', 'Enter an email address like name@example.com.');
    return;
  }
  const company = signupForm.value('company').trim();
  const email = signupForm.value('email').trim();
  const password = signupForm.value('password');
  const attributes = [
    new CognitoUserAttribute({ Name: 'email', Value: email }),
    new CognitoUserAttribute({ Name: 'name', Value: company }),
  ];
  try {
    await promised((done) => pool.signUp(email, password, attributes, null, done));
  } catch (error) {
    const { field, message } = explainCognitoError(error, 'signup', PASSWORD_POLICIES.tenant);
    signupForm.showError(field, message);
    return;
  }
  pending = { email, password };
  signupForm.form.reset(); // the password lives on in memory only, until the confirmation signs in
  enterConfirm(email);
});

/**
 * Clear every form and what the page remembers of the last person: a shared
 * computer's next user must find no password, code or address in the page.
 */
function forgetWhatWasTyped() {
  pending = { email: '', password: '' };
  for (const form of [signupForm, confirmForm, signinForm, subscriberForm]) {
    form.form.reset();
    form.clearErrors();
  }
  $('subscriber-list').replaceChildren();
  $('subscribers').hidden = true;
}

// --- confirm ------------------------------------------------------------------------------

const confirmForm = new Form($('confirm-form'), { code: 'confirm-code' }, $('confirm-form-error'));

function enterConfirm(email, message) {
  $('confirm-email').textContent = email;
  $('resend-status').textContent = message || '';
  confirmForm.clearErrors();
  $('confirm-code').value = '';
  showView(views, 'confirm');
}

confirmForm.onSubmit(async () => {
  if (!confirmForm.requireFilled({ code: 'Enter the code from the email we sent.' })) return;
  const code = confirmForm.value('code').replace(/\s+/g, '');
  const user = cognitoUser(pool, pending.email);
  try {
    await promised((done) => user.confirmRegistration(code, true, done));
  } catch (error) {
    const { field, message } = explainCognitoError(error, 'confirm');
    confirmForm.showError(field === 'email' ? null : field, message);
    return;
  }
  if (!pending.password) {
    const { email } = pending;
    goToSignIn('Your email is confirmed: sign in to see your status.');
    $('signin-email').value = email;
    return;
  }
  try {
    await signIn(cognitoUser(pool, pending.email), pending.email, pending.password);
  } catch (error) {
    goToSignIn(explainCognitoError(error, 'signin').message);
    return;
  } finally {
    pending.password = '';
  }
  enterStatus();
});

$('resend-code').addEventListener('click', async () => {
  const status = $('resend-status');
  status.textContent = 'Sending…';
  try {
    await promised((done) => cognitoUser(pool, pending.email).resendConfirmationCode(done));
    status.textContent = `We sent a new code to ${pending.email}.`;
  } catch (error) {
    status.textContent = explainCognitoError(error, 'confirm').message;
  }
});

// --- sign in -------------------------------------------------------------------------------

const signinForm = signInForm();
const DISABLED_SIGN_IN = 'You cannot sign in: your sign-up was not approved, or your tenant was closed.';
// only where the stage mails outcomes (config.outcomeMail: it has an SES sender)
const DISABLED_SIGN_IN_MAILED = ' If your sign-up was not approved, we emailed you the reason when it '
  + 'was decided: look for that email.';

signinForm.onSubmit(async () => {
  const credentials = signinForm.credentials();
  if (!credentials) return;
  const { email, password } = credentials;
  let result;
  try {
    result = await signIn(cognitoUser(pool, email), email, password);
  } catch (error) {
    if ((error.code || error.name) === 'UserNotConfirmedException') {
      pending = { email, password };
      enterConfirm(email, 'Your email is not confirmed yet: enter the code we sent, or ask for a new one.');
      return;
    }
    if ((error.code || error.name) === 'NotAuthorizedException' && /disabled/i.test(error.message || '')) {
      // a rejected sign-up's login is disabled (so is a closed tenant's): say which and where to look
      const mailed = await loadConfig().then((config) => config.outcomeMail === true, () => false);
      signinForm.showError(null, DISABLED_SIGN_IN + (mailed ? DISABLED_SIGN_IN_MAILED : ''));
      return;
    }
    const { field, message } = explainCognitoError(error, 'signin');
    signinForm.showError(field, message);
    return;
  }
  if (result.newPasswordRequired) {
    signinForm.showError(null, 'This account must set a new password first. Ask us for help.');
    return;
  }
  signinForm.form.reset();
  enterStatus();
});

$('to-signin').addEventListener('click', () => goToSignIn());
$('to-signup').addEventListener('click', () => showView(views, 'signup'));
$('sign-out').addEventListener('click', () => {
  signOut(pool);
  goToSignIn('You are signed out.');
});

// --- start -----------------------------------------------------------------------------------

async function start() {
  pool = await openPool('tenant');
  if (!pool) return;
  if (await currentSession(pool)) enterStatus();
  else showView(views, 'signup', { focus: false });
}

start();
