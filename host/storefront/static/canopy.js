/* canopy.js — the bridge between a mini-program's page and the bank's shell (docs/bridge.md).
 *
 * Served by the host and added to every page of a mini-program as its first script.
 * Requests go to the parent window only, addressed to the host's exact origin (the origin
 * this script was loaded from); answers are accepted only from that window and origin.
 * Every message: {canopy: 1, id, method, params, nonce} -> {canopy: 1, id, ok, result | error}.
 */
(function () {
  "use strict";
  var VERSION = 1;
  var TIMEOUT_MS = { login: 15000, track: 15000, navigate: 15000 };  // sheets wait for the customer
  var script = document.currentScript;
  var HOST = script && script.src ? new URL(script.src).origin : null;
  var match = /(?:^#|&)canopy=([0-9a-f]{16,128})(?:&|$)/.exec(window.location.hash);
  var nonce = match ? match[1] : null;
  var pending = {};
  var counter = 0;
  var session = null;  // {token, until}: the bridge session of this page's API calls

  function BridgeError(code, message) {
    var error = new Error(message || code);
    error.name = "BridgeError";
    error.code = code;
    return error;
  }

  var available = Boolean(HOST && nonce && window.parent !== window);

  function call(method, params) {
    return new Promise(function (resolve, reject) {
      if (!available) {
        reject(BridgeError("no_shell", "Open this page from the bank's app: the bridge is not there."));
        return;
      }
      counter += 1;
      var id = "r" + counter + "-" + Math.random().toString(36).slice(2, 10);
      var timer = TIMEOUT_MS[method] ? setTimeout(function () {
        delete pending[id];
        reject(BridgeError("timeout", "The bank's app did not answer."));
      }, TIMEOUT_MS[method]) : null;
      pending[id] = { resolve: resolve, reject: reject, timer: timer };
      window.parent.postMessage({ canopy: VERSION, id: id, method: method, params: params || {}, nonce: nonce }, HOST);
    });
  }

  window.addEventListener("message", function (event) {
    if (event.origin !== HOST || event.source !== window.parent) { return; }  // not the shell
    var data = event.data;
    if (!data || typeof data !== "object" || data.canopy !== VERSION || typeof data.id !== "string") { return; }
    var waiting = pending[data.id];
    if (!waiting) { return; }
    delete pending[data.id];
    if (waiting.timer) { clearTimeout(waiting.timer); }
    if (data.ok === true) {
      waiting.resolve(data.result);
    } else {
      var error = data.error || {};
      waiting.reject(BridgeError(String(error.code || "failed"), String(error.message || "The request failed.")));
    }
  });

  // The secret that lets this page talk to the shell lives in the URL fragment; links and
  // forms to the plugin's own pages carry it along (navigations elsewhere lose it).
  function carry(url) {
    try {
      var target = new URL(url, window.location.href);
      if (target.origin !== window.location.origin || target.hash) { return null; }
      target.hash = "canopy=" + nonce;
      return target.href;
    } catch (error) { return null; }
  }
  if (nonce) {
    document.addEventListener("click", function (event) {
      var link = event.target && event.target.closest ? event.target.closest("a[href]") : null;
      var carried = link && !link.target && carry(link.getAttribute("href"));
      if (carried) { link.setAttribute("href", carried); }
    }, true);
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var carried = form && form.getAttribute && carry(form.getAttribute("action") || window.location.pathname);
      if (carried) { form.setAttribute("action", carried); }
    }, true);
  }

  function login() { return call("login", {}); }

  /** A session token for this page's own API calls (login code exchanged on this origin). */
  function getSession(fresh) {
    if (!fresh && session && session.until > Date.now()) { return Promise.resolve(session.token); }
    return login().then(function (answer) {
      return fetch("/_canopy/session", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ code: answer.code })
      });
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok || typeof data.session_token !== "string") {
          throw BridgeError("login_failed", data.detail || "The login code was not accepted.");
        }
        session = { token: data.session_token, until: Date.now() + (data.expires_in - 30) * 1000 };
        return session.token;
      });
    });
  }

  /** fetch() of this page's own API as the signed-in customer. */
  function apiFetch(url, init) {
    function attempt(fresh) {
      return getSession(fresh).then(function (token) {
        var options = Object.assign({}, init || {});
        var headers = new Headers(options.headers || {});
        headers.set("Authorization", "Bearer " + token);
        options.headers = headers;
        return fetch(url, options);
      });
    }
    return attempt(false).then(function (response) {
      return response.status === 401 && session ? (session = null, attempt(true)) : response;
    });
  }

  window.canopy = Object.freeze({
    version: VERSION,
    available: available,
    login: login,
    authorize: function (scopes) { return call("authorize", { scopes: scopes }); },
    requestPayment: function (intentId) { return call("requestPayment", { intentId: intentId }); },
    navigate: function (target) {
      return call("navigate", typeof target === "string" ? { path: target } : target);
    },
    track: function (event, props) { return call("track", { event: event, props: props || {} }); },
    session: getSession,
    fetch: apiFetch
  });
})();
