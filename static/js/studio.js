// The studio's behaviour, all in this file: the Content-Security-Policy allows no inline
// script, no event-handler attributes and no eval (so no hx-on and no hx-trigger filters).

// The studio page's one poll can bring a card the page already shows (its own new job,
// racing the form's answer): a card is never inserted twice.
document.addEventListener("htmx:oobBeforeSwap", function (event) {
  var target = event.detail.target;
  var fragment = event.detail.fragment;
  if (!target || target.id !== "cards" || !fragment || !fragment.querySelector) {
    return;
  }
  var card = fragment.querySelector("article[id^='job-']");
  if (card && document.getElementById(card.id)) {
    event.detail.shouldSwap = false;
  }
});

// The studio page's poller ticks every second; while no card is in flight (no
// input[name=live]) only one tick in five is sent, for teammates' new cards.
var IDLE_POLL_MS = 5000;
var lastPoll = Date.now();
document.addEventListener("htmx:confirm", function (event) {
  if (event.detail.elt.id !== "poller") {
    return;
  }
  var now = Date.now();
  var idle = document.getElementsByName("live").length === 0;
  if (idle && now - lastPoll < IDLE_POLL_MS - 100) {
    event.preventDefault();
    return;
  }
  lastPoll = now;
});

// <form data-confirm="Leave the team?">: asks before a plain (non-htmx) form is sent.
document.addEventListener("submit", function (event) {
  var message = event.target.getAttribute("data-confirm");
  if (message && !window.confirm(message)) {
    event.preventDefault();
  }
});

// <input data-select-on-focus>: a one-time link is selected whole when focused.
document.addEventListener("focusin", function (event) {
  if (event.target.hasAttribute && event.target.hasAttribute("data-select-on-focus")) {
    event.target.select();
  }
});

// <button data-copy="field-id">: copies that field's value and says so.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
  if (!button) {
    return;
  }
  var field = document.getElementById(button.getAttribute("data-copy"));
  field.select();
  var copied = navigator.clipboard
    ? navigator.clipboard.writeText(field.value)
    : Promise.resolve(document.execCommand("copy"));
  copied.then(function () {
    button.textContent = "Copied";
  });
});

// A running card's "running for 12.3 s" keeps counting between the polls' updates:
// each figure counts on from the value the server rendered, when it was put on the page.
function formatElapsed(seconds) {
  if (seconds < 60) {
    return seconds.toFixed(1) + " s";
  }
  var minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return minutes + " min " + Math.floor(seconds % 60) + " s";
  }
  return Math.floor(minutes / 60) + " h " + (minutes % 60) + " min";
}
function stampElapsed(root) {
  var now = Date.now();
  (root.querySelectorAll ? root : document).querySelectorAll("[data-elapsed]").forEach(function (el) {
    if (!el.dataset.shownAt) {
      el.dataset.shownAt = now;
    }
  });
}
document.addEventListener("DOMContentLoaded", function () { stampElapsed(document); });
document.addEventListener("htmx:load", function (event) { stampElapsed(event.target); });
setInterval(function () {
  stampElapsed(document);
  var now = Date.now();
  document.querySelectorAll("[data-elapsed]").forEach(function (el) {
    var seconds = parseFloat(el.dataset.elapsed) + (now - parseFloat(el.dataset.shownAt)) / 1000;
    el.textContent = formatElapsed(seconds);
  });
}, 1000);

// <form data-dropzone>: an image dropped anywhere on the form becomes its file input's
// file (the same field a click on "Choose file" fills).
function dropzoneOf(event) {
  return event.target.closest ? event.target.closest("form[data-dropzone]") : null;
}
["dragenter", "dragover"].forEach(function (type) {
  document.addEventListener(type, function (event) {
    var zone = dropzoneOf(event);
    if (zone && event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0) {
      event.preventDefault();
      zone.classList.add("dragging");
    }
  });
});
document.addEventListener("dragleave", function (event) {
  var zone = dropzoneOf(event);
  if (zone && !zone.contains(event.relatedTarget)) {
    zone.classList.remove("dragging");
  }
});
document.addEventListener("drop", function (event) {
  var zone = dropzoneOf(event);
  if (!zone) {
    return;
  }
  event.preventDefault();
  zone.classList.remove("dragging");
  var input = zone.querySelector("input[type=file]");
  if (input && event.dataTransfer && event.dataTransfer.files.length) {
    input.files = event.dataTransfer.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  }
});
