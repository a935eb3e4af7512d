// Step 2 follows each choice at once: the checklist of mandatory fields and
// the sentence under it change with every select, before "Suivant" is
// pressed. Without JavaScript "Suivant" records the choices and the server
// says what is missing; the server checks again either way.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("correspondances");
  const status = document.getElementById("etat-correspondances");
  if (!form || !status) return;
  const selects = Array.from(form.querySelectorAll("select[name^='col']"));
  const required = Array.from(form.querySelectorAll("tr[data-champ]"));
  const mark = (cell, present) => {
    const sign = document.createElement("span");
    sign.className = present ? "ok" : "ko";
    sign.textContent = present ? "✓" : "✗";
    const said = document.createElement("span");
    said.className = "visuellement-cache";
    said.textContent = present ? " présent" : " absent";
    sign.appendChild(said);
    cell.replaceChildren(sign);
  };
  const update = () => {
    const chosen = new Map();
    const twice = [];
    for (const select of selects) {
      if (select.value === "ignorer") continue;
      if (chosen.has(select.value)) {
        twice.push(select.options[select.selectedIndex].text);
      }
      chosen.set(select.value, true);
    }
    const missing = [];
    for (const row of required) {
      const present = chosen.has(row.dataset.champ);
      mark(row.cells[0], present);
      if (!present) missing.push(row.cells[1].textContent.trim());
    }
    if (twice.length > 0) {
      status.textContent = "« " + twice.join(" », « ") + " » est choisi pour deux colonnes : choisissez « Aucune correspondance » pour l'une d'elles.";
    } else if (missing.length > 0) {
      status.textContent = "Il manque encore une colonne pour : " + missing.join(", ") + ".";
    } else {
      status.textContent = "Chaque champ obligatoire a sa colonne : « Suivant » passe à la vérification des lignes.";
    }
  };
  for (const select of selects) select.addEventListener("change", update);
});
