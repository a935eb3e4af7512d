// The creation form shows only the fields of the chosen profile: a field
// marked data-profils="enseignant" is hidden, and not sent, for another
// profile. Without JavaScript every field shows, each saying its profile.
document.addEventListener("DOMContentLoaded", () => {
  const profile = document.getElementById("profile");
  if (!profile) return;
  const update = () => {
    for (const block of document.querySelectorAll("[data-profils]")) {
      const shown = block.dataset.profils.split(" ").includes(profile.value);
      block.hidden = !shown;
      for (const input of block.querySelectorAll("input, select")) input.disabled = !shown;
    }
  };
  profile.addEventListener("change", update);
  update();
});
