// Keyboard shortcuts for the pair page: s = same, d = different, u = unsure, k = skip.
// The page works without this script; it only clicks the matching button.
(function () {
  "use strict";
  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey || event.repeat) {
      return;
    }
    var target = event.target;
    var tag = target && target.tagName ? target.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || tag === "select" || (target && target.isContentEditable)) {
      return;
    }
    var key = (event.key || "").toLowerCase();
    var button = document.querySelector('#decision-form button[data-key="' + key + '"]');
    if (button) {
      event.preventDefault();
      button.click();
    }
  });
})();
