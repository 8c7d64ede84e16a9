/* Claim buttons for Shanghai Neighbourhood Deals. Loaded from static/ so a strict CSP works. */
(function () {
  "use strict";
  var main = document.querySelector("main[data-claim-api]");
  if (!main) { return; }
  var api = main.getAttribute("data-claim-api");

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

  document.querySelectorAll("button[data-claim]").forEach(function (button) {
    button.addEventListener("click", function () {
      var card = button.closest("[data-deal]");
      var area = button.closest("[data-claim-area]");
      button.disabled = true;
      fetch(api, {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify({ coupon_id: button.getAttribute("data-claim") })
      }).then(function (response) {
        return response.json().then(function (data) { return { ok: response.ok, data: data }; },
                                     function () { return { ok: false, data: {} }; });
      }).then(function (answer) {
        var next = answer.data.confirm_url;
        if (answer.ok && answer.data.claimed) {
          claimed(card, area, button, answer.data);
        } else if (answer.ok && typeof next === "string" && next.charAt(0) === "/" && next.charAt(1) !== "/") {
          // A paid coupon: confirm on the bank's own page (until the bridge's requestPayment exists).
          window.location.assign(next);
        } else {
          show(area, answer.data.detail || answer.data.title || main.getAttribute("data-msg-failed"));
          button.disabled = answer.data.status === 409 || answer.data.status === 410;
        }
      }).catch(function () {
        show(area, main.getAttribute("data-msg-failed"));
        button.disabled = false;
      });
    });
  });
})();
