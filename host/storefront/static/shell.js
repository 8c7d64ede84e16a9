/* The shell's side of the canopy.js bridge (docs/bridge.md).
 *
 * The mini-program's frame is sandboxed without allow-same-origin, so its messages come
 * from the opaque origin "null". A message is handled only when all of these hold:
 *   event.source === the frame's window, event.origin === "null",
 *   {canopy: 1, id, method, params, nonce} with a known method, at most 16 KiB,
 *   and nonce === the secret this shell put in the frame's URL fragment (#canopy=…).
 * Anything else is ignored and counted. Answers: {canopy: 1, id, ok, result | error}.
 */
(function () {
  "use strict";
  var VERSION = 1;
  var MAX_MESSAGE = 16 * 1024;
  var MAX_TRACKS = 100;
  var root = document.querySelector("[data-canopy-shell]");
  if (!root) { return; }
  var plugin = root.getAttribute("data-plugin");
  var branch = root.getAttribute("data-branch");
  var lang = root.getAttribute("data-lang");
  var frame = root.querySelector("iframe.mp-frame");
  var sheet = root.querySelector(".sheet");
  var sheetFrame = sheet.querySelector(".sheet-frame");
  var sheetTitle = sheet.querySelector("#sheet-title");
  var closeButton = sheet.querySelector(".sheet-close");
  var nonce = secret();
  var ignored = 0;
  var reported = {};
  var tracks = 0;
  var onSheetClosed = null;

  function secret() {
    var bytes = new Uint8Array(24);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function base() { return "/shell/" + encodeURIComponent(plugin); }
  function withHost(path, params) {
    var query = new URLSearchParams(params || {});
    query.set("branch", branch);
    query.set("lang", lang);
    return path + "?" + query.toString();
  }

  function BridgeError(code, message) { this.code = code; this.message = message || code; }

  function getJson(url, init) {
    return fetch(url, Object.assign({ credentials: "same-origin", headers: { "Accept": "application/json" } }, init || {}))
      .then(function (response) {
        if (response.status === 401) { throw new BridgeError("sign_in_required", "The customer is not signed in."); }
        if (response.status === 204) { return {}; }
        return response.json().then(function (data) {
          if (!response.ok) { throw new BridgeError(response.status === 404 ? "not_found" : "refused", data.detail || data.title); }
          return data;
        }, function () { throw new BridgeError("unavailable", "The bank did not answer."); });
      }, function () { throw new BridgeError("unavailable", "The bank could not be reached."); });
  }

  function post(url, body) {
    return getJson(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(body)
    });
  }

  // -- sheets: host pages above the frame, never inside it --------------------------------

  function openSheet(kind, url) {
    return new Promise(function (resolve) {
      sheetTitle.textContent = sheetTitle.getAttribute("data-title-" + kind) || "";
      sheetFrame.src = url;
      sheet.hidden = false;
      frame.setAttribute("aria-hidden", "true");
      closeButton.focus();
      onSheetClosed = resolve;
    });
  }

  function closeSheet() {
    sheet.hidden = true;
    sheetFrame.src = "about:blank";
    frame.removeAttribute("aria-hidden");
    var done = onSheetClosed;
    onSheetClosed = null;
    if (done) { done(); }
  }
  closeButton.addEventListener("click", closeSheet);

  function busy() {
    if (onSheetClosed) { throw new BridgeError("busy", "Another bank sheet is open."); }
  }

  // -- the methods -------------------------------------------------------------------------

  var PAYMENT_OUTCOMES = { succeeded: "succeeded", failed: "failed", canceled: "canceled", expired: "canceled",
                           requires_confirmation: "canceled" };

  var methods = {
    login: function () {
      return post(withHost("/mp/" + encodeURIComponent(plugin) + "/login-code"), {}).then(function (data) {
        return { code: data.code, expires_in: data.expires_in };
      });
    },

    authorize: function (params) {
      var scopes = params && params.scopes;
      if (!Array.isArray(scopes) || scopes.length < 1 || scopes.length > 10 ||
          !scopes.every(function (s) { return typeof s === "string" && s.length <= 64; })) {
        return Promise.reject(new BridgeError("invalid_params", "scopes must be 1-10 scope names."));
      }
      var query = new URLSearchParams();
      scopes.forEach(function (s) { query.append("scope", s); });
      var grantsUrl = withHost(base() + "/grants", query);
      return getJson(grantsUrl).then(function (now) {
        if (now.granted) { return { granted: true, scopes: now.scopes }; }
        busy();
        return openSheet("consent", withHost(base() + "/consent", query)).then(function () {
          return getJson(grantsUrl);
        }).then(function (after) { return { granted: after.granted, scopes: after.scopes }; });
      });
    },

    requestPayment: function (params) {
      var intent = params && params.intentId;
      if (typeof intent !== "string" || !/^pi_[A-Za-z0-9_-]{1,64}$/.test(intent)) {
        return Promise.reject(new BridgeError("invalid_params", "intentId must be a payment intent id."));
      }
      var stateUrl = withHost(base() + "/payments/" + encodeURIComponent(intent));
      function answer(data) {
        return { status: PAYMENT_OUTCOMES[data.state] || "failed", state: data.state, intentId: data.intent_id };
      }
      return getJson(stateUrl).then(function (before) {
        if (before.state !== "requires_confirmation") { return answer(before); }
        busy();
        return openSheet("payment", "/pay/" + encodeURIComponent(intent) + "?lang=" + encodeURIComponent(lang))
          .then(function () { return getJson(stateUrl); }).then(answer);
      });
    },

    navigate: function (params) {
      var path = params && params.path;
      var to = params && params.to;
      if (to === "storefront") {
        setTimeout(function () { window.location.assign("/s/" + encodeURIComponent(branch) + "?lang=" + encodeURIComponent(lang)); }, 0);
        return Promise.resolve({ navigating: true });
      }
      if (typeof path !== "string" || path.length > 2000 || path.charAt(0) !== "/" || /^\/[\/\\]/.test(path) ||
          /[\u0000-\u001f\\]/.test(path)) {
        return Promise.reject(new BridgeError("invalid_params", "path must be a path inside the mini-program, or to: 'storefront'."));
      }
      var target = new URL("/mp/" + encodeURIComponent(plugin) + path, window.location.origin);
      target.searchParams.set("branch", branch);
      target.searchParams.set("lang", lang);
      setTimeout(function () { window.location.assign(target.pathname + target.search); }, 0);
      return Promise.resolve({ navigating: true });
    },

    track: function (params) {
      if (tracks >= MAX_TRACKS) { return Promise.reject(new BridgeError("rate_limited", "Too many events on this page.")); }
      var event = params && params.event;
      var props = (params && params.props) || {};
      if (typeof event !== "string" || !/^[a-z][a-z0-9_.-]{0,63}$/.test(event) || event.indexOf("canopy.") === 0) {
        return Promise.reject(new BridgeError("invalid_params", "event must be 1-64 of a-z 0-9 . _ - (not canopy.*)."));
      }
      tracks += 1;
      return post(withHost(base() + "/events"), { event: event, props: props }).then(
        function () { return { recorded: true }; },
        function (error) { throw error; });
    }
  };

  // -- messages ----------------------------------------------------------------------------

  function ignore(reason) {
    ignored += 1;
    root.setAttribute("data-ignored", String(ignored));
    if (!reported[reason]) {  // counted by the host once per reason and page
      reported[reason] = true;
      fetch(withHost(base() + "/events"), {
        method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ event: "canopy.ignored", props: { reason: reason } })
      }).catch(function () {});
    }
  }

  function size(data) {
    try { return JSON.stringify(data).length; } catch (error) { return Infinity; }
  }

  function reply(id, ok, value) {
    var message = { canopy: VERSION, id: id, ok: ok };
    message[ok ? "result" : "error"] = value;
    // The frame's origin is opaque: no target origin can name it. Only the frame's window
    // gets the answer, and only to a request that carried this page's secret.
    frame.contentWindow.postMessage(message, "*");
  }

  window.addEventListener("message", function (event) {
    if (event.source !== frame.contentWindow) { ignore("source"); return; }
    if (event.origin !== "null") { ignore("origin"); return; }
    var data = event.data;
    if (size(data) > MAX_MESSAGE) { ignore("size"); return; }
    if (!data || typeof data !== "object" || data.canopy !== VERSION) { ignore("version"); return; }
    if (typeof data.id !== "string" || data.id.length < 1 || data.id.length > 64) { ignore("shape"); return; }
    if (!Object.prototype.hasOwnProperty.call(methods, data.method)) { ignore("method"); return; }
    if (data.nonce !== nonce) { ignore("nonce"); return; }
    var params = data.params === undefined ? {} : data.params;
    if (params === null || typeof params !== "object" || Array.isArray(params)) { ignore("shape"); return; }
    var answer;
    try { answer = Promise.resolve(methods[data.method](params)); } catch (error) { answer = Promise.reject(error); }
    answer.then(function (result) { reply(data.id, true, result); }, function (error) {
      var known = error instanceof BridgeError;
      reply(data.id, false, { code: known ? error.code : "failed", message: known ? error.message : "The request failed." });
    });
  });

  frame.src = root.getAttribute("data-src") + "#canopy=" + nonce;
})();
