// Small progressive enhancements only: copy buttons and confirm prompts.
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
