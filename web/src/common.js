// What both pages share: the app's public configuration, Cognito, the API,
// and showing errors as sentences next to the field they concern.
//
// Every string a tenant typed reaches the page through textContent or a
// text node, never as markup: nothing here sets innerHTML.
import {
  AuthenticationDetails,
  CognitoUser,
  CognitoUserPool,
} from 'amazon-cognito-identity-js';

// Each user pool's password policy, as web/build.mjs reads it from
// template.json's PasswordPolicy: {tenant: 'at least 10 characters, with …', admin: …}.
export const PASSWORD_POLICIES = __PASSWORD_POLICIES__;

/** What to say when Cognito refuses a password, for the pool whose policy is `policy`. */
function passwordAdvice(policy) {
  return policy ? `Choose a password of ${policy}.` : 'Choose a longer password, with more kinds of characters.';
}

// --- configuration and Cognito ------------------------------------------------

let configPromise = null;

/** GET config (relative: the page may sit under API Gateway's stage path). */
export function loadConfig() {
  if (!configPromise) {
    configPromise = fetch('config', { headers: { Accept: 'application/json' } })
      .then((response) => {
        if (!response.ok) throw new Error(`config answered ${response.status}`);
        return response.json();
      })
      .catch((error) => {
        configPromise = null; // try again next time
        throw error;
      });
  }
  return configPromise;
}

/** The user pool named by config's `${prefix}UserPoolId` and `${prefix}UserPoolClientId`. */
export function userPool(config, prefix) {
  const settings = {
    UserPoolId: config[`${prefix}UserPoolId`],
    ClientId: config[`${prefix}UserPoolClientId`],
  };
  if (config.cognitoEndpoint) settings.endpoint = config.cognitoEndpoint;
  return new CognitoUserPool(settings);
}

/**
 * A page's start: its user pool from config, or null when config cannot be
 * loaded (the page then says so in #page-error). #loading is hidden either way.
 */
export async function openPool(prefix) {
  try {
    return userPool(await loadConfig(), prefix);
  } catch (error) {
    const message = document.getElementById('page-error');
    message.textContent = 'This page could not load its settings. Reload it to try again.';
    message.hidden = false;
    return null;
  } finally {
    document.getElementById('loading').hidden = true;
  }
}

/** A promise of what a Node-style callback API (error, result) answers. */
export function promised(start) {
  return new Promise((resolve, reject) => {
    start((error, result) => (error ? reject(error) : resolve(result)));
  });
}

export function cognitoUser(pool, email) {
  const user = new CognitoUser({ Username: email, Pool: pool });
  // The app clients allow it, and the local Cognito checks passwords only so.
  user.setAuthenticationFlowType('USER_PASSWORD_AUTH');
  return user;
}

/** Sign in; resolves {session} or {newPasswordRequired: true, user}. */
export function signIn(user, email, password) {
  return new Promise((resolve, reject) => {
    user.authenticateUser(
      new AuthenticationDetails({ Username: email, Password: password }),
      {
        onSuccess: (session) => resolve({ session }),
        onFailure: reject,
        newPasswordRequired: () => resolve({ newPasswordRequired: true, user }),
      },
    );
  });
}

export function completeNewPassword(user, newPassword) {
  return new Promise((resolve, reject) => {
    user.completeNewPasswordChallenge(newPassword, {}, {
      onSuccess: (session) => resolve({ session }),
      onFailure: reject,
    });
  });
}

const sessionLookups = new Map(); // pool -> the lookup in flight

/**
 * The signed-in user's valid session (refreshed when it expired), or null.
 * Calls made while one lookup is in flight share it: an expired token is
 * refreshed once, not once per request of a page that sends several at once.
 */
export function currentSession(pool) {
  if (!sessionLookups.has(pool)) {
    sessionLookups.set(pool, lookUpSession(pool).finally(() => sessionLookups.delete(pool)));
  }
  return sessionLookups.get(pool);
}

function lookUpSession(pool) {
  const user = pool.getCurrentUser();
  if (!user) return Promise.resolve(null);
  return new Promise((resolve) => {
    user.getSession((error, session) => {
      resolve(!error && session && session.isValid() ? { user, session } : null);
    });
  });
}

export function signOut(pool) {
  const user = pool.getCurrentUser();
  if (user) user.signOut();
}

// --- the API --------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

/**
 * Call the app's API with the pool's ID token (the raw JWT, as API Gateway's
 * Cognito authorizer expects it). Paths are relative to the page.
 */
