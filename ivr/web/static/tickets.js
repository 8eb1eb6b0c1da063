/* Tickets: the list takes new and changed tickets from the live events; the
 * detail page saves status and note through PATCH /api/tickets/{number}.
 * Data is only ever written with textContent. */
(function () {
  "use strict";

  function localTime(iso) {
    /* "2026-12-03T10:15:00+07:00" -> "03-12-2026 10.15", in the server's zone as sent. */
    return iso.slice(8, 10) + "-" + iso.slice(5, 7) + "-" + iso.slice(0, 4) + " " + iso.slice(11, 16).replace(":", ".");
  }

  /* -- the list ------------------------------------------------------------ */
  function setupList(table) {
    const labels = JSON.parse(document.getElementById("ticket-labels").textContent);
    const filter = table.dataset;
    const body = table.tBodies[0];

    function label(group, value) {
      return labels[group][value] || value;
    }

    function fill(row, ticket) {
      const cell = function (name) {
        return row.querySelector('[data-cell="' + name + '"]');
      };
      cell("kind").textContent = label("kinds", ticket.kind);
      cell("status").textContent = label("statuses", ticket.status);
      cell("priority").textContent = label("priorities", ticket.priority);
      cell("office").textContent = ticket.office || "—";
      cell("caller").textContent = ticket.caller_number || "Nomor disembunyikan";
    }

    function matches(ticket) {
      const day = ticket.created_at.slice(0, 10);
      return (
        (!filter.filterKind || filter.filterKind === ticket.kind) &&
        (!filter.filterStatus || filter.filterStatus === ticket.status) &&
        (!filter.filterPriority || filter.filterPriority === ticket.priority) &&
        (!filter.filterOffice || filter.filterOffice === String(ticket.office_id)) &&
        (!filter.filterSince || day >= filter.filterSince) &&
        (!filter.filterUntil || day <= filter.filterUntil)
      );
    }

    function insert(ticket) {
      const row = document.getElementById("ticket-row").content.firstElementChild.cloneNode(true);
      row.dataset.number = ticket.number;
      const link = row.querySelector('[data-cell="number"]');
      link.href = "/tickets/" + encodeURIComponent(ticket.number);
      link.textContent = ticket.number;
      row.querySelector('[data-cell="created"]').textContent = localTime(ticket.created_at);
      fill(row, ticket);
      body.insertBefore(row, body.firstChild);
    }

    function upsert(ticket) {
      const row = body.querySelector('tr[data-number="' + CSS.escape(ticket.number) + '"]');
      if (row) {
        fill(row, ticket);
      } else if (filter.live === "true" && matches(ticket)) {
        insert(ticket);
      }
    }

    window.ivr.live("/api/events", { "ticket.created": upsert, "ticket.updated": upsert });
  }

  /* -- one ticket ------------------------------------------------------------ */
  function setupDetail(panel) {
    const number = panel.dataset.number;
    const form = document.getElementById("ticket-form");
    if (form) {
      const status = form.querySelector(".form-status");
      form.addEventListener("submit", async function (event) {
        event.preventDefault();
        const button = form.querySelector("button[type=submit]");
        const body = { status: form.elements.status.value };
        if (form.elements.note_for_caller) {
          body.note_for_caller = form.elements.note_for_caller.value;
        }
        button.disabled = true;
        status.textContent = "Menyimpan…";
        try {
          await window.ivr.api("PATCH", "/api/tickets/" + encodeURIComponent(number), body);
          status.textContent = "Tersimpan.";
          window.location.reload(); /* the timeline shows the change, as the server recorded it */
        } catch (error) {
          status.textContent = "Gagal menyimpan: " + error.message;
          button.disabled = false;
        }
      });
    }
    const changed = document.querySelector("[data-ticket-changed]");
    window.ivr.live("/api/events", {
      "ticket.updated": function (ticket) {
        if (ticket.number === number && ticket.updated_at > panel.dataset.updatedAt) {
          changed.hidden = false;
        }
      },
    });
  }

  const table = document.getElementById("ticket-table");
  if (table) {
    setupList(table);
  }
  const panel = document.getElementById("ticket");
  if (panel) {
    setupDetail(panel);
  }
})();
