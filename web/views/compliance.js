// Compliance: the audit trail filtered and exported, the chain verified, a client's accounting of disclosures.
import { showRefusal } from '../actions.js';
import { call, refusal } from '../api.js';
import { field, fill, h, when, words } from '../dom.js';

const SHOWN = 200;

export async function complianceView(main) {
  const filters = [
    ['caseId', 'Case id', 'text'],
    ['clientId', 'Client id', 'text'],
    ['actorId', 'Who (user id)', 'text'],
    ['action', 'Action (such as case.opened)', 'text'],
    ['from', 'From', 'datetime-local'],
    ['to', 'To', 'datetime-local'],
  ];
  const results = h('div', { class: 'audit-results' });
  const message = h('div', { class: 'message', role: 'alert' });
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter the audit trail' },
    h(
      'div',
      { class: 'grid' },
      filters.map(([name, label, type]) => field(label, h('input', { type, name }))),
    ),
    h('button', { type: 'submit', name: 'show' }, 'Show events'),
    ' ',
    h('button', { type: 'button', name: 'csv' }, 'Export as CSV'),
    ' ',
    h('button', { type: 'button', name: 'ndjson' }, 'Export as NDJSON'),
    message,
  );
  const download = h('p', { class: 'download' });

  const query = (format) => {
    const params = new URLSearchParams({ format });
    for (const [name, , type] of filters) {
      const value = String(new FormData(form).get(name) ?? '').trim();
      if (!value) continue;
      params.set(name, type === 'datetime-local' ? new Date(value).toISOString() : value);
    }
    return `/v1/audit?${params}`;
  };
  const fail = (result) => showRefusal(message, result);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fill(message);
    message.className = 'message';
    const result = await call('GET', query('ndjson'));
    if (!result.ok) return fail(result);
    const lines = String(result.body ?? '')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const manifest = lines.shift()?.manifest;
    fill(results, eventsTable(lines.slice(0, SHOWN), manifest));
  });
  for (const format of ['csv', 'ndjson']) {
    form.querySelector(`button[name=${format}]`).addEventListener('click', async () => {
      fill(message);
      const result = await call('GET', query(format), { raw: true });
      if (!result.ok) return fail({ ...result, body: await result.response.json().catch(() => null) });
      const blob = await result.response.blob();
      const name = `audit-${new Date().toISOString().slice(0, 10)}.${format}`;
      const link = h(
        'a',
        { href: URL.createObjectURL(blob), download: name },
        `Save ${name} (${Math.ceil(blob.size / 1024)} kB)`,
      );
      fill(download, link);
      link.focus();
    });
  }

  const verifyOut = h('div', { role: 'status', class: 'verify' });
  const verify = h('button', { type: 'button' }, 'Verify the audit chain');
  verify.addEventListener('click', async () => {
    verify.disabled = true;
    fill(verifyOut, 'Verifying…');
    const result = await call('GET', '/v1/audit/verify');
    verify.disabled = false;
    if (!result.ok) return fill(verifyOut, h('span', { class: 'message refused' }, refusal(result).detail));
    const r = result.body;
    fill(
      verifyOut,
      h(
        'p',
        { class: r.ok ? 'message done' : 'message refused', 'data-testid': 'verify-result' },
        r.ok
          ? "Your agency's chain is whole."
          : `The chain is broken at entry ${r.firstBroken?.position}: ${r.firstBroken?.reason}.`,
      ),
      h(
        'p',
        {},
        `${r.checked} entries checked, from entry ${r.from} up to entry ${r.headPosition ?? '—'}` +
          `${r.pending ? ` (${r.pending} events still to be chained)` : ''}.`,
      ),
      h(
        'p',
        {},
        r.anchor
          ? `The last anchor (${when(r.anchor.at)}) ${r.anchor.matches ? 'matches' : 'does NOT match'}.`
          : 'No anchor has been written out yet.',
      ),
    );
  });

  const disclosuresOut = h('div', { class: 'disclosures' });
  const disclosuresForm = h(
    'form',
    { 'aria-label': 'Accounting of disclosures' },
    field('Client id', h('input', { type: 'text', name: 'clientId', required: true })),
    field('Since', h('input', { type: 'date', name: 'since' }), 'Three years back when left empty.'),
    h('button', { type: 'submit' }, 'Show disclosures'),
  );
  disclosuresForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const f = new FormData(disclosuresForm);
    const since = f.get('since') ? `?since=${encodeURIComponent(String(f.get('since')))}` : '';
    const result = await call(
      'GET',
      `/v1/clients/${encodeURIComponent(String(f.get('clientId')).trim())}/disclosures${since}`,
    );
    if (!result.ok)
      return fill(disclosuresOut, h('p', { class: 'message refused', role: 'alert' }, refusal(result).detail));
    fill(disclosuresOut, disclosuresTable(result.body));
  });

  fill(
    main,
    h('h1', {}, 'Compliance'),
    h('section', { 'aria-labelledby': 'trail' }, h('h2', { id: 'trail' }, 'Audit trail'), form, download, results),
    h('section', { 'aria-labelledby': 'chain' }, h('h2', { id: 'chain' }, 'Integrity'), verify, verifyOut),
    h(
      'section',
      { 'aria-labelledby': 'disc' },
      h('h2', { id: 'disc' }, 'Accounting of disclosures'),
      disclosuresForm,
      disclosuresOut,
    ),
  );
}

function eventsTable(events, manifest) {
  const count = manifest?.count ?? events.length;
  return h(
    'table',
    { class: 'events' },
    h(
      'caption',
      {},
      count > events.length
        ? `The first ${events.length} of ${count} events (export them all above)`
        : `${count} event${count === 1 ? '' : 's'}`,
    ),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['#', 'When', 'Who', 'What', 'Case', 'Client', 'Outcome'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      events.map((e) =>
        h(
          'tr',
          {},
          h('td', {}, String(e.seq)),
          h('td', {}, when(e.occurred_at)),
          h('td', {}, `${e.actor_id} (${words(e.actor_role)})`),
          h('td', {}, e.action),
          h('td', {}, e.case_id ? h('a', { href: `#/cases/${e.case_id}` }, String(e.case_id).slice(0, 8)) : '—'),
          h('td', {}, e.client_id ?? '—'),
          h('td', {}, e.outcome === 'done' ? 'done' : `${e.outcome}${e.outcome_reason ? `: ${e.outcome_reason}` : ''}`),
        ),
      ),
    ),
  );
}

function disclosuresTable(body) {
  if (body.disclosures.length === 0)
    return h('p', {}, `Nothing about ${body.clientId} was disclosed since ${body.since}.`);
  return h(
    'table',
    {},
    h('caption', {}, `What was disclosed about ${body.clientId} since ${body.since}`),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['When', 'To', 'What', 'Consent', 'Part 2'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      body.disclosures.map((d) =>
        h(
          'tr',
          {},
          h('td', {}, when(d.disclosedAt)),
          h('td', {}, d.recipient),
          h('td', {}, d.disclosed),
          h(
            'td',
            {},
            `${d.consent.purpose ?? '—'} (signed ${d.consent.signedOn ?? '—'}${d.consent.revokedAt ? `, revoked ${when(d.consent.revokedAt)}` : ''})`,
          ),
          h('td', {}, d.substanceUseRecords ? 'yes, with the redisclosure notice' : 'no'),
        ),
      ),
    ),
  );
}
