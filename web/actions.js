// Acting on a case from the page: one form per human action, each posting to the same route the API documents.
import { call, newKey, refusal } from './api.js';
import { field, fill, h, select, today, uid } from './dom.js';

const textArea = (name, attrs = {}) => h('textarea', { name, rows: 3, maxlength: 2000, required: true, ...attrs });
const dateInput = (name, value = today()) => h('input', { type: 'date', name, value, required: true });

function radios(name, legend, options) {
  return h(
    'fieldset',
    { class: 'radios' },
    h('legend', {}, legend),
    options.map(([value, label], i) => {
      const id = uid(name);
      return h(
        'span',
        { class: 'radio' },
        h('input', { type: 'radio', name, value, id, required: i === 0 }),
        h('label', { for: id }, label),
      );
    }),
  );
}

/**
 * Every action the page offers. `permission` is the role matrix's (the page shows a form only to a role that may
 * use it; the API decides either way), `path` the route, `fields` the controls, `body` what is sent.
 */
export function actionSpecs(vocabulary) {
  return {
    review: {
      title: 'Review the decision',
      permission: 'reviewDecision',
      path: ({ caseId }) => `/v1/cases/${caseId}/review`,
      fields: () => [
        radios('decision', 'Decision', [
          ['approve', 'Approve'],
          ['reject', 'Reject'],
          ['send_back', 'Send back for revision'],
        ]),
        field('Rationale', textArea('rationale'), 'Why; it goes to the audit trail and to the counselor.'),
      ],
      body: (f) => ({ decision: f.get('decision'), rationale: f.get('rationale') }),
      submit: 'Record the review',
    },
    revise: {
      title: 'Revise the decision',
      permission: 'reviseDecision',
      path: ({ caseId }) => `/v1/cases/${caseId}/revision`,
      fields: () => [field('What changed', textArea('rationale'))],
      body: (f) => ({ rationale: f.get('rationale') }),
      submit: 'Send the revision',
    },
    safetyPlan: {
      title: 'Document the safety plan',
      permission: 'recordSafetyPlan',
      path: ({ caseId }) => `/v1/cases/${caseId}/safety-plan`,
      fields: () => [
        field(
          'Where the plan is documented',
          h('input', { type: 'text', name: 'documentRef', maxlength: 500, required: true }),
          'A reference in the record system, not the plan itself.',
        ),
      ],
      body: (f) => ({ documentRef: f.get('documentRef') }),
      submit: 'Record the plan',
    },
    approveSafetyPlan: {
      title: 'Approve the safety plan',
      permission: 'approveSafetyPlan',
      path: ({ caseId }) => `/v1/cases/${caseId}/safety-plan/approval`,
      fields: () => [],
      body: () => ({}),
      submit: 'Approve the plan',
    },
    conversation: {
      title: 'Record the conversation',
      permission: 'recordConversation',
      path: ({ caseId }) => `/v1/cases/${caseId}/conversation`,
      fields: () => [
        field('Held on', dateInput('heldOn')),
        field('What the client chose', select('clientChoice', vocabulary.clientChoices, { required: true })),
        field('Last session', dateInput('lastSessionDate')),
      ],
      body: (f) => ({
        heldOn: f.get('heldOn'),
        clientChoice: f.get('clientChoice'),
        lastSessionDate: f.get('lastSessionDate'),
      }),
      submit: 'Record the conversation',
    },
    outreach: {
      title: 'Record an outreach attempt',
      permission: 'recordOutreachAttempt',
      path: ({ caseId }) => `/v1/cases/${caseId}/outreach-attempts`,
      fields: () => [
        field('Attempted on', dateInput('attemptedOn')),
        field(
          'Channel',
          select('channel', vocabulary.contactChannels, { required: true }),
          'Only a channel the client marked safe is accepted.',
        ),
      ],
      body: (f) => ({ attemptedOn: f.get('attemptedOn'), channel: f.get('channel') }),
      submit: 'Record the attempt',
    },
    waiver: {
      title: 'Go on without the conversation',
      permission: 'waiveConversation',
      path: ({ caseId }) => `/v1/cases/${caseId}/conversation/waiver`,
      fields: () => [
        field('Basis', select('basis', ['client_initiated', 'clinician_safety'], { required: true })),
        field('Rationale', textArea('rationale')),
      ],
      body: (f) => ({ basis: f.get('basis'), rationale: f.get('rationale') }),
      submit: 'Record the waiver',
    },
    referralResponse: {
      title: "Record the receiver's answer",
      permission: 'recordReferralResponse',
      needs: 'sent',
      path: ({ caseId, referralId }) => `/v1/cases/${caseId}/referrals/${referralId}/response`,
      fields: () => [
        radios('response', 'Answer', [
          ['accepted', 'Accepted'],
          ['declined', 'Declined'],
        ]),
        field('Declined by', select('declinedBy', [{ value: '', label: '(accepted)' }, 'provider', 'client'])),
        field('Why declined', h('input', { type: 'text', name: 'declineReason', maxlength: 500 })),
      ],
      body: (f) =>
        f.get('response') === 'declined'
          ? {
              response: 'declined',
              ...(f.get('declinedBy') ? { declinedBy: f.get('declinedBy') } : {}),
              ...(f.get('declineReason') ? { declineReason: f.get('declineReason') } : {}),
            }
          : { response: 'accepted' },
      submit: 'Record the answer',
    },
    appointment: {
      title: 'Record the first appointment',
      permission: 'scheduleFirstAppointment',
      needs: 'accepted',
      path: ({ caseId, referralId }) => `/v1/cases/${caseId}/referrals/${referralId}/appointment`,
      fields: () => [
        field('Scheduled for', h('input', { type: 'datetime-local', name: 'scheduledFor', required: true })),
      ],
      body: (f) => ({ scheduledFor: new Date(String(f.get('scheduledFor'))).toISOString() }),
      submit: 'Record the appointment',
    },
    appointmentOutcome: {
      title: 'Record whether the first appointment was kept',
      permission: 'recordAppointmentOutcome',
      needs: 'first_appointment_scheduled',
      path: ({ caseId, referralId }) => `/v1/cases/${caseId}/referrals/${referralId}/appointment-outcome`,
      fields: () => [
        radios('outcome', 'Outcome', [
          ['kept', 'Kept'],
          ['no_show', 'No-show'],
        ]),
      ],
      body: (f) => ({ outcome: f.get('outcome') }),
      submit: 'Record the outcome',
    },
    engagement: {
      title: 'Record engagement at follow-up',
      permission: 'recordEngagement',
      path: ({ caseId }) => `/v1/cases/${caseId}/engagement`,
      fields: () => [
        radios('engaged', 'Has the client engaged with the new provider?', [
          ['true', 'Yes'],
          ['false', 'No'],
        ]),
      ],
      body: (f) => ({ engaged: f.get('engaged') === 'true' }),
      submit: 'Record engagement',
    },
    completeTask: {
      title: 'Mark this task done',
      permission: 'completeTask',
      path: ({ taskId }) => `/v1/tasks/${taskId}/completion`,
      fields: () => [field('Note (optional)', h('input', { type: 'text', name: 'note', maxlength: 500 }))],
      body: (f) => (f.get('note') ? { note: f.get('note') } : {}),
      submit: 'Mark done',
    },
  };
}

