// One case: where it stands, what it waits for, what blocks closing it, its referral loop, its letter, its timeline.
import { actionForm, actionsForTask, referralFor } from '../actions.js';
import { call, refusal } from '../api.js';
import { fill, h, shortId, when, words } from '../dom.js';

/** The loop a referral goes round, in the order the page draws it. */
const LOOP = ['proposed', 'sent', 'accepted', 'first_appointment_scheduled', 'first_appointment_kept'];
const OFF_LOOP = ['declined', 'expired', 'no_show', 're_routed', 'withdrawn'];

export async function caseView(main, app, caseId) {
  const result = await call('GET', `/v1/cases/${caseId}`);
  if (!result.ok) {
    return fill(
      main,
      h('h1', {}, 'Case not found'),
      h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail),
    );
  }
  const c = result.body;
  const process = c.process ?? {};
  const [tasks, timeline] = await Promise.all([
    call(
      'GET',
      `/v1/tasks?caseId=${caseId}&view=${app.me.permissions.includes('readAgencyQueue') ? 'agency' : 'mine'}`,
    ),
    call('GET', `/v1/cases/${caseId}/timeline`),
  ]);
  const reload = (answer) => {
    if (answer?.step) app.say(`Done: the case now stands at ${words(answer.step)}.`);
    return caseView(main, app, caseId);
  };

  fill(
    main,
    h('h1', {}, `Case of ${c.clientId ?? 'a client'}`, ' ', h('span', { class: 'id' }, shortId(c.caseId))),
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'Status'),
      h('dd', { 'data-testid': 'case-status' }, words(c.status)),
      h('dt', {}, 'Step'),
      h('dd', { 'data-testid': 'case-step' }, words(c.step)),
      h('dt', {}, 'Kind'),
      h('dd', {}, `${words(c.kind)} (${words(c.reason)})`),
      h('dt', {}, 'Counselor'),
      h('dd', {}, c.counselorId ?? '—'),
      h('dt', {}, 'Last day'),
      h('dd', {}, c.lastDay ?? '—'),
      h('dt', {}, 'Client to be told by'),
      h('dd', {}, c.noticeDue ?? '—'),
      riskFacts(process, app),
    ),
    stepTracker(c.step, app.vocabulary.steps),
    h(
      'section',
      { 'aria-labelledby': 'waiting' },
      h('h2', { id: 'waiting' }, 'Waiting for'),
      c.waitingFor.length
        ? h(
            'ul',
            {},
            c.waitingFor.map((w) => h('li', {}, w)),
          )
        : h('p', {}, 'Nothing.'),
    ),
    h(
      'section',
      { 'aria-labelledby': 'blockers' },
      h('h2', { id: 'blockers' }, 'What blocks closing it'),
      c.blockers.length
        ? h(
            'ul',
            { class: 'blockers' },
            c.blockers.map((b) => h('li', {}, h('code', {}, b.rule), ' ', b.detail, b.due ? ` (by ${b.due})` : '')),
          )
        : h('p', {}, 'Nothing blocks closing it.'),
    ),
    actionsSection(tasks, c, app, reload),
    referralsSection(process),
    letterSection(c, process),
    timelineSection(timeline),
  );
}

/** Risk flags name health facts: shown to the care team, who act on them; others see that a plan is needed. */
function riskFacts(process, app) {
  const risk = process.risk;
  if (!risk) return null;
  const careTeam = app.me.permissions.includes('raiseRiskFlag');
  const flags = process.facts?.riskFlags ?? [];
  const text = careTeam
    ? flags.length
      ? flags.map(words).join(', ')
      : 'none'
    : `${risk.flagCount} flag${risk.flagCount === 1 ? '' : 's'}`;
  return [
    h('dt', {}, 'Risk'),
    h(
      'dd',
      {},
      text,
      risk.flagCount
        ? ` · safety plan ${risk.approvedBy ? 'approved' : risk.safetyPlanAt ? 'documented, not yet approved' : 'needed'}`
        : '',
    ),
  ];
}

function stepTracker(current, steps) {
  const shown = steps.filter((s) => s !== 'opening');
  const at = shown.indexOf(current);
  return h(
    'nav',
    { 'aria-label': 'Steps of the case', class: 'steps' },
    h(
      'ol',
      {},
      shown.map((s, i) =>
        h(
          'li',
          { class: i < at ? 'past' : i === at ? 'current' : 'future', 'aria-current': i === at ? 'step' : false },
          words(s),
        ),
      ),
    ),
  );
}

