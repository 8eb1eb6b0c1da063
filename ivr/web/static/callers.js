// The caller directory page: the list and search (GET /api/callers), add and
// edit (POST/PATCH /api/callers), delete, and the CSV import
// (POST /api/callers/import) with its report. Everything from the server is
// shown with textContent: names come from people and files.
(function () {
  "use strict";
  const api = window.ivr.api;
  const forms = window.ivr.forms;
  const table = document.getElementById("callers");
  const pageSize = Number(table.dataset.pageSize);
  const canWrite = table.dataset.canWrite === "yes";
  const params = new URLSearchParams(window.location.search);
  const q = params.get("q") || "";
  const offset = Math.max(0, Number(params.get("offset")) || 0);
  const form = document.getElementById("caller-form");

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function pageUrl(newOffset) {
    const query = new URLSearchParams();
    if (q) query.set("q", q);
    if (newOffset) query.set("offset", String(newOffset));
    const text = query.toString();
    return "/callers" + (text ? "?" + text : "");
  }

  function render(page) {
    const body = table.tBodies[0];
    body.replaceChildren();
    page.items.forEach(function (caller) {
      const row = document.createElement("tr");
      row.dataset.callerId = caller.id;
      cell(row, caller.name).style.fontWeight = "600";
      cell(row, caller.office || "-");
      cell(row, caller.role || "");
      const numbers = cell(row, "");
      caller.numbers.forEach(function (number, index) {
        if (index) numbers.appendChild(document.createElement("br"));
        numbers.appendChild(document.createTextNode(number.raw + " "));
        const e164 = document.createElement("span");
        e164.className = "muted";
        e164.textContent = "(" + number.e164 + ")";
        numbers.appendChild(e164);
      });
      cell(row, caller.has_pin ? "ada" : "-");
      cell(row, caller.active ? "aktif" : "nonaktif");
      if (canWrite) {
        const actions = cell(row, "", "nowrap");
        const edit = document.createElement("button");
        edit.type = "button";
        edit.textContent = "Ubah";
        edit.addEventListener("click", function () { setEditing(caller); });
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "danger";
        remove.textContent = "Hapus";
        remove.addEventListener("click", function () { removeCaller(caller); });
        actions.append(edit, " ", remove);
      }
      body.appendChild(row);
    });
    document.querySelector("[data-list-empty]").hidden = page.items.length > 0;
    const prev = document.querySelector("[data-prev]");
    const next = document.querySelector("[data-next]");
    prev.hidden = offset === 0;
    prev.href = pageUrl(Math.max(0, offset - pageSize));
    next.hidden = page.next_offset === null;
    next.href = pageUrl(page.next_offset || 0);
    const label = document.querySelector("[data-page-label]");
    label.textContent = page.items.length
      ? "Menampilkan " + (offset + 1) + "–" + (offset + page.items.length) + (q ? ' untuk "' + q + '"' : "")
      : "";
  }

  function load() {
    const query = new URLSearchParams({ limit: String(pageSize), offset: String(offset) });
    if (q) query.set("q", q);
    return api("GET", "/api/callers?" + query.toString())
      .then(render)
      .catch(function (error) {
        const slot = document.querySelector("[data-list-error]");
        slot.textContent = forms.indonesian(error.message);
        slot.hidden = false;
      });
  }

  function removeCaller(caller) {
    if (!window.confirm('Hapus "' + caller.name + '" dari daftar penelepon?')) return;
    api("DELETE", "/api/callers/" + caller.id).then(load).catch(function (error) {
      window.alert(forms.indonesian(error.message));
    });
  }

  // -- add and edit ------------------------------------------------------------
  function setEditing(caller) {
    if (!form) return;
    const f = form.elements;
    forms.clearErrors(form);
    form.reset();
    document.querySelector("[data-form-saved]").hidden = true;
    const title = document.querySelector("[data-form-title]");
    form.querySelector("[data-cancel-edit]").hidden = !caller;
    form.querySelector("[data-edit-only]").hidden = !caller;
    f.id.value = caller ? caller.id : "";
    title.textContent = caller ? form.dataset.titleEdit + ": " + caller.name : form.dataset.titleNew;
    if (!caller) return;
    f.name.value = caller.name;
    f.office.value = caller.office || "";
    f.role.value = caller.role || "";
    f.numbers.value = caller.numbers.map(function (n) { return n.raw; }).join("\n");
    f.active.checked = caller.active;
    form.scrollIntoView({ behavior: "smooth", block: "start" });
    f.name.focus();
  }

  function callerBody(editing) {
    const f = form.elements;
    const body = {
      name: f.name.value,
      office: f.office.value.trim() || null,
      role: f.role.value,
      numbers: f.numbers.value.split(/[\n;]/).map(function (s) { return s.trim(); }).filter(Boolean),
    };
    if (f.office_kind.value.trim()) body.office_kind = f.office_kind.value.trim();
    if (f.pin.value) body.pin = f.pin.value;
    if (editing) {
      body.active = f.active.checked;
      if (f.clear_pin.checked && !f.pin.value) body.pin = null;
    }
    return body;
  }

  // "numbers[1]": "..." is shown under the numbers field, with which number.
  function groupedErrors(error) {
    const fields = {};
    Object.keys(error.fields || {}).forEach(function (name) {
      const match = /^numbers\[(\d+)\]$/.exec(name);
      const key = match ? "numbers" : name;
      const text = match ? "Nomor ke-" + (Number(match[1]) + 1) + ": " + forms.indonesian(error.fields[name])
        : error.fields[name];
      fields[key] = fields[key] ? fields[key] + " · " + text : text;
    });
    return { message: error.message, fields: fields };
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      const id = form.elements.id.value;
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      const created = !id;
      api(id ? "PATCH" : "POST", id ? "/api/callers/" + encodeURIComponent(id) : "/api/callers", callerBody(!created))
        .then(function (caller) {
          submit.disabled = false;
          setEditing(null);
          const saved = document.querySelector("[data-form-saved]");
          saved.textContent = (created ? "Ditambahkan: " : "Tersimpan: ") + caller.name;
          saved.hidden = false;
          return load();
        })
        .catch(function (error) {
          submit.disabled = false;
          forms.showErrors(form, groupedErrors(error));
        });
    });
    form.querySelector("[data-cancel-edit]").addEventListener("click", function () { setEditing(null); });
  }

  // -- CSV import --------------------------------------------------------------
  const importForm = document.getElementById("import-form");
  const report = document.getElementById("import-report");

  function showReport(result) {
    report.hidden = false;
    report.querySelector("[data-report-summary]").textContent =
      result.source + ": " + result.rows + " baris, " + result.imported + " diimpor, " +
      result.rejected.length + " ditolak.";
    const offices = report.querySelector("[data-report-offices]");
    offices.hidden = !result.offices_created.length;
    offices.querySelector("span").textContent = result.offices_created.join(", ");
    const warnings = report.querySelector("[data-report-warnings]");
    warnings.replaceChildren();
    result.warnings.forEach(function (warning) {
      const item = document.createElement("li");
      item.textContent = "Peringatan: " + forms.indonesian(warning);
      warnings.appendChild(item);
    });
    const rejected = report.querySelector("[data-report-rejected]");
    const list = rejected.querySelector("ul");
    list.replaceChildren();
    result.rejected.forEach(function (row) {
      const item = document.createElement("li");
      item.dataset.line = row.line;
      item.textContent = "Baris " + row.line + (row.name ? " (" + row.name + ")" : "") + ": " +
        forms.indonesian(row.reason);
      list.appendChild(item);
    });
    rejected.hidden = !result.rejected.length;
  }

  async function upload(file) {
    // Sent as the raw CSV body: the server reads it in chunks and stops at its limit.
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    let response;
    try {
      response = await fetch("/api/callers/import", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "text/csv", "X-CSRF-Token": csrf, Accept: "application/json" },
        body: file,
      });
    } catch (_) {
      throw new Error("Koneksi ke server terputus saat mengunggah; coba lagi.");
    }
    const data = await response.json().catch(function () { return null; });
    if (response.ok) return data;
    if (response.status === 401) throw new Error("Sesi Anda berakhir; muat ulang halaman dan masuk lagi.");
    const detail = data && data.error ? data.error : {};
    const error = new Error(detail.message || "Impor gagal (HTTP " + response.status + ")");
    error.status = response.status;
    error.fields = detail.fields || {};
    throw error;
  }

  if (importForm) {
    importForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const file = importForm.elements.file.files[0];
      forms.clearErrors(importForm);
      if (!file) {
        forms.showErrors(importForm, { fields: { file: "Pilih berkas CSV dulu." } });
        return;
      }
      // The server refuses it too (413), but only after the browser started
      // sending it: say so before uploading megabytes for nothing.
      if (file.size > Number(importForm.dataset.maxBytes)) {
        forms.showErrors(importForm, {
          fields: { file: "Berkas terlalu besar: maks. " + importForm.dataset.maxMb + " MB." },
        });
        return;
      }
      const submit = importForm.querySelector('button[type="submit"]');
      submit.disabled = true;
      report.hidden = true;
      upload(file)
        .then(function (result) {
          result.source = file.name;
          showReport(result);
          return load();
        })
        .catch(function (error) {
          forms.showErrors(importForm, error);
        })
        .finally(function () {
          submit.disabled = false;
        });
    });
  }

  load();
})();
