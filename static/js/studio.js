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