export async function api(pool, path, { method = 'GET', body } = {}) {
  const current = await currentSession(pool);
  if (!current) throw new ApiError(401, 'Your session ended: sign in again.');
  const headers = {
    Accept: 'application/json',
    Authorization: current.session.getIdToken().getJwtToken(),
  };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, 'The server could not be reached. Check your connection; this page tries again by itself.');
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (response.ok) return data;
  const message = (data && (data.Message || data.message)) || `The server answered ${response.status}.`;
  throw new ApiError(response.status, sentence(message), data);
}

// --- Cognito's errors as sentences next to their field ----------------------------

const PRE_SIGN_UP = 'PreSignUp failed with error ';

/** A message as a sentence: capitalised, ending with a full stop. */
export function sentence(text) {
  const trimmed = String(text || '').trim();
  if (!trimmed) return '';
  const first = (trimmed.charAt(0).toUpperCase() + trimmed.slice(1)).replace(/\.{2,}$/, '.');
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/**
 * Which field a Cognito error concerns and what to tell the person.
 * `step` is 'signup', 'confirm', 'signin' or 'newPassword'; `passwordPolicy`
 * the pool's (PASSWORD_POLICIES.tenant or .admin), where a password is chosen.
 * Returns {field, message}; field is 'company', 'email', 'password',
 * 'code', 'newPassword' or null (the form as a whole).
 */
export function explainCognitoError(error, step, passwordPolicy = '') {
  const code = (error && (error.code || error.name)) || '';
  const message = (error && error.message) || '';
  const passwordField = step === 'newPassword' ? 'newPassword' : 'password';
  switch (code) {
    case 'UserLambdaValidationException': {
      const at = message.indexOf(PRE_SIGN_UP);
      const reason = sentence(at >= 0 ? message.slice(at + PRE_SIGN_UP.length) : message);
      if (/^company name\b/i.test(reason)) return { field: 'company', message: reason };
      if (/^email\b/i.test(reason)) return { field: 'email', message: reason };
      return { field: null, message: reason || 'Sign-up was refused.' };
    }
    case 'InvalidPasswordException': {
      const detail = message.split(':').slice(1).join(':').trim();
      const advice = passwordAdvice(passwordPolicy);
      return { field: passwordField, message: detail ? `${sentence(detail)} ${advice}` : advice };
    }
    case 'InvalidParameterException':
      if (/password/i.test(message)) return { field: passwordField, message: passwordAdvice(passwordPolicy) };
      if (/email|username/i.test(message)) {
        return { field: 'email', message: 'Enter a valid email address, like name@example.com.' };
      }
      if (/name/i.test(message)) return { field: 'company', message: sentence(message) };
      return { field: null, message: sentence(message) };
    case 'UsernameExistsException':
      return { field: 'email', message: 'An account with this email already exists: sign in instead.' };
    case 'CodeMismatchException':
      return { field: 'code', message: 'That code is not the one we sent. Check the email and type it again.' };
    case 'ExpiredCodeException':
      return { field: 'code', message: 'That code has expired. Ask for a new one below.' };
    case 'NotAuthorizedException':
      if (/disabled/i.test(message)) return { field: null, message: 'This account is disabled.' };
      if (/expired|temporary password/i.test(message)) {
        return { field: 'password', message: 'Your temporary password has expired. Ask an administrator for a new one.' };
      }
      if (step === 'confirm') return { field: 'code', message: sentence(message) };
      if (step === 'newPassword') {
        return { field: null, message: 'This sign-in took too long. Sign in again with your temporary password.' };
      }
      return { field: 'password', message: 'The email or password is not right.' };
    case 'UserNotFoundException':
      return { field: 'email', message: 'There is no account with this email.' };
    case 'UserNotConfirmedException':
      return { field: 'email', message: 'This email is not confirmed yet: enter the code we sent.' };
    case 'LimitExceededException':
    case 'TooManyRequestsException':
    case 'TooManyFailedAttemptsException':
      return { field: null, message: 'Too many attempts. Wait a minute, then try again.' };
    case 'NetworkError':
      return { field: null, message: 'The account service could not be reached. Check your connection and try again.' };
    default:
      return { field: null, message: sentence(message) || 'Something went wrong. Try again.' };
  }
}

// --- forms ---------------------------------------------------------------------------

/**
 * A form whose fields each have a <p class="field-error" id="<input id>-error">.
 * `fields` maps our names ('email', ...) to input ids.
 */
export class Form {
  constructor(form, fields, formError) {
    this.form = form;
    this.fields = fields;
    this.formError = formError;
    this.busy = false;
  }

  input(field) {
    return document.getElementById(this.fields[field]);
  }

  value(field) {
    return this.input(field).value;
  }

  clearErrors() {
    for (const field of Object.keys(this.fields)) {
      const input = this.input(field);
      const error = document.getElementById(`${input.id}-error`);
      input.removeAttribute('aria-invalid');
      error.textContent = '';
      error.hidden = true;
    }
    if (this.formError) {
      this.formError.textContent = '';
      this.formError.hidden = true;
    }
  }

  /** Show message next to field (or for the whole form) and move focus there. */
  showError(field, message) {
    if (field && this.fields[field]) {
      const input = this.input(field);
      const error = document.getElementById(`${input.id}-error`);
      error.textContent = message;
      error.hidden = false;
      input.setAttribute('aria-invalid', 'true');
      input.focus();
    } else if (this.formError) {
      this.formError.textContent = message;
      this.formError.hidden = false;
      this.formError.focus();
    }
  }

  /** Check each required field is filled in; show the first gap. */
  requireFilled(messages) {
    for (const [field, message] of Object.entries(messages)) {
      if (!this.value(field).trim()) {
        this.showError(field, message);
        return false;
      }
    }
    return true;
  }

  /** Run one submission at a time; the button keeps its name while busy. */
  onSubmit(handler) {
    this.form.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (this.busy) return;
      this.busy = true;
      this.form.setAttribute('aria-busy', 'true');
      try {
        this.clearErrors();
        await handler();
      } finally {
        this.busy = false;
        this.form.removeAttribute('aria-busy');
      }
    });
  }
}

