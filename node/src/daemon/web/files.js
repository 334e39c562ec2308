// The upload form on an entry page: a file can be dropped onto the drop
// zone as well as chosen with the picker, and its size is checked before
// anything is sent. The form works the same without this script; the
// server checks everything again.
(function () {
  "use strict";
  var form = document.getElementById("upload");
  if (!form) return;
  var input = document.getElementById("f-file");
  var zone = form.querySelector(".drop-zone");
  var error = document.getElementById("f-file-error");
  var status = form.querySelector(".upload-status");
  var max = Number(form.dataset.max);
  var maxText = form.dataset.maxText;
  zone.classList.add("droppable");
  form.querySelector(".drop-hint").hidden = false;

  function say(message) {
    error.textContent = "";
    if (message) {
      var hidden = document.createElement("span");
      hidden.className = "visually-hidden";
      hidden.textContent = "Error: ";
      error.appendChild(hidden);
      error.appendChild(document.createTextNode(message));
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.setAttribute("aria-describedby", "f-file-hint f-file-error");
    } else {
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      input.setAttribute("aria-describedby", "f-file-hint");
    }
  }

  function check() {
    var f = input.files && input.files[0];
    if (!f) {
      say("Choose a file to upload.");
      return false;
    }
    if (f.size > max) {
      say("The file is larger than " + maxText + ", the most this node accepts for one file.");
      return false;
    }
    if (f.size === 0) {
      say("The file is empty (0 bytes); choose the file again.");
      return false;
    }
    say(null);
    return true;
  }

  input.addEventListener("change", function () {
    status.textContent = "";
    if (input.files.length) check();
  });
  ["dragenter", "dragover"].forEach(function (type) {
    zone.addEventListener(type, function (e) {
      e.preventDefault();
      zone.classList.add("dragging");
    });
  });
  zone.addEventListener("dragleave", function (e) {
    if (!zone.contains(e.relatedTarget)) zone.classList.remove("dragging");
  });
  zone.addEventListener("drop", function (e) {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove("dragging");
    var files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    if (files.length > 1) {
      say("Drop one file at a time.");
      return;
    }
    input.files = files;
    if (check()) status.textContent = files[0].name + " is ready: press Upload.";
  });
  // A file dropped beside the zone is not opened in place of the page
  // (text dragged into other fields still drops as usual).
  ["dragover", "drop"].forEach(function (type) {
    window.addEventListener(type, function (e) {
      var types = e.dataTransfer ? Array.prototype.slice.call(e.dataTransfer.types) : [];
      if (types.indexOf("Files") >= 0 && !zone.contains(e.target)) e.preventDefault();
    });
  });
  form.addEventListener("submit", function (e) {
    if (!check()) {
      e.preventDefault();
      input.focus();
      return;
    }
    status.textContent = "Uploading " + input.files[0].name + "…";
    form.querySelector("button[type=submit]").disabled = true;
  });
})();
