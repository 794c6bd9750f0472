// The evaluation page's prediction threshold slider. The server counted TP, FP and FN of
// every concept at each threshold k / 100 (metrics["sweep"]); moving the slider looks
// them up and redoes precision, recall and F1 as classifier.evaluation.counts_at does.
(function () {
  "use strict";

  const STEPS = 100;
  const FIELDS = ["precision", "recall", "f1"];

  // zero_division=0, as scikit-learn and counts_at
  function rates(tp, fp, fn) {
    return {
      precision: tp + fp ? tp / (tp + fp) : 0,
      recall: tp + fn ? tp / (tp + fn) : 0,
      f1: tp ? (2 * tp) / (2 * tp + fp + fn) : 0,
    };
  }

  function place(circle, x, y) {
    if (circle === null) return;
    if (x === null) {
      circle.setAttribute("hidden", "");
      return;
    }
    circle.setAttribute("cx", x.toFixed(4));
    circle.setAttribute("cy", y.toFixed(4));
    circle.removeAttribute("hidden");
  }

  // Precision-recall curves as steps, as scikit-learn draws them: a straight line
  // between two points would show precisions that no threshold gives.
  function drawSteps(polyline) {
    const points = polyline.getAttribute("points").trim().split(/\s+/).filter(Boolean);
    const stepped = points.flatMap((point, i) => {
      if (i === 0) return [point];
      const x = point.split(",")[0];
      const previousY = points[i - 1].split(",")[1];
      return [`${x},${previousY}`, point];
    });
    polyline.setAttribute("points", stepped.join(" "));
  }

  function init() {
    document.querySelectorAll("polyline[data-steps]").forEach(drawSteps);

    const source = document.getElementById("evaluation-data");
    const slider = document.getElementById("threshold");
    if (!source || !slider) return;
    const data = JSON.parse(source.textContent);
    const output = document.getElementById("threshold-value");
    const table = document.getElementById("concept-table");

    function update() {
      const k = Math.round(Number(slider.value) * STEPS);
      const threshold = k / STEPS;
      output.value = threshold.toFixed(2);
      const sums = { precision: 0, recall: 0, f1: 0 };
      data.sweep.forEach((counts, i) => {
        const tp = counts.tp[k];
        const fp = counts.fp[k];
        const fn = counts.fn[k];
        const r = rates(tp, fp, fn);
        FIELDS.forEach((field) => {
          sums[field] += r[field];
        });
        const row = table.querySelector(`tr[data-index="${i}"]`);
        row.querySelector('[data-field="predicted"]').textContent = tp + fp;
        for (const [cell, count] of [["tp", tp], ["fn", fn], ["fp", fp]]) {
          const link = row.querySelector(`[data-field="${cell}"] a`);
          link.textContent = count;
          link.href = `${link.getAttribute("hx-get")}&threshold=${threshold}`;
        }
        FIELDS.forEach((field) => {
          row.querySelector(`[data-field="${field}"]`).textContent = r[field].toFixed(3);
        });

        // The operating point on each curve: at threshold 0 everything is predicted,
        // so fp[0] is the number of negatives.
        if (data.roc_auc[i] === null) return;
        const positives = tp + fn;
        const negatives = counts.fp[0];
        place(
          document.querySelector(`circle[data-point="roc"][data-index="${i}"]`),
          fp / negatives,
          tp / positives,
        );
        const pr = document.querySelector(`circle[data-point="pr"][data-index="${i}"]`);
        if (tp + fp) place(pr, tp / positives, r.precision);
        else place(pr, null, null);
      });
      const n = data.sweep.length;
      document.querySelectorAll("[data-macro]").forEach((value) => {
        value.textContent = (sums[value.dataset.macro] / n).toFixed(3);
      });
      document.querySelectorAll(".at-threshold").forEach((note) => {
        note.textContent = `at ${threshold.toFixed(2)}`;
      });
    }

    // The thresholds form starts from the saved values, else from the slider.
    const inputs = document.querySelectorAll("[data-threshold-input]");
    inputs.forEach((input) => {
      if (input.value === "") input.value = Number(slider.value).toFixed(2);
    });
    document.querySelector("[data-use-slider]").addEventListener("click", () => {
      inputs.forEach((input) => {
        input.value = Number(slider.value).toFixed(2);
      });
    });

    // Don't show the previous selection while the next one loads.
    document.body.addEventListener("htmx:beforeRequest", (event) => {
      const target = event.detail.target;
      if (target && target.id === "selection-body") {
        target.innerHTML = '<p class="muted">Loading…</p>';
      }
    });

    slider.addEventListener("input", update);
    update();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
