// The roster page's editors. Each one changes a copy of the roster document
// read from GET /api/roster and sends it back whole with PUT /api/roster (with
// the version read, so someone else's change meanwhile is refused, not lost).
// After a save the page reloads: "Piket sekarang" then shows the chain the
// emergency calls use from now on.
(function () {
  "use strict";
  const api = window.ivr.api;
  const forms = window.ivr.forms;
  const pageError = document.querySelector("[data-roster-error]");
  let roster = null;
  // Every editor works on the document read below: its buttons wait for it.
  const editorButtons = document.querySelectorAll(
    "#override-form button, #officer-form button, #chain-form button, #json-form button, " +
      "[data-remove-override], [data-edit-officer]"
  );
  editorButtons.forEach(function (button) { button.disabled = true; });

  const FIELD_WORDS = {
    code: "kode", name: "nama", phone: "telepon", dial_strings: "nomor panggil", active: "aktif",
    date: "tanggal", replaces: "yang diganti", substitute: "pengganti", note: "catatan",
    mode: "cara", ring_seconds: "lama dering", officers: "petugas", rounds: "putaran",
    start: "mulai", end: "selesai", repeat: "ulang", until: "sampai", timezone: "zona waktu",
    version: "versi", levels: "tingkat", overrides: "pengganti", shifts: "shift",
  };

  // "shifts[0].overrides[1].substitute" -> 'Shift "Piket", pengganti 2, pengganti'
  function describe(path) {
    return path.split(".").map(function (part) {
      const match = /^(\w+)\[(\d+)\]$/.exec(part);
      if (!match) return FIELD_WORDS[part] || (part === "fallback" ? "rantai cadangan" : part);
      const index = Number(match[2]);
      if (match[1] === "officers" && path.indexOf("officers") === 0) {
        const officer = roster && roster.officers[index];
        return "petugas " + (officer ? '"' + officer.name + '"' : index + 1);
      }
      if (match[1] === "shifts") {
        const shift = roster && roster.shifts[index];
        return "shift " + (shift ? '"' + shift.name + '"' : index + 1);
      }
      return (FIELD_WORDS[match[1]] || match[1]) + " " + (index + 1);
    }).join(", ");
  }

  function fail(form, error) {
    if (error.status === 409) {
      error = { message: "Jadwal piket sudah diubah orang lain. Muat ulang halaman lalu ulangi perubahan Anda." };
    } else if (error.fields && Object.keys(error.fields).length) {
      const lines = Object.keys(error.fields).map(function (path) {
        return describe(path) + ": " + forms.indonesian(error.fields[path]);
      });
      error = { message: lines.join(" · ") };
    }
    forms.showErrors(form, error);
    const submit = form.querySelector('button[type="submit"]');
    if (submit) submit.disabled = false;
  }

  function save(form, changed) {
    const submit = form.querySelector('button[type="submit"]');
    if (submit) submit.disabled = true;
    forms.clearErrors(form);
    return api("PUT", "/api/roster", changed)
      .then(function () {
        window.location.reload();
      })
      .catch(function (error) {
        fail(form, error);
      });
  }

  function copy() {
    return JSON.parse(JSON.stringify(roster));
  }

  // -- overrides ---------------------------------------------------------------
  const overrideForm = document.getElementById("override-form");
  if (overrideForm) {
    overrideForm.addEventListener("submit", function (event) {
      event.preventDefault();
      const f = overrideForm.elements;
      const changed = copy();
      changed.shifts[Number(f.shift.value)].overrides.push({
        date: f.date.value || null,
        replaces: f.replaces.value,
        substitute: f.substitute.value,
        note: f.note.value.trim(),
      });
      save(overrideForm, changed);
    });
  }
  document.querySelectorAll("[data-remove-override]").forEach(function (button) {
    button.addEventListener("click", function () {
      if (!window.confirm("Hapus pengganti ini?")) return;
      const changed = copy();
      changed.shifts[Number(button.dataset.shiftIndex)].overrides.splice(Number(button.dataset.overrideIndex), 1);
      save(overrideForm || document.getElementById("json-form"), changed);
    });
  });

  // -- officers ----------------------------------------------------------------
  const officerForm = document.getElementById("officer-form");
  function editOfficer(code) {
    const f = officerForm.elements;
    const title = document.querySelector("[data-officer-form-title]");
    const cancel = officerForm.querySelector("[data-cancel-officer]");
    forms.clearErrors(officerForm);
    const officer = roster.officers.find(function (one) { return one.code === code; });
    if (!officer) {
      officerForm.reset();
      f.editing.value = "";
      title.textContent = officerForm.dataset.titleNew;
      cancel.hidden = true;
      return;
    }
    f.editing.value = officer.code;
    f.code.value = officer.code;
    f.name.value = officer.name;
    f.phone.value = officer.phone;
    f.dial_strings.value = officer.dial_strings.join("\n");
    f.active.checked = officer.active;
    title.textContent = officerForm.dataset.titleEdit + ": " + officer.name;
    cancel.hidden = false;
    officerForm.scrollIntoView({ behavior: "smooth", block: "start" });
  }
  officerForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const f = officerForm.elements;
    const changed = copy();
    const officer = {
      code: f.code.value.trim(),
      name: f.name.value.trim(),
      phone: f.phone.value.trim(),
      dial_strings: f.dial_strings.value.split("\n").map(function (s) { return s.trim(); }).filter(Boolean),
      active: f.active.checked,
    };
    const index = changed.officers.findIndex(function (one) { return one.code === f.editing.value; });
    if (index < 0) {
      changed.officers.push(officer);
    } else {
      const renamed = changed.officers[index].code;
      changed.officers[index] = officer;
      if (renamed !== officer.code) renameOfficer(changed, renamed, officer.code);
    }
    save(officerForm, changed);
  });
  officerForm.querySelector("[data-cancel-officer]").addEventListener("click", function () {
    editOfficer(null);
  });
  document.querySelectorAll("[data-edit-officer]").forEach(function (button) {
    button.addEventListener("click", function () {
      editOfficer(button.dataset.editOfficer);
    });
  });

  // A new code is carried into every chain and override that named the old one.
  function renameOfficer(doc, from, to) {
    const swap = function (code) { return code === from ? to : code; };
    const chains = doc.shifts.concat([doc.fallback]);
    chains.forEach(function (chain) {
      chain.levels.forEach(function (level) { level.officers = level.officers.map(swap); });
    });
    doc.shifts.forEach(function (shift) {
      shift.overrides.forEach(function (o) { o.replaces = swap(o.replaces); o.substitute = swap(o.substitute); });
    });
  }

  // -- escalation chains -------------------------------------------------------
  const chainForm = document.getElementById("chain-form");
  const levelsBox = chainForm.querySelector("[data-levels]");
  const levelTemplate = document.getElementById("level-row");

  function chainOf(doc, key) {
    return key === "fallback" ? doc.fallback : doc.shifts[Number(key)];
  }

  function numberLevels() {
    levelsBox.querySelectorAll("[data-level]").forEach(function (row, index) {
      row.querySelector("[data-level-title]").textContent = "Tingkat " + (index + 1);
    });
  }

  function addLevel(level) {
    const row = levelTemplate.content.firstElementChild.cloneNode(true);
    row.querySelector('[name="mode"]').value = level.mode;
    row.querySelector('[name="ring_seconds"]').value = level.ring_seconds;
    row.querySelector('[name="officers"]').value = level.officers.join(", ");
    row.querySelector("[data-remove-level]").addEventListener("click", function () {
      row.remove();
      numberLevels();
    });
    levelsBox.appendChild(row);
    numberLevels();
  }

  function showChain() {
    const chain = chainOf(roster, chainForm.elements.chain.value);
    levelsBox.replaceChildren();
    chainForm.elements.rounds.value = chain.rounds;
    chain.levels.forEach(addLevel);
    forms.clearErrors(chainForm);
  }

  chainForm.elements.chain.addEventListener("change", showChain);
  chainForm.querySelector("[data-add-level]").addEventListener("click", function () {
    addLevel({ mode: "sequential", ring_seconds: 20, officers: [] });
  });
  chainForm.addEventListener("submit", function (event) {
    event.preventDefault();
    const changed = copy();
    const chain = chainOf(changed, chainForm.elements.chain.value);
    chain.rounds = Number(chainForm.elements.rounds.value);
    chain.levels = Array.from(levelsBox.querySelectorAll("[data-level]")).map(function (row) {
      return {
        mode: row.querySelector('[name="mode"]').value,
        ring_seconds: Number(row.querySelector('[name="ring_seconds"]').value),
        officers: row.querySelector('[name="officers"]').value.split(",").map(function (s) {
          return s.trim();
        }).filter(Boolean),
      };
    });
    save(chainForm, changed);
  });

  // -- the whole document ------------------------------------------------------
  const jsonForm = document.getElementById("json-form");
  jsonForm.addEventListener("submit", function (event) {
    event.preventDefault();
    let changed;
    try {
      changed = JSON.parse(jsonForm.elements.document.value);
    } catch (error) {
      forms.showErrors(jsonForm, { message: "JSON tidak sah: " + error.message });
      return;
    }
    save(jsonForm, changed);
  });

  api("GET", "/api/roster")
    .then(function (doc) {
      roster = doc;
      jsonForm.elements.document.value = JSON.stringify(doc, null, 2);
      showChain();
      editorButtons.forEach(function (button) { button.disabled = false; });
    })
    .catch(function (error) {
      pageError.textContent = "Jadwal piket tidak dapat dimuat: " + forms.indonesian(error.message);
      pageError.hidden = false;
    });
})();
