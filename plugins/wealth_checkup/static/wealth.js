/* Wealth check-up page behaviour. Loaded from static/ so a strict CSP (script-src 'self') works. */
(function () {
  "use strict";

  // Submit the questionnaire by navigating, keeping any query string the host put in the form's action.
  var form = document.querySelector("form[data-questionnaire]");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var url = new URL(form.getAttribute("action"), document.baseURI);
      new FormData(form).forEach(function (value, name) { url.searchParams.set(name, value); });
      window.location.assign(url.toString());
    });
  }

  // "Forget my answers": DELETE /answers through the plugin's API, then say so.
  var forget = document.querySelector("[data-forget]");
  var status = document.querySelector("[data-status]");
  function say(text) {
    if (status) { status.textContent = text; status.hidden = false; }
  }
  if (forget) {
    forget.addEventListener("click", function () {
      forget.disabled = true;
      fetch(forget.getAttribute("data-forget"), { method: "DELETE", headers: { "Accept": "application/json" } })
        .then(function (response) {
          if (response.ok) {
            var saved = document.querySelector("[data-saved]");
            if (saved) { saved.hidden = true; }
            say(forget.getAttribute("data-done"));
            return;
          }
          return response.json().then(function (problem) {
            say(problem.detail || problem.title || forget.getAttribute("data-failed"));
          }, function () { say(forget.getAttribute("data-failed")); });
        })
        .catch(function () { say(forget.getAttribute("data-failed")); })
        .then(function () { forget.disabled = false; });
    });
  }

  // "Use my nickname": ask the customer, through the bank's consent sheet, for profile.basic:read.
  var ask = document.querySelector("[data-authorize]");
  if (ask) {
    ask.addEventListener("click", function () {
      if (!window.canopy) { say(ask.getAttribute("data-failed")); return; }
      ask.disabled = true;
      window.canopy.authorize([ask.getAttribute("data-authorize")])
        .then(function (answer) { say(ask.getAttribute(answer.granted ? "data-granted" : "data-declined")); },
              function () { say(ask.getAttribute("data-failed")); })
        .then(function () { ask.disabled = false; });
    });
  }
})();
