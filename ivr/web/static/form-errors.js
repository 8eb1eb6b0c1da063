// Showing the API's validation errors next to the fields of a form (agenda,
// roster, callers pages). The API words each message "Indonesian / English";
// the pages show the Indonesian half, keeping a value the English half
// carries after its colon ("Salah satu dari / One of: a, b" -> "Salah satu
// dari: a, b"). Always as text: messages may quote what the user typed.
(function () {
  "use strict";

  function indonesianClause(clause) {
    const cut = clause.indexOf(" / ");
    if (cut < 0) return clause;
    const id = clause.slice(0, cut);
    const en = clause.slice(cut + 3);
    const colon = en.indexOf(": ");
    if (id.includes(":") || colon < 0) return id;
    return id + en.slice(colon);
  }

  function indonesian(message) {
    return String(message || "").split("; ").map(indonesianClause).join("; ");
  }

  function clearErrors(container) {
    container.querySelectorAll("[data-error-for]").forEach(function (el) {
      el.textContent = "";
      el.hidden = true;
    });
    container.querySelectorAll("[aria-invalid]").forEach(function (el) {
      el.removeAttribute("aria-invalid");
    });
  }

  function errorFields(error) {
    if (error && error.fields) return error.fields;
    if (error && error.error && error.error.fields) return error.error.fields;
    return {};
  }

  // Each field message goes to its [data-error-for] slot; a message without a
  // slot (or the error's own message when there are no fields) goes to the
  // form's "_form" slot, so nothing the server said is lost.
  function showErrors(container, error) {
    clearErrors(container);
    const fields = errorFields(error);
    const general = container.querySelector('[data-error-for="_form"]');
    const unplaced = [];
    Object.keys(fields).forEach(function (name) {
      const slot = container.querySelector('[data-error-for="' + CSS.escape(name) + '"]');
      if (!slot) {
        unplaced.push(name + ": " + indonesian(fields[name]));
        return;
      }
      slot.textContent = indonesian(fields[name]);
      slot.hidden = false;
      const input = slot.parentElement && slot.parentElement.querySelector("input, select, textarea");
      if (input) input.setAttribute("aria-invalid", "true");
    });
    if (!Object.keys(fields).length) unplaced.push(indonesian(error && error.message ? error.message : error));
    if (general && unplaced.length) {
      general.textContent = unplaced.join(" · ");
      general.hidden = false;
    }
  }

  window.ivr = window.ivr || {};
  window.ivr.forms = { indonesian: indonesian, clearErrors: clearErrors, showErrors: showErrors };
})();
