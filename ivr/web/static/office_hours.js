/* /office-hours: the override form saves through PUT /api/office-hours/override. */
document.addEventListener("DOMContentLoaded", function () {
  "use strict";
  const form = document.getElementById("override-form");
  if (!form) {
    return;
  }
  const status = form.querySelector(".form-status");
  const button = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const mode = new FormData(form).get("mode");
    button.disabled = true;
    status.textContent = "Menyimpan…";
    try {
      await window.ivr.api("PUT", "/api/office-hours/override", { mode: mode });
      window.location.reload();
    } catch (error) {
      status.textContent = "Gagal menyimpan: " + error.message;
      button.disabled = false;
    }
  });
});
