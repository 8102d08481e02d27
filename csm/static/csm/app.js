// Small progressive enhancements only: copy buttons, confirm prompts, the small-screen menu, the theme
// choice, the slug suggestion and the alert action form. Every page works without them.
document.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (copy) {
    const text = copy.getAttribute("data-copy");
    const done = () => { copy.dataset.copied = "1"; copy.textContent = "Copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, done);
    } else {
      const area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); } finally { area.remove(); }
      done();
    }
  }
  const confirmEl = event.target.closest("[data-confirm]");
  if (confirmEl && !window.confirm(confirmEl.getAttribute("data-confirm"))) {
    event.preventDefault();
  }
});

// Small-screen menu: the "Menu" button folds the nav, the org switcher, the theme and Sign out.
document.addEventListener("click", (event) => {
  const toggle = event.target.closest("[data-menu-toggle]");
  if (!toggle) return;
  const bar = toggle.closest("[data-menu]");
  const open = !bar.classList.contains("open");
  bar.classList.toggle("open", open);
  toggle.setAttribute("aria-expanded", open ? "true" : "false");
});
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const bar = document.querySelector("[data-menu].open");
  if (!bar) return;
  bar.classList.remove("open");
  const toggle = bar.querySelector("[data-menu-toggle]");
  toggle.setAttribute("aria-expanded", "false");
  toggle.focus();
});

// Theme choice (light / dark / system), stored in localStorage; theme.js applies it before first paint.
document.addEventListener("DOMContentLoaded", () => {
  const wrapper = document.querySelector("[data-theme-choice]");
  if (!wrapper) return;
  const choice = wrapper.querySelector("select");
  let stored = null;
  try { stored = window.localStorage.getItem("csm-theme"); } catch (e) { return; }
  choice.value = stored === "light" || stored === "dark" ? stored : "system";
  wrapper.hidden = false;
  choice.addEventListener("change", () => {
    const root = document.documentElement;
    if (choice.value === "system") {
      window.localStorage.removeItem("csm-theme");
      root.removeAttribute("data-theme");
    } else {
      window.localStorage.setItem("csm-theme", choice.value);
      root.setAttribute("data-theme", choice.value);
    }
  });
});

// Create-org form: suggest the slug from the name until the user edits the slug themselves.
document.addEventListener("DOMContentLoaded", () => {
  const name = document.querySelector("[data-slug-source]");
  const slug = document.querySelector("[data-slug-target]");
  if (!name || !slug) return;
  let edited = slug.value !== "";
  const slugify = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
    .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, Number(slug.maxLength) > 0 ? slug.maxLength : 50)
    .replace(/-+$/g, "");
  slug.addEventListener("input", () => { edited = slug.value !== ""; });
  name.addEventListener("input", () => { if (!edited) slug.value = slugify(name.value); });
});

// Alert action form: show only the target field of the chosen type (the server validates either way).
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-action-form]").forEach((form) => {
    const type = form.querySelector("select[name=type]");
    if (!type) return;
    const sync = () => {
      form.querySelectorAll("[data-for-types]").forEach((field) => {
        field.hidden = !field.getAttribute("data-for-types").split(" ").includes(type.value);
      });
    };
    type.addEventListener("change", sync);
    sync();
  });
});

// A table wider than its .table-wrap scrolls sideways: make the wrapper reachable by keyboard (tabindex)
// and name it, so it can be scrolled without a mouse (WCAG 2.1.1).
const markScrollableTables = () => {
  document.querySelectorAll(".table-wrap").forEach((wrap) => {
    if (wrap.scrollWidth > wrap.clientWidth + 1) {
      if (!wrap.hasAttribute("tabindex")) {
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        const heading = wrap.querySelector("caption") || wrap.previousElementSibling;
        const label = heading && /^(H[1-6]|CAPTION)$/.test(heading.tagName) ? heading.textContent.trim() : "Table";
        wrap.setAttribute("aria-label", `${label} (scrolls sideways)`);
      }
    } else if (wrap.getAttribute("role") === "region") {
      wrap.removeAttribute("tabindex"); wrap.removeAttribute("role"); wrap.removeAttribute("aria-label");
    }
  });
};
document.addEventListener("DOMContentLoaded", markScrollableTables);
window.addEventListener("resize", markScrollableTables);
document.addEventListener("htmx:afterSettle", markScrollableTables);

// Forms marked data-disable-on-submit: their submit buttons are disabled (and show data-busy-label,
// with a spinner) from the moment the form is sent, so a slow answer cannot be clicked twice. A page
// restored from the back/forward cache gets its buttons back.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-disable-on-submit]");
  if (!form || event.defaultPrevented) return;
  form.setAttribute("aria-busy", "true");
  form.querySelectorAll("button[type=submit], button:not([type])").forEach((button) => {
    button.dataset.idleLabel = button.textContent;
    if (button.dataset.busyLabel) button.textContent = button.dataset.busyLabel;
    button.classList.add("busy");
    // A disabled submitter is left out of the form data: its name and value go in a hidden input.
    if (button.name && button === event.submitter) {
      const carry = document.createElement("input");
      carry.type = "hidden"; carry.name = button.name; carry.value = button.value;
      carry.dataset.carriedSubmitter = "1";
      form.appendChild(carry);
    }
    button.disabled = true;
  });
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("form[data-disable-on-submit][aria-busy]").forEach((form) => {
    form.removeAttribute("aria-busy");
    form.querySelectorAll("input[data-carried-submitter]").forEach((input) => input.remove());
    form.querySelectorAll("button.busy").forEach((button) => {
      button.disabled = false;
      button.classList.remove("busy");
      if (button.dataset.idleLabel) button.textContent = button.dataset.idleLabel;
    });
  });
});