/**
 * The sign-in form both pages include (web/src/partials/signin-form.html):
 * `credentials()` is {email, password} once both are filled in, else null
 * with the gap shown.
 */
export function signInForm() {
  const form = new Form(
    document.getElementById('signin-form'),
    { email: 'signin-email', password: 'signin-password' },
    document.getElementById('signin-form-error'),
  );
  form.credentials = () => {
    const filled = form.requireFilled({ email: 'Enter your email address.', password: 'Enter your password.' });
    return filled ? { email: form.value('email').trim(), password: form.value('password') } : null;
  };
  return form;
}

// --- views and text ---------------------------------------------------------------

/** Show one of the page's views (sections), hide the others, focus its heading. */
export function showView(views, name, { focus = true } = {}) {
  for (const [key, element] of Object.entries(views)) element.hidden = key !== name;
  const heading = views[name].querySelector('h1, h2');
  if (focus && heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus();
  }
}

/** A new element with text content (never markup) and attributes. */
export function el(tag, text, attributes = {}) {
  const element = document.createElement(tag);
  if (text !== undefined && text !== null) element.textContent = String(text);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'className') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  return element;
}

// Every time is shown in the reader's own zone, named ("3 Dec 2026, 11:12 CET"),
// with the same instant in UTC on hover (title) and in the datetime attribute.
const dateFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZoneName: 'short',
});

function parsed(iso) {
  const date = iso ? new Date(iso) : null;
  return date && !Number.isNaN(date.getTime()) ? date : null;
}

/** "2026-12-03 10:12 UTC": the instant in UTC, to the minute. */
export function utcText(iso) {
  const date = parsed(iso);
  return date ? `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC` : '';
}

/** <time datetime="iso" title="… UTC">local date, time and zone</time>, or a dash. */
export function timeElement(iso) {
  const date = parsed(iso);
  if (!date) return el('span', '—');
  return el('time', dateFormat.format(date), { datetime: date.toISOString(), title: utcText(iso) });
}

/** Local date, time and zone, as text ("—" when there is none). */
export function formatDate(iso) {
  const date = parsed(iso);
  return date ? dateFormat.format(date) : '—';
}

/** "3 h 12 min left", "less than a minute left", "the deadline has passed". */
export function timeLeft(iso, now = Date.now()) {
  const deadline = iso ? new Date(iso).getTime() : NaN;
  if (Number.isNaN(deadline)) return '';
  const minutes = Math.floor((deadline - now) / 60000);
  if (deadline <= now) return 'the deadline has passed';
  if (minutes < 1) return 'less than a minute left';
  const hours = Math.floor(minutes / 60);
  if (hours === 0) return `${minutes} min left`;
  if (hours < 48) return `${hours} h ${minutes % 60} min left`;
  return `${Math.floor(hours / 24)} days left`;
}