/** What a waiting task is acted on with: the action for each kind of wait (others open the case). */
const BY_TASK_KIND = {
  review_decision: ['review'],
  revise_decision: ['revise'],
  document_safety_plan: ['safetyPlan'],
  approve_safety_plan: ['approveSafetyPlan'],
  hold_conversation: ['conversation', 'waiver'],
  outreach_attempt: ['outreach', 'waiver'],
  referral_answer: ['referralResponse'],
  schedule_first_appointment: ['appointment'],
  record_first_appointment: ['appointmentOutcome'],
  'outreach.follow_up': ['engagement', 'completeTask'],
  'outreach.caring_contact': ['completeTask'],
  'outreach.first_appointment_no_show': ['completeTask'],
  'delivery.failed': ['completeTask'],
};

export function actionsForTask(kind, me, specs) {
  return (BY_TASK_KIND[kind] ?? []).filter((name) => me.permissions.includes(specs[name].permission));
}

/** The referral an action works on: the newest one in the state the action needs. */
export function referralFor(spec, process) {
  if (!spec.needs) return null;
  const referrals = process?.referrals ?? [];
  return [...referrals].reverse().find((r) => r.state === spec.needs) ?? null;
}

/**
 * A form for one action. It keeps one Idempotency-Key until the action is applied, so a double click or a retry
 * after a lost answer is the same action; a refusal shows the rule's name and what it says.
 */
export function actionForm(spec, ids, onDone) {
  let key = newKey();
  const message = h('div', { class: 'message', role: 'alert' });
  const button = h('button', { type: 'submit' }, spec.submit);
  const form = h(
    'form',
    { class: 'action', 'aria-label': spec.title },
    h('h4', {}, spec.title),
    spec.fields(),
    button,
    message,
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fill(message);
    message.className = 'message';
    button.disabled = true;
    try {
      let body;
      try {
        body = spec.body(new FormData(form));
      } catch {
        message.className = 'message refused';
        fill(message, 'A value in this form is not valid.');
        return;
      }
      const result = await call('POST', spec.path(ids), { body, idempotencyKey: key });
      if (result.ok) {
        key = newKey();
        form.reset();
        message.className = 'message done';
        fill(message, 'Done.');
        await onDone?.(result.body);
        return;
      }
      const why = showRefusal(message, result);
      if (why.rule) form.dataset.refusedRule = why.rule;
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

/** Shows why the service said no in `el`: the rule by name when a rule refused, what is wrong, each bad field. */
export function showRefusal(el, result) {
  const why = refusal(result);
  el.className = 'message refused';
  fill(
    el,
    why.rule ? h('strong', {}, `Refused by the rule ${why.rule}: `) : null,
    why.detail,
    why.fields.length
      ? h(
          'ul',
          {},
          why.fields.map((f) => h('li', {}, f)),
        )
      : null,
  );
  return why;
}
