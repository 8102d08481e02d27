// The audit reports page (reports/templates/reports/list.html); a static file, since the
// Content-Security-Policy runs no inline script.

// Show only the fields the chosen kind uses (all of them stay in the form without JavaScript).
(function () {
  const kind = document.getElementById("id_kind");
  if (!kind) return;
  // exposure: the environment and the range are optional (none: every environment, the whole history)
  const uses = {environment: ["environment", "range"], artifact: ["artifact"], org: ["range"], audit: ["range"],
                exposure: ["vulnerability", "environment", "range"]};
  // the environment's empty choice: required for the environment report, "every environment" for exposure
  const environment = document.getElementById("id_environment");
  const emptyChoice = environment && environment.options.length ? environment.options[0] : null;
  const emptyText = emptyChoice ? emptyChoice.textContent : "";
  function sync() {
    document.querySelectorAll("[data-report-form] [data-for]").forEach(function (el) {
      el.hidden = !(uses[kind.value] || []).includes(el.dataset.for);
    });
    if (emptyChoice) emptyChoice.textContent = kind.value === "exposure" ? "Every environment" : emptyText;
    // the exposure report's range is optional (empty: the whole history): the other kinds' default 30 days
    // are not carried over to it, and come back when another kind is chosen
    ["id_from", "id_to"].forEach(function (id) {
      const input = document.getElementById(id);
      if (!input) return;
      if (kind.value === "exposure" && input.value === input.defaultValue) input.value = "";
      else if (kind.value !== "exposure" && !input.value) input.value = input.defaultValue;
    });
  }
  kind.addEventListener("change", sync);
  sync();
})();

// The rows of reports still being generated poll themselves (hx-get on the row, reports/_report_row.html).
