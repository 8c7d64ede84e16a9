/* City Utilities: the customer's accounts and bills, linking, unlinking and paying, through the
 * plugin's API. Loaded from static/ for a strict CSP.
 *
 * In the bank's app the host adds the bridge (window.canopy, docs/bridge.md): API calls go
 * through canopy.fetch, which brings the customer, and the bank's sheet takes the payment
 * (canopy.requestPayment). Pages there are rendered without the customer, so this script loads
 * their accounts and bills (GET /accounts, GET /bills) and builds them into the page from the
 * page's <template>s, setting text only (textContent), never HTML. Outside the app there is
 * no bridge and the page stays as it was rendered.
 */
(function () {
  "use strict";
  var main = document.querySelector("main[data-bills-api]");
  if (!main) { return; }
  var bridge = window.canopy && window.canopy.available ? window.canopy : null;
  var call = bridge ? bridge.fetch : function (url, options) { return fetch(url, options); };
  // Rendered without the customer: in the app, their data comes from the API instead.
  var fromApi = Boolean(bridge) && main.hasAttribute("data-anonymous");
  var ACCEPT_JSON = { "Accept": "application/json" };
  // After the bank's sheet reports a payment, the bill is marked paid when the bank's
  // payment_intent.succeeded event reaches CITYPOWER: look again a few times until it has.
  var CONFIRM_LOOKS = 10;
  var CONFIRM_PAUSE_MS = 1000;

  function say(status, text) {
    if (status) { status.textContent = text; status.hidden = false; }
  }

  function answerOf(response) {
    return response.json().then(function (data) {
      return { ok: response.ok, status: response.status, data: data || {} };
    }, function () { return { ok: false, status: response.status, data: {} }; });
  }

  // `url` with `path` added to its path, before its query string (branch and language).
  function under(url, path) {
    var at = url.indexOf("?");
    return at < 0 ? url + path : url.slice(0, at) + path + url.slice(at);
  }

  function segment(value) { return "/" + encodeURIComponent(String(value)); }

  // -- building the customer's data into the page -------------------------------------------

  function copy(name) {
    return document.querySelector('template[data-template="' + name + '"]').content.firstElementChild.cloneNode(true);
  }

  // Every [data-field] of `element` gets its value from `values`, as text.
  function fill(element, values) {
    element.querySelectorAll("[data-field]").forEach(function (field) {
      var value = values[field.getAttribute("data-field")];
      field.textContent = value === undefined || value === null ? "" : String(value);
    });
    return element;
  }

  function stateOf(bill) {
    return bill.status === "paid" ? "paid" : (bill.confirm_url ? "pending" : "unpaid");
  }

  // Keep only the parts of `element` meant for `state` (data-when="paid", "unpaid pending", …).
  function choose(element, state) {
    element.querySelectorAll("[data-when]").forEach(function (part) {
      if (part.getAttribute("data-when").split(" ").indexOf(state) < 0) { part.remove(); }
    });
    return element;
  }

  function billCard(bill) {
    var state = stateOf(bill);
    var paidOn = typeof bill.paid_at === "string" && bill.paid_at ? " · " + bill.paid_at.slice(0, 10) : "";
    var card = choose(fill(copy("bill"), Object.assign({}, bill, { paid_on: paidOn })), state);
    card.id = "bill-" + bill.id;
    card.classList.toggle("is-paid", state === "paid");
    var button = card.querySelector("button[data-pay]");
    if (button) {
      button.setAttribute("data-pay", under(main.getAttribute("data-bills-api"), segment(bill.id) + "/pay"));
      payButton(button, bill.id);
    }
    return card;
  }

  function utilityName(code) {
    var select = document.querySelector("form[data-link-form] select[name=utility]");
    var option = select && Array.prototype.filter.call(select.options, function (o) { return o.value === code; })[0];
    return option ? option.textContent : code;
  }

  // What each page shows of the customer: [data-statement] names the view, its answer the API.
  var views = {
    overview: { api: "data-bills-api", build: function (statement) {
      if (!statement.bills.length) { return [copy("introduction")]; }
      var accounts = copy("accounts");
      var rows = accounts.querySelector("[data-rows]");
      statement.bills.forEach(function (bill) { rows.appendChild(choose(fill(copy("account"), bill), stateOf(bill))); });
      return [fill(copy("total"), statement), accounts];
    } },
    bills: { api: "data-bills-api", build: function (statement) {
      if (!statement.bills.length) { return [copy("no-bills")]; }
      return [fill(copy("summary"), statement)].concat(statement.bills.map(billCard));
    } },
    accounts: { api: "data-accounts-api", build: function (answer) {
      var full = answer.accounts.length >= answer.limit;
      var form = document.querySelector("form[data-link-form]");
      var hint = document.querySelector("[data-limit-hint]");
      if (form) { form.querySelector("fieldset").disabled = full; }
      if (hint) { hint.hidden = !full; }
      if (!answer.accounts.length) { return []; }
      var card = copy("linked");
      var rows = card.querySelector("[data-rows]");
      answer.accounts.forEach(function (account) {
        var row = fill(copy("linked-account"), { utility_name: utilityName(account.utility), account_no: account.account_no });
        var button = row.querySelector("button[data-unlink]");
        button.setAttribute("data-unlink", under(main.getAttribute("data-accounts-api"),
                                                 segment(account.utility) + segment(account.account_no)));
        unlinkButton(button);
        rows.appendChild(row);
      });
      return [card];
    } }
  };

  // Load the customer's data for this page and show it; resolves with the API's answer.
  function load() {
    var box = document.querySelector("[data-statement]");
    var view = box && views[box.getAttribute("data-statement")];
    if (!view) { return Promise.resolve(null); }
    return call(main.getAttribute(view.api), { headers: ACCEPT_JSON }).then(answerOf).then(function (answer) {
      if (!answer.ok) { throw new Error(answer.data.detail || answer.data.title || "HTTP " + answer.status); }
      var parts = view.build(answer.data);
      while (box.firstChild) { box.removeChild(box.firstChild); }
      parts.forEach(function (part) { box.appendChild(part); });
      var notice = document.querySelector("[data-sign-in-notice]");
      if (notice) { notice.remove(); }  // the customer is signed in
      return answer.data;
    });
  }

  function loadFailed(error) {
    // Not signed in at the bank: the page stays as rendered, with its invitation to sign in.
    if (!error || error.code !== "sign_in_required") {
      say(document.querySelector("[data-load-status]"), main.getAttribute("data-msg-load-failed"));
    }
  }

  // Show the page's current state again: from the API in the app, else by reloading.
  function refresh() {
    if (fromApi) { return load().catch(loadFailed); }
    window.location.reload();
    return Promise.resolve(null);
  }

  // -- actions ------------------------------------------------------------------------------

  // Send a JSON request; reload on success, otherwise show the problem's detail (RFC 9457).
  function send(url, method, body, failed, status) {
    var options = { method: method, headers: Object.assign({}, ACCEPT_JSON) };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return call(url, options).then(function (response) {
      if (response.ok) { window.location.reload(); return; }
      return response.json().then(function (problem) {
        say(status, problem.detail || problem.title || failed);
      }, function () { say(status, failed); });
    }).catch(function () { say(status, failed); });
  }

  // The bank took the payment: look again until CITYPOWER marks the bill paid.
  function awaitPaid(billId, confirming, looks) {
    return load().then(function (statement) {
      var bill = statement && (statement.bills || []).filter(function (b) { return b.id === billId; })[0];
      if (!bill || bill.status === "paid") { return; }
      var card = document.getElementById("bill-" + billId);
      var button = card && card.querySelector("button[data-pay]");
      if (looks <= 1) { return; }  // the card offers to pay again; paying answers 409 once it is paid
      say(card && card.querySelector("[data-pay-status]"), confirming);
      if (button) { button.disabled = true; }
      return new Promise(function (resolve) { setTimeout(resolve, CONFIRM_PAUSE_MS); }).then(function () {
        return awaitPaid(billId, confirming, looks - 1);
      });
    }).catch(loadFailed);
  }

  // Pay: ask the back end for the bill's payment intent, then let the bank's app show its
  // confirmation sheet (canopy.requestPayment); outside the app, go to the bank's page.
  function payButton(button, billId) {
    var note = button.parentNode.querySelector("[data-pay-status]");
    var failed = button.getAttribute("data-failed");
    function fail(text) {
      say(note, text || failed);
      button.disabled = false;
    }
    button.addEventListener("click", function () {
      button.disabled = true;
      call(button.getAttribute("data-pay"), { method: "POST", headers: ACCEPT_JSON }).then(answerOf).then(function (answer) {
        var data = answer.data;
        if (answer.ok && bridge && typeof data.intent_id === "string") {
          return bridge.requestPayment(data.intent_id).then(function (outcome) {
            if (fromApi && outcome.status === "succeeded") {
              return awaitPaid(billId, button.getAttribute("data-confirming"), CONFIRM_LOOKS);
            }
            return refresh();
          }, function (error) { fail(error.message); });
        } else if (answer.ok && typeof data.confirm_url === "string" && data.confirm_url.charAt(0) === "/"
            && data.confirm_url.charAt(1) !== "/") {
          window.location.assign(data.confirm_url);
        } else if (answer.status === 409) {
          return refresh();
        } else {
          fail(data.detail || data.title);
        }
      }).catch(function () { fail(); });
    });
  }

  function unlinkButton(button) {
    button.addEventListener("click", function () {
      button.disabled = true;
      send(button.getAttribute("data-unlink"), "DELETE", undefined, button.getAttribute("data-failed"),
           document.querySelector("[data-status]"))
        .then(function () { button.disabled = false; });
    });
  }

  var form = document.querySelector("form[data-link-form]");
  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form.getAttribute("data-api"), "POST", {
        utility: form.elements.utility.value,
        account_no: form.elements.account_no.value.trim()
      }, form.getAttribute("data-failed"), form.querySelector("[data-status]"));
    });
  }
  // Buttons the page was rendered with (templates' blank copies are not in the document).
  document.querySelectorAll("button[data-pay]").forEach(function (button) {
    payButton(button, button.closest("article") ? button.closest("article").id.replace(/^bill-/, "") : "");
  });
  document.querySelectorAll("button[data-unlink]").forEach(unlinkButton);

  if (fromApi) { load().catch(loadFailed); }
})();
