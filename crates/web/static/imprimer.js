// The slips page's "Imprimer" button, as a file: the Content-Security-Policy
// allows no inline script.
document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-imprimer]")) {
    button.addEventListener("click", () => window.print());
  }
});
