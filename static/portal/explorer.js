// The inputs explorer: keyboard shortcuts, selection, expanding long texts.
(function () {
  "use strict";

  const rows = () => Array.from(document.querySelectorAll("#input-list .input-row"));
  const focusedRow = () => document.querySelector("#input-list .input-row.focused");
  let focusedId = null; // survives htmx swapping the row or the list

  function focusRow(row) {
    rows().forEach((other) => other.classList.toggle("focused", other === row));
    if (!row) return;
    focusedId = row.id;
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
  }

  function moveFocus(step) {
    const all = rows();
    if (!all.length) return;
    const index = all.indexOf(focusedRow());
    const next = index < 0 ? 0 : Math.min(Math.max(index + step, 0), all.length - 1);
    focusRow(all[next]);
  }

  // A key pressed while the row's last change is on its way waits for the answer: sent at
  // once, it would carry the revision that change replaces and be refused.
  const waitingKeys = new Map(); // row id -> keys, in order

  function isSaving(row) {
    return row.querySelector("form.htmx-request") !== null;
  }

  // Positive -> negative -> none: the chip's own form posts the next value; without a
  // chip the "+ concept" form adds the concept as positive.
  function cycleConcept(row, number) {
    const legend = document.querySelector(`.shortcut[data-key="${number}"]`);
    if (!row || !legend) return;
    if (isSaving(row)) {
      waitingKeys.set(row.id, [...(waitingKeys.get(row.id) || []), number]);
      return;
    }
    const concept = legend.dataset.concept;
    const chip = row.querySelector(`.chip[data-concept="${CSS.escape(concept)}"]`);
    if (chip) {
      chip.click();
      return;
    }
    const form = row.querySelector(".add-label");
    form.querySelector("input[name=concept]").value = concept;
    form.requestSubmit();
  }

  // The row's most likely suggestion becomes a label, as a click on its chip would do.
  function acceptSuggestion(row) {
    if (!row || isSaving(row)) return;
    row.querySelector(".chip.suggested")?.click();
  }

  function updateSelectionCount() {
    const counter = document.getElementById("selection-count");
    if (!counter) return;
    const all = document.getElementById("select-all-matching");
    const checked = document.querySelectorAll(".select-row:checked").length;
    if (all && all.checked) counter.textContent = "All matching inputs selected";
    else counter.textContent = checked ? `${checked} selected` : "";
  }

  function setPage(checked) {
    document.querySelectorAll(".select-row").forEach((box) => (box.checked = checked));
    const page = document.getElementById("select-page");
    if (page) page.checked = checked;
  }

  // Checkboxes and buttons take no text, so the shortcuts still work there.
  function isTyping(target) {
    if (target.matches("input")) return !["checkbox", "radio", "button", "submit"].includes(target.type);
    return target.closest("textarea, select, [contenteditable]") !== null;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
    const key = event.key;
    if (key === "j" || key === "k") moveFocus(key === "j" ? 1 : -1);
    else if (/^[1-9]$/.test(key)) cycleConcept(focusedRow(), key);
    else if (key === "a") acceptSuggestion(focusedRow());
    else if (key === "x") {
      const box = focusedRow()?.querySelector(".select-row");
      if (!box) return;
      box.checked = !box.checked;
      box.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (key === "?") document.getElementById("shortcuts-dialog")?.showModal();
    else return;
    event.preventDefault();
  });

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.id === "select-page") setPage(target.checked);
    if (target.id === "select-all-matching" && target.checked) setPage(true);
    if (target.classList.contains("select-row") && !target.checked) {
      const all = document.getElementById("select-all-matching");
      const page = document.getElementById("select-page");
      if (all) all.checked = false;
      if (page) page.checked = false;
    }
    updateSelectionCount();
  });

  document.addEventListener("click", (event) => {
    const row = event.target.closest("#input-list .input-row");
    if (!row) return;
    // A click on a row focuses it for the keyboard; a click on the text expands it.
    if (!event.target.closest("button, input, a")) focusRow(row);
    const text = event.target.closest(".input-text");
    if (text && !window.getSelection().toString()) text.classList.toggle("expanded");
  });

  // A row that htmx re-renders after labeling stays selected if it was.
  let keptSelection = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const box = target && target.matches(".input-row") && target.querySelector(".select-row");
    keptSelection = box ? { id: target.id, checked: box.checked } : null;
  });

  // htmx replaced a row or the whole list: keep the keyboard focus where it was, and
  // send the next key that waited for this row.
  document.addEventListener("htmx:afterSettle", () => {
    for (const [id, keys] of waitingKeys) {
      const row = document.getElementById(id);
      if (!row) waitingKeys.delete(id);
      else if (!isSaving(row)) {
        const next = keys.shift();
        if (!keys.length) waitingKeys.delete(id);
        cycleConcept(row, next);
      }
    }
    if (keptSelection) {
      const box = document.querySelector(`#${keptSelection.id} .select-row`);
      if (box) box.checked = keptSelection.checked;
      keptSelection = null;
    }
    const row = focusedId && document.getElementById(focusedId);
    if (row && !row.classList.contains("focused") && row.closest("#input-list")) {
      row.classList.add("focused");
      if (!isTyping(document.activeElement)) row.focus({ preventScroll: true });
    }
    updateSelectionCount();
  });
})();
