// The audit reports page (reports/templates/reports/list.html); a static file, since the
// Content-Security-Policy runs no inline script.

// Show only the fields the chosen kind uses (all of them stay in the form without JavaScript).
(function () {
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  // exposure: the environment and the range are optional (none: every environment, the whole history)
  const uses = {environment: ["environment", "range"], artifact: ["artifact"], org: ["range"], audit: ["range"],
                exposure: ["vulnerability", "environment", "range"]};
  function sync() {
    document.querySelectorAll("[data-report-form] [data-for]").forEach(function (el) {
      el.hidden = !(uses[kind.value] || []).includes(el.dataset.for);
    });
  }
  kind.addEventListener("change", sync);
  sync();
})();

// The rows of reports still being generated poll themselves (hx-get on the row, reports/_report_row.html).
