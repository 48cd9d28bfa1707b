// The page: sign in, then a view per hash route (#/queue, #/transfers, #/cases/<id>, #/compliance).
import { call, session, whenSignedOut } from './api.js';
import { actionSpecs } from './actions.js';
import { fill, h } from './dom.js';
import { caseView } from './views/case.js';
import { complianceView } from './views/compliance.js';
import { queueView } from './views/queue.js';
import { transfersView } from './views/transfers.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const who = document.getElementById('who');
const status = document.getElementById('status');

const app = {
  me: null,
  vocabulary: null,
  specs: null,
  /** What the current view set running (a poll); cleared when the view changes. */
  stops: [],
  say(text) {
    status.textContent = text;
  },
};

const VIEWS = [
  { path: /^#\/queue$/, permission: 'readQueue', label: 'My queue', href: '#/queue', render: queueView },
  {
    path: /^#\/transfers(?:\/([0-9a-f-]{36}))?$/,
    permission: 'readTransfer',
    label: 'Transfers',
    href: '#/transfers',
    render: transfersView,
  },
  { path: /^#\/cases\/([0-9a-f-]{36})$/, permission: 'readCase', render: caseView },
  {
    path: /^#\/compliance$/,
    permission: 'readAudit',
    label: 'Compliance',
    href: '#/compliance',
    render: complianceView,
  },
];

/** Where a role starts: its queue; compliance (and admins) the audit trail; then transfers. */
const LANDINGS = ['#/queue', '#/compliance', '#/transfers'];

function landing(me) {
  const open = VIEWS.filter((v) => v.href && me.permissions.includes(v.permission)).map((v) => v.href);
  return LANDINGS.find((href) => open.includes(href)) ?? null;
}

async function route() {
  for (const stop of app.stops.splice(0)) stop();
  if (!app.me) return;
  const hash = location.hash || '#/';
  for (const a of nav.querySelectorAll('a')) {
    if (hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const view of VIEWS) {
    const match = view.path.exec(hash);
    if (!match) continue;
    if (!app.me.permissions.includes(view.permission)) {
      fill(
        main,
        h('h1', {}, 'Not for your role'),
        h('p', {}, `This page is not for the ${app.me.role.replace('_', ' ')} role.`),
      );
      return focusHeading();
    }
    fill(main, h('p', {}, 'Loading…'));
    await view.render(main, app, ...match.slice(1));
    return focusHeading();
  }
  const home = landing(app.me);
  if (home) {
    location.replace(home);
    return;
  }
  fill(
    main,
    h('h1', {}, `Signed in as ${app.me.name}`),
    h('p', {}, 'Your role has no page here yet; the API is at ', h('a', { href: '/docs' }, '/docs'), '.'),
  );
  focusHeading();
}

/** After a route change, keyboard and screen-reader users start at the new page's heading. */
function focusHeading() {
  const heading = main.querySelector('h1');
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: false });
    document.title = `${heading.textContent} — handoff`;
  }
}

async function authConfig() {
  const result = await call('GET', '/auth/config');
  return result.ok && typeof result.body === 'object' ? result.body : { oidc: false, devTokens: true };
}

async function signInPage(reason) {
  app.me = null;
  nav.hidden = true;
  fill(nav);
  fill(who);
  const config = await authConfig();
  const message = h('div', { class: 'message', role: 'alert' }, reason ? `Signed out: ${reason}.` : '');
  if (reason) message.classList.add('refused');
  const parts = [h('h1', {}, 'Sign in to handoff'), message];
  if (config.oidc) {
    const back = encodeURIComponent(location.hash && location.hash !== '#/' ? `/${location.hash}` : '/');
    parts.push(
      h(
        'p',
        {},
        h('a', { class: 'button', href: `/auth/oidc/login?return=${back}` }, "Sign in with your agency's account"),
      ),
    );
  }
  if (config.devTokens) {
    const input = h('input', {
      type: 'password',
      name: 'token',
      id: 'token',
      autocomplete: 'off',
      required: true,
      spellcheck: 'false',
    });
    const form = h(
      'form',
      { class: 'signin', 'aria-label': 'Sign in with a token' },
      h('h2', {}, config.oidc ? 'Or, in development, with a token' : 'With a token'),
      h(
        'div',
        { class: 'field' },
        h('label', { for: 'token' }, 'API token'),
        h(
          'p',
          { class: 'hint', id: 'token-hint' },
          '`npm start` prints a demo token per role. The page keeps it for this tab only.',
        ),
        input,
      ),
      h('button', { type: 'submit' }, 'Sign in'),
    );
    input.setAttribute('aria-describedby', 'token-hint');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      session.set(input.value.trim());
      if (!(await signedIn())) {
        session.clear();
        message.className = 'message refused';
        message.textContent = 'That token was not accepted: it may be mistyped, expired or revoked.';
        input.focus();
      }
    });
    parts.push(form);
  }
  if (!config.oidc && !config.devTokens)
    parts.push(h('p', {}, 'No way to sign in is configured; ask the person who runs handoff.'));
  fill(main, ...parts);
  focusHeading();
}

async function signedIn() {
  const [me, vocabulary] = await Promise.all([
    call('GET', '/v1/me'),
    app.vocabulary ? null : call('GET', '/ui/vocabulary.json'),
  ]);
  if (!me.ok) return false;
  app.me = me.body;
  if (vocabulary) app.vocabulary = vocabulary.body;
  app.specs = actionSpecs(app.vocabulary);
  fill(
    nav,
    h(
      'ul',
      {},
      VIEWS.filter((v) => v.href && app.me.permissions.includes(v.permission)).map((v) =>
        h('li', {}, h('a', { href: v.href }, v.label)),
      ),
    ),
  );
  nav.hidden = false;
  const out = h('button', { type: 'button', class: 'link' }, 'Sign out');
  out.addEventListener('click', signOut);
  fill(
    who,
    h(
      'span',
      { 'data-testid': 'who' },
      `${app.me.name} · ${app.me.role.replace('_', ' ')} · ${app.me.agencyName ?? app.me.agencyId}`,
    ),
    ' ',
    out,
  );
  await route();
  return true;
}

async function signOut() {
  // A token minted by the identity-provider sign-in ends with the session; a pasted token is only forgotten.
  await call('POST', '/auth/sign-out').catch(() => undefined);
  session.clear();
  await signInPage();
}

whenSignedOut((reason) => {
  // A token typed on the sign-in page that fails is that form's to report.
  if (app.me) void signInPage(reason);
});
window.addEventListener('hashchange', () => void route());
window.addEventListener('DOMContentLoaded', async () => {
  if (!session.token() || !(await signedIn())) await signInPage();
});
