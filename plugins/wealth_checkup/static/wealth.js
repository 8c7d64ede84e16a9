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
})();
