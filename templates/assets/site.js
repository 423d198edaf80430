// sitegen pages: small progressive enhancements. Every page works without JavaScript.
(function () {
  "use strict";

  // The site root, from this page's relative path to it (works under any URL prefix).
  function siteRoot() {
    var root = document.documentElement.getAttribute("data-root") || ".";
    return new URL(root + "/", window.location.href).href.replace(/\/$/, "");
  }
  var onHttp = /^https?:$/.test(window.location.protocol);

  // Snippets written without base_url: show the address this site is browsed at.
  if (onHttp) {
    var base = siteRoot();
    document.querySelectorAll("pre[data-placeholder]").forEach(function (pre) {
      var placeholder = pre.getAttribute("data-placeholder");
      pre.textContent = pre.textContent.split(placeholder).join(base);
    });
  }

  // Copy buttons.
  function copyText(text, button) {
    function done() {
      var label = button.textContent;
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1200);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {});
      return;
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } catch (e) { /* nothing to do */ }
    document.body.removeChild(area);
  }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var pre = button.closest(".snippet").querySelector("pre");
    button.hidden = false;
    button.addEventListener("click", function () { copyText(pre.textContent, button); });
  });

  // Ages: "2024-06-01 12:00 UTC" gains "(3 hours ago)".
  function ago(date) {
    var seconds = Math.round((Date.now() - date.getTime()) / 1000);
    if (seconds < 0) return "just now";
    var units = [["year", 31536000], ["month", 2592000], ["day", 86400], ["hour", 3600], ["minute", 60]];
    for (var i = 0; i < units.length; i++) {
      var n = Math.floor(seconds / units[i][1]);
      if (n >= 1) return n + " " + units[i][0] + (n === 1 ? "" : "s") + " ago";
    }
    return "just now";
  }
  document.querySelectorAll("time[data-age]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (isNaN(when.getTime())) return;
    var span = document.createElement("span");
    span.className = "muted";
    span.textContent = " (" + ago(when) + ")";
    el.after(span);
  });

  // Package search: filters the channel's JSON index; the full list stays for no-JS readers.
  document.querySelectorAll("[data-search]").forEach(function (box) {
    var input = box.querySelector("input");
    var status = box.querySelector(".search-status");
    var results = box.querySelector(".search-results");
    var list = document.getElementById("pkg-list");
    var pages = box.getAttribute("data-pages");
    var index = null;
    var LIMIT = 200;

    function render() {
      var query = input.value.trim().toLowerCase();
      if (!query || !index) {
        results.hidden = true;
        if (list) list.hidden = false;
        status.textContent = index ? "" : status.textContent;
        return;
      }
      var words = query.split(/\s+/);
      var hits = [];
      for (var i = 0; i < index.length; i++) {
        var row = index[i];
        var name = row[0].toLowerCase();
        var text = name + " " + (row[2] || "").toLowerCase();
        var ok = true;
        for (var w = 0; w < words.length && ok; w++) ok = text.indexOf(words[w]) !== -1;
        if (!ok) continue;
        var rank = name === query ? 0 : name.indexOf(query) === 0 ? 1 : name.indexOf(query) !== -1 ? 2 : 3;
        hits.push([rank, row]);
      }
      hits.sort(function (a, b) { return a[0] - b[0] || (a[1][0] < b[1][0] ? -1 : a[1][0] > b[1][0] ? 1 : 0); });
      results.textContent = "";
      hits.slice(0, LIMIT).forEach(function (hit) {
        var row = hit[1];
        var li = document.createElement("li");
        var a = document.createElement("a");
        a.href = pages + encodeURIComponent(row[0]) + ".html";
        a.textContent = row[0];
        li.appendChild(a);
        var ver = document.createElement("span");
        ver.className = "ver";
        ver.textContent = " " + row[1];
        li.appendChild(ver);
        if (row[2]) {
          var sum = document.createElement("span");
          sum.className = "sum";
          sum.textContent = " " + row[2];
          li.appendChild(sum);
        }
        results.appendChild(li);
      });
      status.textContent = hits.length === 0 ? "No package matches." :
        hits.length + (hits.length === 1 ? " package matches" : " packages match") +
        (hits.length > LIMIT ? " (showing the first " + LIMIT + ")" : "") + ".";
      results.hidden = false;
      if (list) list.hidden = true;
    }

    box.hidden = false;
    input.addEventListener("input", render);
    fetch(box.getAttribute("data-index"))
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        index = data.packages || [];
        box.setAttribute("data-ready", "");
        render();
      })
      .catch(function () {
        status.textContent = "Search is unavailable here; the full list is below.";
        box.setAttribute("data-ready", "");
      });
  });
})();
