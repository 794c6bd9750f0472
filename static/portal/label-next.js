// Label next: keys 1-9 select concepts, Enter accepts, s skips, u undoes.
(function () {
  "use strict";

  const card = () => document.getElementById("label-card");

  // Keys wait while the card is on its way: a second Enter would post the same input again.
  function busy() {
    const current = card();
    return !current || current.querySelector(".htmx-request") !== null || current.classList.contains("htmx-request");
  }

  function isTyping(target) {
    if (target.matches("input")) return !["checkbox", "radio", "button", "submit"].includes(target.type);
    return target.closest("textarea, select, [contenteditable]") !== null;
  }

  function press(id) {
    const button = document.getElementById(id);
    if (button && !button.disabled) button.click();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target) || document.querySelector("dialog[open]")) return;
    const key = event.key;
    // Enter on a focused button or link does what that button or link does.
    if (key === "Enter" && event.target.closest("button, a")) return;
    if (!/^[1-9]$/.test(key) && !["Enter", "s", "u"].includes(key)) return;
    event.preventDefault();
    if (busy()) return;
    if (key === "Enter") press("label-accept");
    else if (key === "s") press("label-skip");
    else if (key === "u") press("label-undo");
    else {
      const box = card().querySelector(`input[name=concepts][data-key="${key}"]`);
      if (box) {
        box.checked = !box.checked;
        chose(box);
      }
    }
  });

  // Mutually exclusive concepts: a choice replaces the others, unless "several" is ticked;
  // then several chosen ones bring up a warning.
  function chose(box) {
    const choices = box.closest("fieldset[data-exclusive]");
    if (!choices) return;
    const several = document.getElementById("label-several");
    if (box.name === "concepts" && box.checked && !several.checked) {
      choices.querySelectorAll("input[name=concepts]:checked").forEach((other) => {
        if (other !== box) other.checked = false;
      });
    }
    const count = choices.querySelectorAll("input[name=concepts]:checked").length;
    document.getElementById("label-several-warning").hidden = !(several.checked && count > 1);
  }

  // Choosing another dataset, or how often to retrain, applies at once.
  document.addEventListener("change", (event) => {
    if (event.target.name === "concepts") chose(event.target);
    if (event.target.id === "label-several") {
      const first = card().querySelector("fieldset[data-exclusive] input[name=concepts]");
      if (first) chose(first);
    }
    if (["label-dataset", "label-retrain"].includes(event.target.id)) event.target.form.requestSubmit();
  });
})();
