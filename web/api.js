// The page's only way to the service: the same /v1 API every other client uses, with the signed-in token.

const TOKEN_KEY = 'handoff.token';

/** The token lives for this tab only (sessionStorage): closing the tab signs out. */
export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  set: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

let onSignedOut = () => {};
export function whenSignedOut(handler) {
  onSignedOut = handler;
}

/**
 * Calls the API. Answers `{ ok, status, body, headers }`; never throws for an HTTP status, only when the service
 * cannot be reached. A 401 ends the session (the token expired or was revoked).
 */
export async function call(method, path, options = {}) {
  const headers = { accept: 'application/json' };
  const token = session.token();
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.idempotencyKey) headers['idempotency-key'] = options.idempotencyKey;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    return {
      ok: false,
      status: 0,
      body: { detail: 'the service cannot be reached; check your connection' },
      headers: new Headers(),
    };
  }
  if (options.raw) return { ok: response.ok, status: response.status, response, headers: response.headers };
  const text = await response.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    // not JSON (an export): the text as it came
  }
  if (response.status === 401 && token) {
    session.clear();
    onSignedOut(typeof body === 'object' && body?.detail ? body.detail : 'your sign-in has ended');
  }
  return { ok: response.ok, status: response.status, body, headers: response.headers };
}

/** The words of a refusal: the rule's name first when a rule said no, then what is wrong. */
export function refusal(result) {
  const body = typeof result.body === 'object' && result.body ? result.body : {};
  const detail = body.detail ?? `the service answered ${result.status}`;
  const fields = Array.isArray(body.errors) ? body.errors.map((e) => `${e.field}: ${e.message}`) : [];
  return { rule: body.rule ?? null, detail, fields, status: result.status };
}

/** A new Idempotency-Key per action a form is about to send; a double click sends the same one. */
export function newKey() {
  return crypto.randomUUID();
}
