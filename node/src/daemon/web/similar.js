// The "Similar work" panel on a new-entry form: as the person types a
// title, summary or story, or picks priorities and methods, it asks
// /api/similar (same origin, the browser's session) for entries already
// in the community that look like the same work and lists them with why
// they match. Everything is written with textContent, never as HTML.
(function () {
  "use strict";
  var panel = document.getElementById("similar-work");
  var form = document.querySelector("form.entry-form");
  if (!panel || !form) return;
  var list = panel.querySelector(".similar-list");
  var status = panel.querySelector(".similar-status");
  var kind = panel.dataset.kind;
  var texts = ["title", "summary", "body", "problem", "aim", "impact", "place", "tags"];
  var choices = [["priorities", "priority"], ["methods", "method"], ["themes", "theme"]];
  var timer = null;
  var asked = "";
  var latest = 0;

  function query() {
    var params = new URLSearchParams();
    params.set("kind", kind);
    var words = 0;
    texts.forEach(function (name) {
      var field = form.elements.namedItem(name);
      if (field && field.value && field.value.trim()) {
        params.set(name, field.value.trim().slice(0, 4000));
        if (name !== "place" && name !== "tags") words += field.value.trim().length;
      }
    });
    var picked = 0;
    choices.forEach(function (pair) {
      form.querySelectorAll("input[name='" + pair[0] + "']:checked").forEach(function (box) {
        params.append(pair[1], box.value);
        picked += 1;
      });
    });
    // Nothing worth matching yet: a few letters of a title are not a draft.
    if (words < 8 && picked === 0) return null;
    return params.toString();
  }

  function show(entries) {
    list.textContent = "";
    if (!entries.length) {
      status.textContent = "Nothing similar found yet.";
      return;
    }
    status.textContent = entries.length === 1
      ? "1 entry looks like the same work."
      : entries.length + " entries look like the same work.";
    entries.forEach(function (e) {
      var item = document.createElement("li");
      var link = document.createElement("a");
      link.href = "/e/" + encodeURIComponent(e.id);
      link.textContent = e.title;
      item.appendChild(link);
      var who = document.createElement("span");
      who.className = "similar-owner";
      who.textContent = " (" + e.kind + (e.owner_name ? ", " + e.owner_name : "") + ")";
      item.appendChild(who);
      if (e.reasons && e.reasons.length) {
        var why = document.createElement("p");
        why.className = "hint";
        why.textContent = e.reasons.join("; ");
        item.appendChild(why);
      }
      list.appendChild(item);
    });
  }

  function ask() {
    var q = query();
    if (q === null) {
      panel.hidden = true;
      asked = "";
      return;
    }
    if (q === asked) return;
    asked = q;
    var mine = ++latest;
    fetch("/api/similar?" + q + "&limit=5", {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (r) {
        return r.ok ? r.json() : Promise.reject(r.status);
      })
      .then(function (entries) {
        if (mine !== latest) return;
        panel.hidden = false;
        show(entries);
      })
      .catch(function () {
        if (mine !== latest) return;
        panel.hidden = true;
      });
  }

  function later() {
    clearTimeout(timer);
    timer = setTimeout(ask, 400);
  }

  form.addEventListener("input", later);
  form.addEventListener("change", later);
  ask();
})();
