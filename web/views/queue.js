// My queue: what waits for me (or my role), overdue first, with the action for each task at hand.
import { actionForm, actionsForTask, referralFor } from '../actions.js';
import { call, refusal } from '../api.js';
import { fill, h, shortId, when, words } from '../dom.js';

export async function queueView(main, app) {
  const agencyWide = app.me.permissions.includes('readAgencyQueue');
  let view = 'mine';
  const list = h('div', { class: 'tasks' });
  const updated = h('p', { class: 'hint' });
  const toggle = agencyWide
    ? h(
        'fieldset',
        { class: 'radios inline' },
        h('legend', {}, 'Show'),
        ['mine', 'agency'].map((v) =>
          h(
            'span',
            { class: 'radio' },
            h('input', {
              type: 'radio',
              name: 'view',
              value: v,
              id: `view-${v}`,
              checked: v === view,
              onchange: () => ((view = v), void load()),
            }),
            h('label', { for: `view-${v}` }, v === 'mine' ? 'Mine and my role’s' : 'The whole agency'),
          ),
        ),
      )
    : null;
  const refresh = h('button', { type: 'button', class: 'secondary', onclick: () => void load() }, 'Refresh');
  fill(main, h('h1', {}, 'My queue'), toggle, h('div', { class: 'toolbar' }, updated, refresh), list);

  async function load() {
    const result = await call('GET', `/v1/tasks?view=${view}&limit=100`);
    if (!result.ok) {
      fill(list, h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail));
      return;
    }
    const tasks = result.body.items;
    updated.textContent = `${tasks.length} open task${tasks.length === 1 ? '' : 's'}, overdue first · updated ${when(new Date().toISOString())}`;
    if (tasks.length === 0) {
      fill(list, h('p', {}, 'Nothing waits for you.'));
      return;
    }
    fill(
      list,
      h(
        'ul',
        { class: 'cards' },
        tasks.map((task) => h('li', {}, taskCard(task, app, load))),
      ),
    );
  }
  await load();
  // The queue moves as cases move; a minute is often enough for a page someone reads, not a live board.
  const timer = setInterval(() => {
    if (!document.hidden && !main.querySelector('form.action:focus-within')) void load();
  }, 60_000);
  app.stops.push(() => clearInterval(timer));
}

function taskCard(task, app, reload) {
  const names = actionsForTask(task.kind, app.me, app.specs);
  const body = h('div', { class: 'task-actions' });
  const card = h(
    'article',
    {
      class: `card${task.overdue ? ' overdue' : ''}`,
      'aria-label': `${words(task.kind)} for ${task.clientId}`,
      dataset: { taskId: task.taskId, kind: task.kind },
    },
    h(
      'h2',
      {},
      task.overdue ? h('span', { class: 'badge danger' }, 'Overdue') : null,
      ' ',
      words(task.kind),
      ' · ',
      h('span', { class: 'client' }, task.clientId),
    ),
    h('p', {}, task.detail),
    h(
      'p',
      { class: 'meta' },
      `Due ${when(task.dueAt)} · for ${task.assignee.userId ?? `any ${words(task.assignee.role)}`} · `,
      h('a', { href: `#/cases/${task.caseId}` }, `case ${shortId(task.caseId)}`),
    ),
    body,
  );
  if (names.length > 0) {
    const open = h(
      'button',
      { type: 'button', 'aria-expanded': 'false' },
      names.length > 1 ? 'Act on this task…' : `${app.specs[names[0]].title}…`,
    );
    open.addEventListener('click', async () => {
      open.setAttribute('aria-expanded', 'true');
      open.hidden = true;
      const forms = await formsFor(task, names, app, reload);
      fill(body, forms);
      body.querySelector('input, select, textarea, button')?.focus();
    });
    body.append(open);
  }
  return card;
}

async function formsFor(task, names, app, reload) {
  const specs = names.map((n) => app.specs[n]);
  let process = null;
  if (specs.some((s) => s.needs)) {
    // The referral an answer is about is the case's; read it (the read is audited like any other).
    const result = await call('GET', `/v1/cases/${task.caseId}`);
    if (!result.ok) return h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail);
    process = result.body.process;
  }
  return specs.map((spec) => {
    const referral = referralFor(spec, process);
    if (spec.needs && !referral)
      return h('p', { class: 'hint' }, `${spec.title}: no referral is ${words(spec.needs)} now.`);
    return actionForm(
      spec,
      { caseId: task.caseId, taskId: task.taskId, referralId: referral?.referralId },
      (answer) => {
        app.say(
          answer?.step
            ? `Done: the case of ${task.clientId} now stands at ${words(answer.step)}.`
            : `Done: ${spec.title.toLowerCase()} for ${task.clientId}.`,
        );
        return reload();
      },
    );
  });
}
