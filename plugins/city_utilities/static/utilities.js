/* City Utilities: link and unlink accounts through the plugin's API. Loaded from static/ for a strict CSP. */
(function () {
  "use strict";
  var status = document.querySelector("[data-status]");
  // In the bank's app the bridge (canopy.js, added by the host) brings the customer to API calls.
  var bridge = window.canopy && window.canopy.available ? window.canopy : null;
  var call = bridge ? bridge.fetch : function (url, options) { return fetch(url, options); };

  function say(text) {
    if (status) { status.textContent = text; status.hidden = false; }
  }

  // Send a JSON request; reload on success, otherwise show the problem's detail (RFC 9457).
  function send(url, method, body, failed) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return call(url, options).then(function (response) {
      if (response.ok) { window.location.reload(); return; }
      return response.json().then(function (problem) {
        say(problem.detail || problem.title || failed);
      }, function () { say(failed); });
    }).catch(function () { say(failed); });
  }

  var form = document.querySelector("form[data-link-form]");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form.getAttribute("data-api"), "POST", {
        utility: form.elements.utility.value,
        account_no: form.elements.account_no.value.trim()
      }, form.getAttribute("data-failed"));
    });
  }

  // Pay: ask the back end for the bill's payment intent, then let the bank's app show its
  // confirmation sheet (canopy.requestPayment); outside the app, go to the bank's page.
  document.querySelectorAll("button[data-pay]").forEach(function (button) {
    var note = button.parentNode.querySelector("[data-pay-status]");
    var failed = button.getAttribute("data-failed");
    function fail(text) {
      if (note) { note.textContent = text || failed; note.hidden = false; }
      button.disabled = false;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      call(button.getAttribute("data-pay"), { method: "POST", headers: { "Accept": "application/json" } })
        .then(function (response) {
          return response.json().then(function (data) {
            if (response.ok && bridge && typeof data.intent_id === "string") {
              bridge.requestPayment(data.intent_id).then(function () { window.location.reload(); },
                                                         function (error) { fail(error.message); });
            } else if (response.ok && typeof data.confirm_url === "string" && data.confirm_url.charAt(0) === "/"
                && data.confirm_url.charAt(1) !== "/") {
              window.location.assign(data.confirm_url);
            } else if (response.status === 409) {
              window.location.reload();
            } else {
              fail(data.detail || data.title);
            }
          }, function () { fail(); });
        }).catch(function () { fail(); });
    });
  });

  document.querySelectorAll("button[data-unlink]").forEach(function (button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      send(button.getAttribute("data-unlink"), "DELETE", undefined, button.getAttribute("data-failed"))
        .then(function () { button.disabled = false; });
    });
  });
})();
