// The signed-in person, for every page: their token, and the API called with it.
//
// The token lives in this tab's sessionStorage, taken from a `#token=...` link (the
// fragment never reaches a server or its logs) or from the sign-in page. Every call
// carries it as a bearer token, so the pages see exactly what the API lets this person
// see, and every read is audited like any other client's.

const KEY = "vigil.token";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Take a token from the address's fragment, then remove it from the address bar. */
export function adoptLinkToken() {
  const match = location.hash.match(/^#token=([^&]+)/);
  if (match) {
    sessionStorage.setItem(KEY, decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function token() {
  return sessionStorage.getItem(KEY);
}

export function signIn(value) {
  sessionStorage.setItem(KEY, value.trim());
}

export function signOut() {
  sessionStorage.removeItem(KEY);
  location.assign("/app/signin");
}

/** Send the person to sign in, and back here afterwards. */
export function requireSignIn() {
  adoptLinkToken();
  if (!token()) {
    const back = encodeURIComponent(location.pathname + location.search);
    location.replace(`/app/signin?next=${back}`);
    throw new ApiError(401, "not signed in");
  }
}

function outcomeText(body) {
  const issue = body && Array.isArray(body.issue) ? body.issue[0] : null;
  return (issue && (issue.diagnostics || issue.details?.text)) || "";
}

/**
 * GET (or `options.method`) a path of the API as the signed-in person; the JSON answer.
 * A 401 (the token expired or was revoked) forgets the token and goes to sign in, unless
 * `options.redirect` is false (the sign-in page itself).
 */
export async function api(path, options = {}) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${token()}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: options.signal,
  });
  if (answer.status === 401) {
    sessionStorage.removeItem(KEY);
    if (options.redirect !== false) requireSignIn();
  }
  const text = await answer.text();
  const body = text ? JSON.parse(text) : null;
  if (!answer.ok) {
    throw new ApiError(answer.status, outcomeText(body) || `the server answered ${answer.status}`);
  }
  return body;
}

/**
 * Follow a server-sent event stream of the API (EventSource cannot send a bearer token):
 * `onEvent({event, id, data})` for each event, reconnecting with Last-Event-ID after a
 * break, with a growing pause. `onState("live" | "reconnecting")` tells the page, so it
 * can say when what it shows may be behind. Returns a function that stops it.
 */
export function follow(path, onEvent, onState = () => {}) {
  const stop = new AbortController();
  let lastId = null;
  let pause = 1000;

  async function once() {
    const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token()}` };
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    const answer = await fetch(path, { headers, signal: stop.signal });
    if (answer.status === 401) {
      requireSignIn();
    }
    if (!answer.ok || !answer.body) throw new ApiError(answer.status, "stream refused");
    onState("live");
    pause = 1000;
    const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = { event: "message", id: null, data: "" };
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") message.event = text;
          else if (field === "id") message.id = text;
          else if (field === "data") message.data += (message.data ? "\n" : "") + text;
        }
        if (message.id !== null) lastId = message.id;
        if (message.data) onEvent(message);
      }
    }
  }

  (async () => {
    while (!stop.signal.aborted) {
      try {
        await once();
      } catch (error) {
        if (stop.signal.aborted) return;
      }
      onState("reconnecting");
      await new Promise((done) => setTimeout(done, pause));
      pause = Math.min(pause * 2, 15000);
    }
  })();
  return () => stop.abort();
}
