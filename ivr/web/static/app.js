/* Call Center Protokol: the little JavaScript every page shares.
 *
 * window.ivr.api(method, url, body)  fetch with JSON, the session cookie and the
 *   page's CSRF token (X-CSRF-Token); resolves with the JSON answer (null for
 *   204), rejects with an Error whose message is the API's error message
 *   (error.status, error.code and error.fields carry the rest). A 401 means the
 *   session ended: the browser goes to the login page, then back here.
 * window.ivr.live(url, handlers)  server-sent events: handlers maps an event
 *   type ("call.started", ...) to a function(payload, event). Reconnects with
 *   back-off (sending the last event id as ?last_event_id=), and shows
 *   "terhubung" / "terputus" in the header. Returns {close()}.
 */
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function toLogin() {
    const next = window.location.pathname + window.location.search;
    window.location.assign("/login?next=" + encodeURIComponent(next));
  }

  async function api(method, url, body) {
    method = method.toUpperCase();
    const headers = { Accept: "application/json" };
    const init = { method: method, headers: headers, credentials: "same-origin" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRF-Token"] = csrfToken();
    }
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await fetch(url, init);
    let data = null;
    if (response.status !== 204) {
      const text = await response.text();
      try {
        data = text ? JSON.parse(text) : null;
      } catch (_) {
        data = null;
      }
    }
    if (response.ok) {
      return data;
    }
    if (response.status === 401) {
      toLogin();
    }
    const detail = data && data.error ? data.error : {};
    const error = new Error(detail.message || "Permintaan gagal (HTTP " + response.status + ")");
    error.status = response.status;
    error.code = detail.code || null;
    error.fields = detail.fields || {};
    throw error;
  }

  function showConnection(connected) {
    const indicator = document.querySelector("[data-live-status]");
    if (!indicator) {
      return;
    }
    indicator.hidden = false;
    indicator.textContent = connected ? "terhubung" : "terputus";
    indicator.classList.toggle("live-up", connected);
    indicator.classList.toggle("live-down", !connected);
  }

  function live(url, handlers) {
    const FIRST_RETRY_MS = 1000;
    const MAX_RETRY_MS = 30000;
    let source = null;
    let retryMs = FIRST_RETRY_MS;
    let timer = null;
    let lastEventId = "";
    let closed = false;

    function withLastId() {
      if (!lastEventId) {
        return url;
      }
      return url + (url.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastEventId);
    }

    function dispatch(handler, event) {
      if (event.lastEventId) {
        lastEventId = event.lastEventId;
      }
      let payload = event.data;
      try {
        payload = JSON.parse(event.data);
      } catch (_) {
        /* not JSON: hand over the text */
      }
      handler(payload, event);
    }

    function connect() {
      timer = null;
      source = new EventSource(withLastId(), { withCredentials: true });
      source.onopen = function () {
        retryMs = FIRST_RETRY_MS;
        showConnection(true);
      };
      source.onerror = function () {
        /* The browser's own retry gives up on an HTTP error; ours does not. */
        showConnection(false);
        source.close();
        if (!closed && timer === null) {
          timer = window.setTimeout(connect, retryMs);
          retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
        }
      };
      Object.keys(handlers).forEach(function (type) {
        source.addEventListener(type, function (event) {
          dispatch(handlers[type], event);
        });
      });
    }

    showConnection(false);
    connect();
    return {
      close: function () {
        closed = true;
        if (timer !== null) {
          window.clearTimeout(timer);
        }
        source.close();
      },
    };
  }

  window.ivr = { api: api, live: live };
})();
