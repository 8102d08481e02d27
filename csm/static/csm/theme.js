// Runs in <head> before the first paint (a same-origin file: the Content-Security-Policy allows no inline
// script). Applies the theme chosen in the topbar ("light" / "dark"; nothing stored means "system", which
// app.css follows through prefers-color-scheme), and marks <html> as scripted so the small-screen menu
// can fold without a jump.
(function () {
  var root = document.documentElement;
  root.classList.add("js");
  try {
    var theme = window.localStorage.getItem("csm-theme");
    if (theme === "light" || theme === "dark") { root.setAttribute("data-theme", theme); }
  } catch (e) { /* storage disabled: follow the system */ }
})();
