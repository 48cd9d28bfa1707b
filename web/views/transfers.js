// Caseload transfers: each open one with its last day, a bar per step, and the clients who need someone now.
import { call, refusal } from '../api.js';
import { fill, h, shortId, when, words } from '../dom.js';

const POLL_MS = 4000;

export async function transfersView(main, app, transferId) {
  if (transferId) return transferDetail(main, app, transferId);
  const result = await call('GET', '/v1/transfers?endedWithinDays=30&limit=100');
  if (!result.ok)
    return fill(
      main,
      h('h1', {}, 'Transfers'),
      h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail),
    );
  const items = result.body.items;
  fill(
    main,
    h('h1', {}, 'Transfers'),
    items.length === 0
      ? h('p', {}, 'No caseload transfer is open, and none ended in the last 30 days.')
      : h(
          'table',
          {},
          h('caption', {}, 'Open transfers, and those that ended in the last 30 days'),
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ['Counselor', 'Last day', 'Status', 'Cases', 'Closed', ''].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            {},
            items.map((t) =>
              h(
                'tr',
                {},
                h('th', { scope: 'row' }, t.counselorId),
                h('td', {}, t.lastDay),
                h('td', {}, words(t.status)),
                h('td', {}, `${t.started} of ${t.expected}`),
                h('td', {}, String(t.casesByStatus?.closed ?? 0)),
                h('td', {}, h('a', { href: `#/transfers/${t.transferId}` }, `Follow the transfer of ${t.counselorId}`)),
              ),
            ),
          ),
        ),
  );
}

/** How many of the transfer's cases have got past each step (closed cases have passed them all). */
export function pastSteps(progress, steps) {
  const order = steps.filter((s) => s !== 'opening' && s !== 'done');
  return order.map((step, i) => {
    let past = progress.byStatus.closed ?? 0;
    let at = 0;
    for (const [s, n] of Object.entries(progress.openBySteps)) {
      const j = order.indexOf(s);
      if (j > i) past += n;
      if (j === i) at += n;
    }
    return { step, past, at };
  });
}

async function transferDetail(main, app, transferId) {
  const heading = h('h1', {}, 'Transfer');
  const summary = h('div', { class: 'summary' });
  const bars = h('div', { class: 'bars' });
  const lists = h('div', { class: 'lists' });
  const updated = h('p', { class: 'hint', 'aria-live': 'off' });
  fill(
    main,
    h('p', {}, h('a', { href: '#/transfers' }, '← All transfers')),
    heading,
    updated,
    summary,
    h('h2', {}, 'Progress by step'),
    bars,
    lists,
  );

  let last = '';
  async function load() {
    const result = await call('GET', `/v1/transfers/${transferId}`);
    if (!result.ok) {
      fill(summary, h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail));
      return;
    }
    const p = result.body;
    updated.textContent = `Updates every few seconds · last ${when(new Date().toISOString())}`;
    const shape = JSON.stringify(p);
    if (shape === last) return;
    last = shape;
    heading.textContent = `Transfer of ${p.counselorId}'s caseload`;
    const total = Math.max(p.expected, 1);
    fill(
      summary,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Last day'),
        h('dd', {}, p.lastDay),
        h('dt', {}, 'Status'),
        h('dd', { 'data-testid': 'transfer-status' }, words(p.status)),
        h('dt', {}, 'Cases opened'),
        h('dd', { 'data-testid': 'opened' }, `${p.cases} of ${p.expected}`),
        h('dt', {}, 'Clients told in time'),
        h('dd', {}, `${p.informed.inTime} told in time, ${p.informed.late} late, ${p.informed.notYet} not yet`),
        h('dt', {}, 'Closed'),
        h('dd', {}, `${p.done}`),
      ),
    );
    fill(
      bars,
      h(
        'div',
        { class: 'bar' },
        h('label', { for: 'bar-opened' }, `Opened: ${p.cases} of ${p.expected}`),
        h('progress', { id: 'bar-opened', max: total, value: p.cases }),
      ),
      pastSteps(p, app.vocabulary.steps).map(({ step, past, at }) =>
        h(
          'div',
          { class: 'bar', dataset: { step } },
          h(
            'label',
            { for: `bar-${step}` },
            `${words(step)}: ${past} of ${p.expected} past`,
            at ? ` · ${at} here now` : '',
          ),
          h('progress', { id: `bar-${step}`, max: total, value: past }),
        ),
      ),
    );
    fill(
      lists,
      caseList(
        'At risk of missing the notice deadline',
        p.atRiskOfMissingNotice,
        'at-risk',
        'No client is at risk of missing the notice deadline.',
      ),
      caseList('Escalated', p.escalated, 'escalated', 'Nothing is escalated.'),
      caseList('Stuck', p.stuck, 'stuck', 'No case is stuck.'),
      caseList(
        'Without a proposed receiver',
        p.withoutProposedReceiver,
        'unmatched',
        'Every case has a proposed receiver.',
      ),
      p.listsCappedAt ? h('p', { class: 'hint' }, `Each list shows at most ${p.listsCappedAt} cases.`) : null,
    );
  }
  await load();
  const timer = setInterval(() => {
    if (!document.hidden) void load();
  }, POLL_MS);
  app.stops.push(() => clearInterval(timer));
}

function caseList(title, ids, testId, empty) {
  return h(
    'section',
    { class: `case-list ${ids.length ? 'attention' : ''}`, 'aria-label': title, dataset: { testid: testId } },
    h('h2', {}, `${title} (${ids.length})`),
    ids.length === 0
      ? h('p', {}, empty)
      : h(
          'ul',
          {},
          ids.map((id) => h('li', {}, h('a', { href: `#/cases/${id}` }, `case ${shortId(id)}`))),
        ),
  );
}
