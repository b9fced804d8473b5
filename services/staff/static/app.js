// The staff pages' few behaviours: the CSRF token on every htmx request, the offline
// banner, and a form that could not be sent being sent again (with the same
// Idempotency-Key, which it carries in a hidden field) once the tablet is back online.
(() => {
  "use strict";
  const token = () => document.querySelector('meta[name="csrf-token"]').content;
  const banner = () => document.getElementById("offline");
  const waiting = new Set();

  function showOffline(offline) {
    const el = banner();
    if (el) el.hidden = !offline;
    document.body.classList.toggle("is-offline", offline);
  }

  document.addEventListener("htmx:configRequest", (e) => {
    e.detail.headers["X-CSRF-Token"] = token();
  });
  document.addEventListener("htmx:sendError", (e) => {
    showOffline(true);
    const form = e.detail.elt.closest("form");
    if (form) {
      waiting.add(form);
      form.classList.add("waiting");
    }
  });
  document.addEventListener("htmx:afterRequest", (e) => {
    if (e.detail.xhr && e.detail.xhr.status > 0) {
      showOffline(false);
      const form = e.detail.elt.closest("form");
      if (form) {
        waiting.delete(form);
        form.classList.remove("waiting");
      }
    }
  });
  window.addEventListener("offline", () => showOffline(true));
  window.addEventListener("online", () => {
    showOffline(false);
    for (const form of [...waiting]) {
      waiting.delete(form);
      if (document.body.contains(form)) htmx.trigger(form, "submit");
    }
  });
  document.addEventListener("DOMContentLoaded", () => showOffline(!navigator.onLine));
  // An offered day (a closed or full day refused): its date put into the time field,
  // keeping the time of day typed (09:00 if none), for the advisor to send.
  document.addEventListener("click", (e) => {
    const choice = e.target.closest("[data-pick-day]");
    if (!choice) return;
    const input = document.getElementById(choice.dataset.for);
    if (!input) return;
    const time = (input.value.split("T")[1] || "09:00").slice(0, 5);
    input.value = choice.dataset.pickDay + "T" + time;
    for (const other of choice.closest("ul").querySelectorAll("[data-pick-day]")) {
      other.setAttribute("aria-pressed", String(other === choice));
    }
    input.focus();
  });
  // A button that opens or closes a part of the page (no script in the templates).
  document.addEventListener("click", (e) => {
    const opener = e.target.closest("[data-toggle]");
    if (!opener) return;
    const target = document.getElementById(opener.dataset.toggle);
    if (target) {
      target.hidden = !target.hidden;
      opener.setAttribute("aria-expanded", String(!target.hidden));
    }
  });
})();

// The customer's signature on the screen (signature_pad, pinned under static/): each
// stroke puts the picture into the form's hidden field, sent with the next save.
(() => {
  "use strict";
  function setUp(root) {
    for (const box of root.querySelectorAll("[data-signature]")) {
      if (box.dataset.ready) continue;
      box.dataset.ready = "1";
      const canvas = box.querySelector("canvas");
      const field = box.querySelector('input[name="signature_png"]');
      const pad = new SignaturePad(canvas, { penColor: "#111", minWidth: 1.2, maxWidth: 3 });
      pad.addEventListener("endStroke", () => { field.value = pad.toDataURL("image/png"); });
      box.querySelector("[data-clear]").addEventListener("click", () => {
        pad.clear();
        field.value = "";
      });
    }
  }
  document.addEventListener("htmx:load", (e) => setUp(e.detail.elt));
  document.addEventListener("DOMContentLoaded", () => setUp(document));
})();
