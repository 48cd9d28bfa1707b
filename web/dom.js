// Building the page from data: every value goes in as text or an attribute, never as HTML.

/**
 * h('p', { class: 'x' }, 'text', child) makes an element. `on*` attributes take functions; `false`, `null` and
 * `undefined` attributes and children are left out.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === false || child === null || child === undefined) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces what `el` holds. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uniqueIds = 0;
/** An id for a label's `for`. */
export function uid(prefix = 'f') {
  uniqueIds += 1;
  return `${prefix}-${uniqueIds}`;
}

/** "review_decision" → "review decision". */
export function words(code) {
  return String(code ?? '').replace(/[_.]/g, ' ');
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

/** A date input's value for today, in this browser's zone. */
export function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** A labelled field: `control` is an input, select or textarea element. */
export function field(label, control, hint) {
  const id = control.id || uid();
  control.id = id;
  const hintId = hint ? `${id}-hint` : null;
  if (hintId) control.setAttribute('aria-describedby', hintId);
  return h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label),
    hint ? h('p', { class: 'hint', id: hintId }, hint) : null,
    control,
  );
}

export function select(name, options, attrs = {}) {
  return h(
    'select',
    { name, ...attrs },
    options.map((o) =>
      typeof o === 'string' ? h('option', { value: o }, words(o)) : h('option', { value: o.value }, o.label),
    ),
  );
}

/** A short id for lists: the first 8 characters of a uuid. */
export function shortId(id) {
  return String(id).slice(0, 8);
}
