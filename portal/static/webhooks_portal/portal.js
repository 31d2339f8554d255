/* The portal works without this file; it adds copy buttons, reloads a page while a
   delivery it shows is on its way, and gives a page answering a POST its own address. Loaded from the site itself (the CSP allows nothing else). */
(function () {
  "use strict";

  function announce(button, text) {
    var live = document.getElementById("portal-live");
    if (live) { live.textContent = text; }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = text;
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  function copyText(text, button) {
    function fallback() {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      announce(button, ok ? button.getAttribute("data-copied") || "Copied" : "Select and copy it");
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () {
        announce(button, button.getAttribute("data-copied") || "Copied");
      }, fallback);
    } else {
      fallback();
    }
  }

  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.querySelector(button.getAttribute("data-copy"));
    if (!target) { return; }
    button.hidden = false;
    button.addEventListener("click", function () { copyText(target.textContent.trim(), button); });
  });

  // A page that answers a POST (the secret shown once after create or rotate) puts the
  // endpoint's own address in the address bar: reloading it, or coming Back to it, then reads
  // the endpoint (no secret) instead of sending the POST again.
  var shown = document.querySelector("[data-address]");
  if (shown && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", shown.getAttribute("data-address"));
  }

  var seconds = parseFloat(document.body.getAttribute("data-refresh") || "0");
  if (seconds > 0) {
    var reload = function () {
      var active = document.activeElement;
      var typing = active && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
      if (document.hidden || typing) {
        window.setTimeout(reload, seconds * 1000);
      } else {
        window.location.reload();
      }
    };
    window.setTimeout(reload, seconds * 1000);
  }
})();
