// The audit reports page (reports/templates/reports/list.html); a static file, since the
// Content-Security-Policy runs no inline script.

// Show only the fields the chosen kind uses (all of them stay in the form without JavaScript).
(function () {
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  const uses = {environment: ["environment", "range"], artifact: ["artifact"], org: ["range"], audit: ["range"]};
  function sync() {
    document.querySelectorAll("[data-report-form] [data-for]").forEach(function (el) {
      el.hidden = !(uses[kind.value] || []).includes(el.dataset.for);
    });
  }
  kind.addEventListener("change", sync);
  sync();
})();

// Poll the reports still being generated; reload once one of them has finished.
(function () {
  const data = document.getElementById("pending-reports");
  const baseEl = document.querySelector("[data-report-status-base]");
  if (!data || !baseEl) return;
  const ids = JSON.parse(data.textContent);
  const base = baseEl.dataset.reportStatusBase;
  async function poll() {
    for (const id of ids) {
      const response = await fetch(base + id + "/status", {headers: {"Accept": "application/json"}});
      if (!response.ok) continue;
      const report = await response.json();
      if (report.status === "done" || report.status === "failed") { window.location.reload(); return; }
      const cell = document.querySelector('[data-report="' + id + '"] .progress');
      if (cell) cell.textContent = report.progress + "%" + (report.note ? " · " + report.note : "");
    }
    setTimeout(poll, 2000);
  }
  setTimeout(poll, 1500);
})();
