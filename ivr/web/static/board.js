/* The board: calls in progress, open tickets, emergency alarms, who is on duty.
 * Lists come from the API, then stay current through the live events
 * (GET /api/events); whatever comes from data is written with textContent. */
(function () {
  "use strict";

  const board = document.getElementById("board");
  if (!board) {
    return;
  }
  const labels = JSON.parse(document.getElementById("board-labels").textContent);
  const canAcknowledge = board.dataset.canAcknowledge === "true";
  const ticketStatuses = board.dataset.ticketStatuses.split(",");
  const ticketKinds = board.dataset.ticketKinds.split(",");
  const ticketLimit = Number(board.dataset.ticketLimit);
  const message = document.querySelector("[data-board-message]");
  const DUTY_REFRESH_MS = 60000;

  const calls = new Map();
  const tickets = new Map();
  const alarms = new Map();
  let clockSkewMs = 0; /* server clock minus this browser's clock */
  let listsLoaded = false;

  function say(text) {
    message.textContent = text;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) {
      td.className = className;
    }
    return td;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function clock(iso) {
    /* ISO times carry the server zone's offset: its wall clock is in the text. */
    return iso ? iso.slice(11, 16).replace(":", ".") : "";
  }

  function label(group, value) {
    return (value && labels[group][value]) || value || "";
  }

  function stepLabel(step) {
    return step ? labels.steps[step.split(":")[0]] || step : "";
  }

  function show(name, rows) {
    board.querySelector('[data-list="' + name + '"]').replaceChildren(...rows);
    board.querySelector('[data-table="' + name + '"]').hidden = rows.length === 0;
    board.querySelector('[data-empty="' + name + '"]').hidden = rows.length > 0;
    const count = board.querySelector('[data-count="' + name + '"]');
    count.textContent = String(rows.length);
    count.hidden = name === "alarms" && rows.length === 0;
  }

  /* -- calls ------------------------------------------------------------------ */
  function duration(startedAt) {
    const seconds = Math.max(0, Math.floor((Date.now() + clockSkewMs - Date.parse(startedAt)) / 1000));
    const minutes = Math.floor(seconds / 60);
    return minutes + ":" + String(seconds % 60).padStart(2, "0");
  }

  function callerText(call) {
    const who = call.caller_name || call.caller_number || "Nomor tidak dikenal";
    return call.caller_name && call.caller_number ? who + " (" + call.caller_number + ")" : who;
  }

  function renderCalls() {
    const rows = Array.from(calls.values())
      .sort(function (a, b) {
        return a.started_at < b.started_at ? -1 : 1;
      })
      .map(function (call) {
        const tr = document.createElement("tr");
        tr.dataset.uniqueid = call.uniqueid;
        const step = cell(stepLabel(call.step), "call-step");
        step.title = call.step || "";
        const time = cell(duration(call.started_at), "call-duration");
        time.dataset.startedAt = call.started_at;
        tr.append(cell(callerText(call)), cell(call.office || "—"), step, time);
        return tr;
      });
    show("calls", rows);
  }

  function tickDurations() {
    board.querySelectorAll("[data-started-at]").forEach(function (td) {
      td.textContent = duration(td.dataset.startedAt);
    });
  }

  /* -- tickets ---------------------------------------------------------------- */
  function onBoard(ticket) {
    return ticketStatuses.indexOf(ticket.status) >= 0 && ticketKinds.indexOf(ticket.kind) >= 0;
  }

  function putTicket(ticket) {
    const known = tickets.get(ticket.number);
    if (known && known.updated_at > ticket.updated_at) {
      return; /* an older copy (a list loaded while events came in) */
    }
    if (onBoard(ticket)) {
      tickets.set(ticket.number, ticket);
    } else {
      tickets.delete(ticket.number);
    }
  }

  function renderTickets() {
    const rows = Array.from(tickets.values())
      .sort(function (a, b) {
        if ((a.priority === "urgent") !== (b.priority === "urgent")) {
          return a.priority === "urgent" ? -1 : 1;
        }
        return a.created_at > b.created_at ? -1 : 1;
      })
      .slice(0, ticketLimit)
      .map(function (ticket) {
        const tr = document.createElement("tr");
        tr.dataset.number = ticket.number;
        const number = document.createElement("td");
        number.append(link("/tickets/" + encodeURIComponent(ticket.number), ticket.number));
        const priority = cell(label("priorities", ticket.priority));
        if (ticket.priority === "urgent") {
          priority.className = "urgent";
        }
        tr.append(
          number,
          cell(label("kinds", ticket.kind)),
          cell(label("statuses", ticket.status)),
          priority,
          cell(ticket.office || "—"),
          cell(ticket.caller_number || "Nomor disembunyikan"),
          cell(clock(ticket.created_at))
        );
        return tr;
      });
    show("tickets", rows);
  }

  /* -- alarms ----------------------------------------------------------------- */
  function putAlarm(alarm) {
    if (alarm.state === "acknowledged") {
      alarms.delete(alarm.id);
    } else {
      alarms.set(alarm.id, alarm);
    }
  }

  async function acknowledge(alarm, button) {
    button.disabled = true;
    try {
      const done = await window.ivr.api("POST", "/api/alarms/" + alarm.id + "/acknowledge");
      putAlarm(done);
      say("Alarm dari " + (alarm.office || alarm.caller_number || "penelepon") + " sudah diakui.");
    } catch (error) {
      if (error.code === "already_acknowledged") {
        alarms.delete(alarm.id);
      } else {
        button.disabled = false;
      }
      say("Alarm tidak dapat diakui: " + error.message);
    }
    renderAlarms();
  }

  function renderAlarms() {
    const rows = Array.from(alarms.values())
      .sort(function (a, b) {
        return a.raised_at > b.raised_at ? -1 : 1;
      })
      .map(function (alarm) {
        const tr = document.createElement("tr");
        tr.dataset.alarm = String(alarm.id);
        const ticket = document.createElement("td");
        if (alarm.ticket) {
          ticket.append(link("/tickets/" + encodeURIComponent(alarm.ticket), alarm.ticket));
        }
        const action = document.createElement("td");
        if (canAcknowledge) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "danger";
          button.textContent = "Akui";
          button.addEventListener("click", function () {
            acknowledge(alarm, button);
          });
          action.append(button);
        }
        const state = alarm.state === "exhausted" ? " (tidak ada yang mengakui)" : "";
        tr.append(
          cell(clock(alarm.raised_at)),
          cell((alarm.caller_name || alarm.caller_number || "Nomor disembunyikan") + state),
          cell(alarm.office || "—"),
          ticket,
          cell(String(alarm.callbacks_placed)),
          action
        );
        return tr;
      });
    show("alarms", rows);
  }

  /* -- who is on duty ------------------------------------------------------------ */
  function officers(chain) {
    const names = [];
    chain.levels.forEach(function (level) {
      level.officers.forEach(function (officer) {
        names.push(officer.name);
      });
    });
    return names.length ? names.join(", ") : "Tidak ada petugas";
  }

  function chainTitle(chain) {
    if (chain.shift) {
      return chain.shift;
    }
    return chain.uses_fallback ? "Rantai cadangan" : "";
  }

  async function loadDuty() {
    const box = board.querySelector("[data-duty]");
    try {
      const now = await window.ivr.api("GET", "/api/roster/now");
      const list = document.createElement("dl");
      list.className = "facts";
      const rows = [["Sekarang", now]];
      if (now.next) {
        rows.push(["Berikutnya, mulai " + clock(now.next.at), now.next]);
      }
      rows.forEach(function (entry) {
        const term = document.createElement("dt");
        term.textContent = entry[0];
        const detail = document.createElement("dd");
        const title = chainTitle(entry[1]);
        detail.textContent = (title ? title + ": " : "") + officers(entry[1]);
        list.append(term, detail);
      });
      box.replaceChildren(list);
      if (now.uses_fallback) {
        const warning = document.createElement("p");
        warning.className = "alert alert-error";
        warning.textContent = "Tidak ada jadwal piket yang berlaku: panggilan darurat ke rantai cadangan.";
        box.append(warning);
      }
    } catch (error) {
      const failed = document.createElement("p");
      failed.className = "muted";
      failed.textContent = "Jadwal piket tidak dapat dimuat: " + error.message;
      box.replaceChildren(failed);
    }
  }

  /* -- loading and live events ------------------------------------------------------ */
  async function loadLists() {
    const query = "status=" + ticketStatuses.join(",") + "&kind=" + ticketKinds.join(",") + "&limit=" + ticketLimit;
    try {
      const found = await Promise.all([
        window.ivr.api("GET", "/api/tickets?" + query),
        window.ivr.api("GET", "/api/alarms"),
      ]);
      found[0].items.forEach(putTicket);
      alarms.clear();
      found[1].items.forEach(putAlarm);
      renderTickets();
      renderAlarms();
    } catch (error) {
      say("Data papan tidak dapat dimuat: " + error.message);
    }
  }

  function putCall(call) {
    calls.set(call.uniqueid, call);
    renderCalls();
  }

  window.ivr.live("/api/events", {
    snapshot: function (snapshot) {
      clockSkewMs = Date.parse(snapshot.at) - Date.now();
      calls.clear();
      snapshot.calls.forEach(function (call) {
        calls.set(call.uniqueid, call);
      });
      renderCalls();
      if (!listsLoaded || snapshot.resync) {
        listsLoaded = true;
        loadLists();
      }
    },
    "call.started": putCall,
    "call.updated": putCall,
    "call.ended": function (ended) {
      calls.delete(ended.uniqueid);
      renderCalls();
    },
    "ticket.created": function (ticket) {
      putTicket(ticket);
      renderTickets();
    },
    "ticket.updated": function (ticket) {
      putTicket(ticket);
      renderTickets();
    },
    "alarm.raised": function (alarm) {
      putAlarm(alarm);
      renderAlarms();
    },
    "alarm.updated": function (alarm) {
      putAlarm(alarm);
      renderAlarms();
    },
    "alarm.acknowledged": function (alarm) {
      putAlarm(alarm);
      renderAlarms();
    },
  });
  loadDuty();
  window.setInterval(loadDuty, DUTY_REFRESH_MS);
  window.setInterval(tickDurations, 1000);
})();
