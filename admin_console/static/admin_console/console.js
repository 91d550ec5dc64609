// Behaviour of the ops console, kept out of the HTML: our CSP (script-src 'self') refuses inline
// handlers, so a control opts in with a data- attribute and this file wires it up.
(function () {
  "use strict";
  function wire() {
    // <select data-autosubmit>: choosing an option submits its form (the tenant selector).
    document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
      select.addEventListener("change", function () {
        if (select.form) {
          select.form.submit();
        }
      });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", wire);
  } else {
    wire();
  }
})();