function actionsSection(tasks, c, app, reload) {
  if (c.status !== 'open' || !tasks.ok) return null;
  const forms = [];
  const seen = new Set();
  for (const task of tasks.body.items) {
    for (const name of actionsForTask(task.kind, app.me, app.specs)) {
      if (seen.has(name)) continue;
      seen.add(name);
      const spec = app.specs[name];
      const referral = referralFor(spec, c.process);
      if (spec.needs && !referral) continue;
      forms.push(actionForm(spec, { caseId: c.caseId, taskId: task.taskId, referralId: referral?.referralId }, reload));
    }
  }
  return h(
    'section',
    { 'aria-labelledby': 'act' },
    h('h2', { id: 'act' }, 'What you can do now'),
    forms.length ? forms : h('p', {}, 'Nothing here waits for you.'),
  );
}

function referralsSection(process) {
  const referrals = process.referrals ?? [];
  return h(
    'section',
    { 'aria-labelledby': 'referrals' },
    h('h2', { id: 'referrals' }, 'Referral loop'),
    referrals.length === 0
      ? h('p', {}, 'No receiver proposed yet.')
      : referrals.map((r, i) => {
          const visited = new Set(r.history.map((e) => e.state));
          visited.add(r.state);
          const name = r.candidate?.name ?? r.candidate?.clinicianId ?? r.candidate?.providerId ?? `receiver ${i + 1}`;
          return h(
            'figure',
            { class: 'loop', 'aria-label': `Referral ${i + 1} to ${name}: ${words(r.state)}` },
            h('figcaption', {}, `${i + 1}. ${name} — now ${words(r.state)}`),
            h(
              'ol',
              { class: 'states' },
              LOOP.map((s) =>
                h(
                  'li',
                  {
                    class: `${visited.has(s) ? 'visited' : ''} ${r.state === s ? 'current' : ''}`,
                    'aria-current': r.state === s ? 'step' : false,
                  },
                  words(s),
                ),
              ),
            ),
            OFF_LOOP.includes(r.state) ? h('p', { class: 'off-loop' }, `Left the loop: ${words(r.state)}`) : null,
            h(
              'ul',
              { class: 'history' },
              r.history.map((e) => h('li', {}, `${when(e.at)}: ${words(e.state)}${e.reason ? ` (${e.reason})` : ''}`)),
            ),
          );
        }),
  );
}

function letterSection(c, process) {
  if (!process.letter)
    return h(
      'section',
      { 'aria-labelledby': 'letter' },
      h('h2', { id: 'letter' }, 'Closure letter'),
      h('p', {}, 'Not issued yet.'),
    );
  const message = h('span', { role: 'status' });
  const open = h('button', { type: 'button' }, 'Open the letter (PDF)');
  open.addEventListener('click', async () => {
    // The PDF needs the signed-in token, so the page fetches it and opens what it got; the read is audited.
    const result = await call('GET', `/v1/cases/${c.caseId}/letter.pdf`, { raw: true });
    if (!result.ok) {
      message.textContent = `The letter could not be read (${result.status}).`;
      return;
    }
    const url = URL.createObjectURL(await result.response.blob());
    window.open(url, '_blank', 'noopener');
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  });
  const delivery = process.letter.delivery;
  return h(
    'section',
    { 'aria-labelledby': 'letter' },
    h('h2', { id: 'letter' }, 'Closure letter'),
    h(
      'p',
      {},
      `Delivery: ${typeof delivery === 'string' ? words(delivery) : words(delivery?.state ?? delivery?.delivery ?? 'issued')}${process.letter.channel ? ` by ${words(process.letter.channel)}` : ''}`,
    ),
    open,
    ' ',
    message,
  );
}

function timelineSection(timeline) {
  if (!timeline.ok)
    return h('section', {}, h('h2', {}, 'Timeline'), h('p', { class: 'message refused' }, refusal(timeline).detail));
  const all = timeline.body.events;
  const tbody = h('tbody');
  const showReads = h('input', { type: 'checkbox', id: 'show-reads' });
  const render = () =>
    fill(
      tbody,
      all
        .filter((e) => showReads.checked || !e.action.startsWith('case.viewed'))
        .map((e) =>
          h(
            'tr',
            { class: e.outcome === 'refused' ? 'refused' : '' },
            h('td', {}, when(e.at)),
            h('td', {}, `${e.actorId} (${words(e.actorRole)})`),
            h('td', {}, words(e.action)),
            h('td', {}, e.outcome === 'done' ? 'done' : `${e.outcome}${e.reason ? `: ${e.reason}` : ''}`),
          ),
        ),
    );
  showReads.addEventListener('change', render);
  render();
  return h(
    'section',
    { 'aria-labelledby': 'timeline' },
    h('h2', { id: 'timeline' }, 'Timeline'),
    h('div', { class: 'field inline' }, showReads, h('label', { for: 'show-reads' }, 'Show who viewed the case')),
    h(
      'table',
      { class: 'timeline' },
      h(
        'caption',
        {},
        timeline.body.truncated
          ? 'The newest events (the audit export has them all)'
          : 'Every step, from the audit trail',
      ),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['When', 'Who', 'What', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      tbody,
    ),
  );
}
