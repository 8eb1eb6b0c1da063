// The agenda page: add, edit, delete items and change their status through
// /api/agenda (window.ivr.api sends the session's CSRF token). After a change
// the page reloads on the item's day, so what it shows (and what callers
// hear, in the "Yang didengar penelepon" column) comes from the server.
(function () {
  "use strict";
  const api = window.ivr.api;
  const forms = window.ivr.forms;
  const form = document.getElementById("agenda-form");
  if (!form) return;
  const fields = form.elements;
  const leaderId = Number(form.dataset.leaderId);
  const RESCHEDULED = ["ditunda", "dipindahkan"];
  const REPRESENTED = "diwakilkan";

  function showDetail() {
    const status = fields.status.value;
    form.querySelector('[data-detail="rescheduled"]').hidden = !RESCHEDULED.includes(status);
    form.querySelector('[data-detail="represented"]').hidden = status !== REPRESENTED;
  }

  function orNull(value) {
    const text = value.trim();
    return text === "" ? null : text;
  }

  function statusDetail(status) {
    if (RESCHEDULED.includes(status)) {
      return { new_date: orNull(fields.new_date.value), new_start: orNull(fields.new_start.value) };
    }
    if (status === REPRESENTED) return { representative: orNull(fields.representative.value) };
    return null;
  }

  function body() {
    const status = fields.status.value;
    return {
      leader_id: leaderId,
      date: fields.date.value,
      start: fields.start.value.trim(),
      end: orNull(fields.end.value),
      activity: fields.activity.value,
      place: fields.place.value,
      status: status,
      status_detail: statusDetail(status),
      note: fields.note.value,
    };
  }

  function showSaved(item) {
    const query = new URLSearchParams({ leader: item.leader_id, date: item.date, saved: item.id });
    window.location.assign("/agenda?" + query.toString());
  }

  function setEditing(item) {
    const title = document.querySelector("[data-form-title]");
    const cancel = form.querySelector("[data-cancel-edit]");
    forms.clearErrors(form);
    if (!item) {
      form.reset();
      fields.id.value = "";
      title.textContent = form.dataset.titleNew;
      cancel.hidden = true;
      showDetail();
      return;
    }
    fields.id.value = item.id;
    fields.date.value = item.date;
    fields.start.value = item.start || "";
    fields.end.value = item.end || "";
    fields.activity.value = item.activity;
    fields.place.value = item.place;
    fields.status.value = item.status;
    fields.new_date.value = item.status_detail.new_date || "";
    fields.new_start.value = item.status_detail.new_start || "";
    fields.representative.value = item.status_detail.representative || "";
    fields.note.value = item.note;
    title.textContent = form.dataset.titleEdit + ": " + item.activity;
    cancel.hidden = false;
    showDetail();
    form.scrollIntoView({ behavior: "smooth", block: "start" });
    fields.start.focus();
  }

  function report(message) {
    const status = document.querySelector("[data-agenda-status]");
    status.textContent = forms.indonesian(message);
    status.hidden = false;
  }

  fields.status.addEventListener("change", showDetail);
  form.querySelector("[data-cancel-edit]").addEventListener("click", function () {
    setEditing(null);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const id = fields.id.value;
    const submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    api(id ? "PATCH" : "POST", id ? "/api/agenda/" + encodeURIComponent(id) : "/api/agenda", body())
      .then(showSaved)
      .catch(function (error) {
        forms.showErrors(form, error);
        submit.disabled = false;
      });
  });

  document.querySelectorAll("[data-edit]").forEach(function (button) {
    button.addEventListener("click", function () {
      api("GET", "/api/agenda/" + encodeURIComponent(button.dataset.itemId))
        .then(setEditing)
        .catch(function (error) {
          report(error.message);
        });
    });
  });

  document.querySelectorAll("[data-status-select]").forEach(function (select) {
    const before = select.value;
    select.addEventListener("change", function () {
      const row = select.closest("tr");
      const slot = row.querySelector("[data-row-error]");
      slot.hidden = true;
      select.disabled = true;
      api("PATCH", "/api/agenda/" + encodeURIComponent(select.dataset.itemId), { status: select.value })
        .then(showSaved)
        .catch(function (error) {
          select.value = before;
          select.disabled = false;
          const fieldErrors = error.fields || {};
          slot.textContent = forms.indonesian(fieldErrors.status || error.message);
          slot.hidden = false;
        });
    });
  });

  document.querySelectorAll("[data-delete]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!window.confirm('Hapus agenda "' + button.dataset.activity + '"?')) return;
      api("DELETE", "/api/agenda/" + encodeURIComponent(button.dataset.itemId))
        .then(function () {
          window.location.reload();
        })
        .catch(function (error) {
          report(error.message);
        });
    });
  });

  showDetail();
})();
