"""The page-error hook of the pages we serve or write (the backtest report, the status page).

It records script errors, unhandled rejections and console errors in the DOM (`#js-errors`,
`data-js-errors`): browser tests assert there are none, and a trader sees a broken page say so
instead of silently showing old figures. One text, so a Content-Security-Policy hash of it is one
value too.
"""

ERROR_HOOK = """
(function () {
  var errors = [];
  function show() {
    document.documentElement.setAttribute("data-js-errors", String(errors.length));
    var box = document.getElementById("js-errors");
    if (box) { box.hidden = false; box.textContent = errors.join("\\n"); }
  }
  function report(msg) { errors.push(String(msg)); show(); }
  window.addEventListener("error", function (e) {
    report("error: " + e.message + " (line " + e.lineno + ":" + e.colno + ")");
  });
  window.addEventListener("unhandledrejection", function (e) { report("unhandled: " + e.reason); });
  var original = console.error;
  console.error = function () {
    report("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
  document.addEventListener("DOMContentLoaded", function () { if (errors.length) show(); });
})();
"""
