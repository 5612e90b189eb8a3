// silkroute console: our own small script. Works without it; it adds progress and
// once-only submission (a double click on "Buy now" sends one request).
(function () {
  "use strict";
  var progress = document.getElementById("progress");
  var timer = null;
  function busy() {
    if (timer || !progress) return;
    // Anything that takes more than a moment gets a visible, announced progress bar.
    timer = window.setTimeout(function () { progress.hidden = false; }, 400);
  }
  window.addEventListener("pageshow", function () {
    if (timer) { window.clearTimeout(timer); timer = null; }
    if (progress) progress.hidden = true;
    document.querySelectorAll("form.once button[type=submit]").forEach(function (b) {
      b.disabled = false; b.removeAttribute("aria-busy");
      delete b.form.dataset.sent;
    });
  });
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.classList.contains("once")) {
      if (form.dataset.sent === "1") { ev.preventDefault(); return; }
      form.dataset.sent = "1";
      window.setTimeout(function () {
        form.querySelectorAll("button[type=submit]").forEach(function (b) {
          b.disabled = true; b.setAttribute("aria-busy", "true");
        });
      }, 0);
    }
    busy();
  });
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-slow]");
    if (a) busy();
  });
  // Pickup point choice: the list is only used when "pickup" is chosen.
  var pickup = document.getElementById("pickup");
  var dPickup = document.getElementById("d-pickup");
  if (pickup && dPickup && !dPickup.disabled) {
    pickup.addEventListener("change", function () { if (pickup.value) dPickup.checked = true; });
  }
})();
