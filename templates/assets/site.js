// sitegen pages: small progressive enhancements. Every page works without JavaScript.
(function () {
  "use strict";

  // The site root, from this page's relative path to it (works under any URL prefix), without
  // the path token the page may have been browsed under (/t/<token>/, after the host or after
  // the prefix): snippets are copied and shared, and where a token goes they say <TOKEN>.
  function siteRoot() {
    var root = document.documentElement.getAttribute("data-root") || ".";
    var url = new URL(root + "/", window.location.href);
    url.pathname = url.pathname.replace(/^\/t\/[^\/]+(?=\/)/, "").replace(/\/t\/[^\/]+\/$/, "/");
    return url.href.replace(/\/$/, "");
  }
  var onHttp = /^https?:$/.test(window.location.protocol);
  var LIMIT = 200;  // search results shown at most

  // Snippets written without base_url: show the address this site is browsed at.
  if (onHttp) {
    var base = siteRoot();
    document.querySelectorAll("pre[data-placeholder]").forEach(function (pre) {
      var placeholder = pre.getAttribute("data-placeholder");
      // The host alone (.netrc, pixi auth login, an auth file's key): the placeholder's host,
      // without its scheme, becomes the host name without a port, the key clients look up.
      // mamba's authentication.json is the exception: it keys by the host, lower-cased, with
      // its port if any (window.location.host), as libmamba looks a request's credentials up.
      var host = placeholder.replace(/^[a-z]+:\/\//, "");
      var mambaKey = '"' + host.toLowerCase() + '": {"type"';
      pre.textContent = pre.textContent.split(placeholder).join(base)
        .split(mambaKey).join('"' + window.location.host + '": {"type"')
        .split(host).join(window.location.hostname);
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

  // Filtered-out records of a run (run page): the run's JSON list, loaded when first searched.
  var filteredLists = {};
  document.querySelectorAll("[data-filtered]").forEach(function (block) {
    var box = block.querySelector(".search");
    var input = box.querySelector("input");
    var status = box.querySelector(".search-status");
    var table = box.querySelector(".search-results");
    var body = table.querySelector("tbody");
    var src = block.getAttribute("data-src");
    var mirror = block.getAttribute("data-mirror");
    var rows = null;

    function load() {
      if (!filteredLists[src]) {
        filteredLists[src] = fetch(src).then(function (response) {
          if (!response.ok) throw new Error(response.status);
          return response.json();
        });
      }
      return filteredLists[src].then(function (data) {
        var out = [];
        (data.mirrors || []).forEach(function (m) {
          if (m.mirror !== mirror) return;
          Object.keys(m.subdirs).forEach(function (subdir) {
            m.subdirs[subdir].forEach(function (r) {
              out.push({ cells: [r[0], r[1], r[2], subdir, data.reasons[r[3]]],
                         text: (r[0] + " " + r[1] + " " + r[2] + " " + subdir).toLowerCase() });
            });
          });
        });
        return out;
      });
    }

    function render() {
      var query = input.value.trim().toLowerCase();
      if (!query || !rows) { table.hidden = true; if (rows) status.textContent = ""; return; }
      var words = query.split(/\s+/);
      var hits = rows.filter(function (row) {
        return words.every(function (w) { return row.text.indexOf(w) !== -1; });
      });
      body.textContent = "";
      hits.slice(0, LIMIT).forEach(function (row) {
        var tr = document.createElement("tr");
        row.cells.forEach(function (value, i) {
          var td = document.createElement("td");
          td.textContent = value;
          if (i) td.setAttribute("data-label", table.querySelectorAll("th")[i].textContent);
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      status.textContent = hits.length === 0 ? "None of the filtered-out records matches." :
        hits.length + (hits.length === 1 ? " record matches" : " records match") +
        (hits.length > LIMIT ? " (showing the first " + LIMIT + ")" : "") + ".";
      table.hidden = hits.length === 0;
    }

    var loading = null;
    function start() {
      if (loading) return;
      status.textContent = "Loading the list…";
      loading = load().then(function (loaded) {
        rows = loaded;
        block.setAttribute("data-ready", "");
        render();
      }, function () {
        status.textContent = "The list is unavailable here; download the JSON instead.";
      });
    }
    box.hidden = false;
    input.addEventListener("focus", start);
    input.addEventListener("input", function () { start(); render(); });
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

  // Package search over JSON indexes (one per channel): the channel page searches its own,
  // the landing page every channel's, each loaded when the search is first used. The full
  // lists stay for readers without JavaScript.
  function loadIndex(source) {
    return fetch(source.index)
      .then(function (response) {
        if (!response.ok) throw new Error(response.status);
        return response.json();
      })
      .then(function (data) {
        // Lower-cased text once per row: a keystroke scans 30,000 rows without allocating.
        return (data.packages || []).map(function (row) {
          return {
            row: row,
            name: row[0].toLowerCase(),
            text: (row[0] + " " + (row[2] || "") + " " + (row[3] || "")).toLowerCase(),
            source: source
          };
        });
      });
  }

  function resultItem(hit, showChannel) {
    var row = hit.row;
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = hit.source.pages + encodeURIComponent(row[0]) + ".html";
    a.textContent = row[0];
    li.appendChild(a);
    var ver = document.createElement("span");
    ver.className = "ver";
    ver.textContent = " " + row[1];
    li.appendChild(ver);
    if (showChannel) {
      var channel = document.createElement("span");
      channel.className = "subdirs";
      channel.textContent = " " + hit.source.channel;
      li.appendChild(channel);
    }
    if (row[2]) {
      var sum = document.createElement("span");
      sum.className = "sum";
      sum.textContent = " " + row[2];
      li.appendChild(sum);
    }
    return li;
  }

  document.querySelectorAll("[data-search]").forEach(function (box) {
    var input = box.querySelector("input");
    var status = box.querySelector(".search-status");
    var results = box.querySelector(".search-results");
    var list = box.getAttribute("data-list") ? document.getElementById(box.getAttribute("data-list")) : null;
    var sources = [];
    if (box.getAttribute("data-index")) {
      sources.push({ index: box.getAttribute("data-index"), pages: box.getAttribute("data-pages"), channel: "" });
    }
    box.querySelectorAll(".search-sources [data-index]").forEach(function (el) {
      sources.push({ index: el.getAttribute("data-index"), pages: el.getAttribute("data-pages"), channel: el.getAttribute("data-channel") });
    });
    var showChannel = sources.length > 1 || !box.getAttribute("data-index");
    var rows = [];
    var pending = sources.length;
    var failed = 0;
    var started = false;

    function render() {
      var query = input.value.trim().toLowerCase();
      var unavailable = started && !pending && failed === sources.length;
      if (!query || unavailable) {
        results.hidden = true;
        if (list) list.hidden = false;
        status.textContent = unavailable ? "Search is unavailable here" + (list ? "; the full list is below." : ".") : "";
        return;
      }
      var words = query.split(/\s+/);
      var hits = [];
      for (var i = 0; i < rows.length; i++) {
        var item = rows[i];
        var ok = true;
        for (var w = 0; w < words.length && ok; w++) ok = item.text.indexOf(words[w]) !== -1;
        if (!ok) continue;
        var name = item.name;
        item.rank = name === query ? 0 : name.indexOf(query) === 0 ? 1 : name.indexOf(query) !== -1 ? 2 : 3;
        hits.push(item);
      }
      hits.sort(function (a, b) {
        return a.rank - b.rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
      });
      results.textContent = "";
      hits.slice(0, LIMIT).forEach(function (hit) { results.appendChild(resultItem(hit, showChannel)); });
      var text = hits.length === 0 ? "No package matches." :
        hits.length + (hits.length === 1 ? " package matches" : " packages match") +
        (hits.length > LIMIT ? " (showing the first " + LIMIT + ")" : "") + ".";
      if (pending) text += " Loading " + pending + " more index" + (pending === 1 ? "" : "es") + "…";
      if (failed) text += " " + failed + " index" + (failed === 1 ? " is" : "es are") + " unavailable.";
      status.textContent = text;
      results.hidden = false;
      if (list) list.hidden = true;
    }

    function start() {
      if (started) return;
      started = true;
      sources.forEach(function (source) {
        loadIndex(source).then(function (loaded) {
          rows = rows.concat(loaded);
        }, function () {
          failed += 1;
        }).then(function () {
          pending -= 1;
          if (!pending) box.setAttribute("data-ready", "");
          render();
        });
      });
    }

    box.hidden = false;
    input.addEventListener("input", function () { start(); render(); });
    input.addEventListener("focus", start);
    // A channel's own index is small next to its page: load it at once.
    if (list) start();
  });
})();
