// Step 5 updated in place while the import runs: the report's section is
// replaced by the server's fresh one every second, so that screen readers
// hear what changed (an aria-live region) instead of a reloaded page. Without
// JavaScript the page reloads itself (a <noscript> refresh).
document.addEventListener("DOMContentLoaded", () => {
  const tick = async () => {
    const current = document.getElementById("rapport");
    if (!current || current.dataset.enCours !== "oui") return;
    try {
      const answer = await fetch(window.location.href, { credentials: "same-origin", cache: "no-store" });
      const page = new DOMParser().parseFromString(await answer.text(), "text/html");
      const fresh = page.getElementById("rapport");
      if (fresh) {
        current.dataset.enCours = fresh.dataset.enCours;
        current.innerHTML = fresh.innerHTML;
      }
    } catch (e) {
      // The server is away for a moment: try again at the next tick.
    }
    window.setTimeout(tick, 1000);
  };
  window.setTimeout(tick, 1000);
});
