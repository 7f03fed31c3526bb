// The book's one fix to its theme. pydata-sphinx-theme 0.17 and sphinx-book-theme 1.3 bind the
// sidebar toggles with document.querySelector, which finds the header's button: the one the
// book theme hides (pydata-sphinx-theme#2451, sphinx-book-theme#991). The buttons a reader sees
// (and taps, on a phone) then do nothing. Every later toggle forwards its click to the first,
// which carries both themes' handlers: on a wide screen the sidebar collapses, on a narrow one
// the navigation (or the page's contents) opens as a dialog.
(function () {
  function forward(selector) {
    var buttons = document.querySelectorAll(selector);
    for (var i = 1; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        event.preventDefault();
        event.stopImmediatePropagation();
        buttons[0].click();
      });
    }
  }
  function fix() {
    forward(".primary-toggle");
    forward(".secondary-toggle");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fix);
  } else {
    fix();
  }
})();
