/* Claim and buy buttons for Shanghai Neighbourhood Deals. Loaded from static/ so a strict CSP works.
 * In the bank's app the host's bridge (window.canopy, docs/bridge.md) signs the customer in for
 * API calls (canopy.fetch) and shows the bank's payment sheet (canopy.requestPayment). */
(function () {
  "use strict";
  var main = document.querySelector("main[data-claim-api]");
  if (!main) { return; }
  var api = main.getAttribute("data-claim-api");
  var bridge = window.canopy && window.canopy.available ? window.canopy : null;
  var call = bridge ? bridge.fetch : function (url, options) { return fetch(url, options); };

  function show(area, text) {
    var status = area.querySelector("[data-status]");
    if (status) { status.textContent = text; status.hidden = false; }
  }

  function claimed(card, area, button, result) {
    var code = document.createElement("p");
    code.className = "code";
    code.appendChild(document.createTextNode(main.getAttribute("data-msg-claimed") + " "));
    var strong = document.createElement("strong");
    strong.textContent = result.code;
    code.appendChild(strong);
    area.replaceChild(code, button);
    var left = card.querySelector("[data-left]");
    if (left && typeof result.remaining === "number") {
      left.textContent = main.getAttribute("data-msg-left").replace("%d", String(result.remaining));
    }
  }

  function json(response) {
    return response.json().then(function (data) { return { ok: response.ok, data: data }; },
                                function () { return { ok: false, data: {} }; });
  }

  // After the bank's sheet: the coupon is the customer's once the payment succeeded.
  function pay(card, area, button, intentId, couponId) {
    return bridge.requestPayment(intentId).then(function (outcome) {
      if (outcome.status !== "succeeded") {
        show(area, main.getAttribute("data-msg-unpaid"));
        button.disabled = false;
        return;
      }
      return call(main.getAttribute("data-claims-api"), { headers: { "Accept": "application/json" } })
        .then(json).then(function (answer) {
          var held = (answer.data.claims || []).filter(function (c) { return c.id === couponId; })[0];
          if (held) { claimed(card, area, button, held); } else { window.location.reload(); }
        });
    });
  }

  function failed(area, button, error) {
    var signIn = error && error.code === "sign_in_required";
    show(area, signIn ? main.getAttribute("data-msg-sign-in") : main.getAttribute("data-msg-failed"));
    button.disabled = false;
  }

  document.querySelectorAll("button[data-claim]").forEach(function (button) {
    button.addEventListener("click", function () {
      var card = button.closest("[data-deal]");
      var area = button.closest("[data-claim-area]");
      var couponId = button.getAttribute("data-claim");
      button.disabled = true;
      call(api, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ coupon_id: couponId })
      }).then(json).then(function (answer) {
        var next = answer.data.confirm_url;
        if (answer.ok && answer.data.claimed) {
          claimed(card, area, button, answer.data);
        } else if (answer.ok && bridge && typeof answer.data.intent_id === "string") {
          return pay(card, area, button, answer.data.intent_id, couponId);
        } else if (answer.ok && typeof next === "string" && next.charAt(0) === "/" && next.charAt(1) !== "/") {
          window.location.assign(next);  // outside the bank's app: the bank's own page
        } else {
          show(area, answer.data.detail || answer.data.title || main.getAttribute("data-msg-failed"));
          button.disabled = answer.data.status === 409 || answer.data.status === 410;
        }
      }).catch(function (error) { failed(area, button, error); });
    });
  });

  document.querySelectorAll("button[data-pay]").forEach(function (button) {
    button.addEventListener("click", function () {
      var card = button.closest("[data-deal]");
      var area = button.closest("[data-claim-area]");
      if (!bridge) { show(area, main.getAttribute("data-msg-failed")); return; }
      button.disabled = true;
      pay(card, area, button, button.getAttribute("data-pay"), button.getAttribute("data-coupon"))
        .catch(function (error) { failed(area, button, error); });
    });
  });

  // Pages are served without the customer (docs/bridge.md): show what they already hold, through the API.
  if (bridge) {
    call(main.getAttribute("data-claims-api"), { headers: { "Accept": "application/json" } })
      .then(json).then(function (answer) {
        (answer.ok && answer.data.claims || []).forEach(function (held) {
          var card = document.querySelector('[data-deal="' + String(held.id).replace(/["\\]/g, "") + '"]');
          var button = card && card.querySelector("button[data-claim]");
          if (button) { claimed(card, button.closest("[data-claim-area]"), button, held); }
        });
      }).catch(function () { /* not signed in: the buttons stay as they are */ });
  }
})();
