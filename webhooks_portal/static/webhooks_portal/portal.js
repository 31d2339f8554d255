/* The portal works without this file; it adds copy buttons, reloads a delivery's page while it
   is on its way, refreshes the delivery log's unfinished rows in place, and gives a page
   answering a POST its own address. Loaded from the site itself (the CSP allows nothing else). */
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

  /* The delivery log: only its unfinished rows are asked for again (`data-poll`, one query by
     id), with the last ETag so that an unchanged answer is an empty 304. The wait doubles
     while nothing changes (2 s up to 60 s), starts again at 2 s when a row changed, and no
     request is made while the tab is hidden. */
  var table = document.querySelector("table[data-poll]");
  if (table && window.fetch) {
    var FIRST = 2000, LONGEST = 60000;
    var delay = FIRST, etag = null, timer = null;
    var unfinished = function () {
      return Array.prototype.map.call(table.querySelectorAll("tr[data-unfinished]"), function (tr) {
        return tr.getAttribute("data-delivery");
      });
    };
    var schedule = function () {
      if (timer === null && !document.hidden && unfinished().length) {
        timer = window.setTimeout(poll, delay);
      }
    };
    var replaceRows = function (body, ids) {
      ids.forEach(function (id) {
        var row = table.querySelector('tr[data-delivery="' + id + '"]');
        if (!row) { return; }
        if (!(id in body.rows)) { row.removeAttribute("data-unfinished"); return; }
        var holder = document.createElement("tbody");
        holder.innerHTML = body.rows[id].trim();
        row.parentNode.replaceChild(holder.firstElementChild, row);
      });
    };
    var poll = function () {
      timer = null;
      var ids = unfinished();
      if (!ids.length || document.hidden) { return; }
      var headers = { "Accept": "application/json" };
      if (etag) { headers["If-None-Match"] = etag; }
      window.fetch(table.getAttribute("data-poll") + "?ids=" + ids.join(","), {
        headers: headers, credentials: "same-origin", cache: "no-store"
      }).then(function (response) {
        if (response.status === 304 || !response.ok) {
          delay = Math.min(delay * 2, LONGEST);
          return null;
        }
        etag = response.headers.get("ETag");
        return response.json();
      }).then(function (body) {
        if (body) {
          replaceRows(body, ids);
          delay = FIRST;
        }
        schedule();
      }, function () {
        delay = LONGEST;
        schedule();
      });
    };
    document.addEventListener("visibilitychange", function () {
      if (document.hidden) {
        if (timer !== null) { window.clearTimeout(timer); timer = null; }
      } else {
        delay = FIRST;
        schedule();
      }
    });
    schedule();
  }
})();
