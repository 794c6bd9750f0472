// Small behaviours shared by every page; htmx does the rest.
(function () {
  "use strict";

  // A "×" button that removes `target`.
  function dismissButton(target, className) {
    const close = document.createElement("button");
    close.type = "button";
    close.className = className;
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", () => target.remove());
    return close;
  }

  // The sidebar remembers whether it was collapsed.
  function initSidebar() {
    const sidebar = document.getElementById("sidebar");
    if (!sidebar) return;
    const toggle = sidebar.querySelector(".sidebar-toggle");
    const apply = (collapsed) => {
      sidebar.classList.toggle("collapsed", collapsed);
      toggle.setAttribute("aria-expanded", String(!collapsed));
      toggle.title = collapsed ? "Expand sidebar" : "Collapse sidebar";
    };
    apply(localStorage.getItem("sidebar-collapsed") === "1");
    toggle.addEventListener("click", () => {
      const collapsed = !sidebar.classList.contains("collapsed");
      localStorage.setItem("sidebar-collapsed", collapsed ? "1" : "0");
      apply(collapsed);
    });
  }

  // Buttons with data-dialog="ID" open that <dialog>; [data-close] inside closes it.
  function initDialogs() {
    document.addEventListener("click", (event) => {
      const opener = event.target.closest("[data-dialog]");
      if (opener) {
        const dialog = document.getElementById(opener.dataset.dialog);
        if (dialog) {
          event.preventDefault();
          dialog.showModal();
        }
      }
      const closer = event.target.closest("[data-close]");
      if (closer) closer.closest("dialog").close();
    });
  }

  // Menus (<details>) close when the user clicks elsewhere.
  function initMenus() {
    document.addEventListener("click", (event) => {
      document.querySelectorAll("details.menu[open]").forEach((menu) => {
        if (!menu.contains(event.target)) menu.removeAttribute("open");
      });
    });
  }

  // Tabs inside a form: [data-tab=X] shows [data-panel=X] and sets the hidden [data-mode].
  function initTabs() {
    document.addEventListener("click", (event) => {
      const tab = event.target.closest("[data-tab]");
      if (!tab) return;
      const form = tab.closest("form");
      form.querySelectorAll("[data-tab]").forEach((other) => {
        other.setAttribute("aria-selected", String(other === tab));
      });
      form.querySelectorAll("[data-panel]").forEach((panel) => {
        panel.hidden = panel.dataset.panel !== tab.dataset.tab;
      });
      form.querySelector("[data-mode]").value = tab.dataset.tab;
    });
  }

  // Searchable pickers: the search box filters the options; in the concept picker the
  // "+" (or a search with no match) offers "Add new concept".
  function initPickers() {
    document.addEventListener("input", (event) => {
      const search = event.target.closest("[data-filter]");
      if (!search) return;
      const picker = search.closest("[data-picker]");
      const needle = search.value.trim().toLowerCase();
      let matches = 0;
      picker.querySelectorAll(".option").forEach((option) => {
        const hit = option.textContent.toLowerCase().includes(needle);
        option.hidden = !hit;
        matches += hit ? 1 : 0;
      });
      const addNew = picker.querySelector("[data-add-new]");
      if (addNew) {
        addNew.querySelector("[data-add-name]").textContent = search.value.trim();
        addNew.hidden = !needle || (matches > 0 && !picker.dataset.adding);
      }
    });
    document.addEventListener("click", (event) => {
      const toggle = event.target.closest("[data-add-toggle]");
      if (!toggle) return;
      const picker = toggle.closest("[data-picker]");
      picker.dataset.adding = "1";
      const search = picker.querySelector("[data-filter]");
      search.focus();
      search.dispatchEvent(new Event("input", { bubbles: true }));
    });
    // After a concept is added, clear the search so every option shows again.
    document.body.addEventListener("htmx:afterSwap", (event) => {
      const target = event.detail.target;
      if (!target || target.id !== "concept-options") return;
      const picker = target.closest("[data-picker]");
      const search = picker.querySelector("[data-filter]");
      search.value = "";
      delete picker.dataset.adding;
      search.dispatchEvent(new Event("input", { bubbles: true }));
    });
  }

  // A new API token's key: selected as a whole on focus; Copy buttons copy their source.
  // The Clipboard API needs HTTPS or localhost; elsewhere, select and copy.
  function initCopyButtons() {
    const key = document.getElementById("new-key-value");
    if (key) key.addEventListener("focus", (event) => event.target.select());
    document.querySelectorAll("[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const source = document.getElementById(button.dataset.copy);
        const text = source.value ?? source.textContent;
        try {
          await navigator.clipboard.writeText(text);
        } catch {
          if (source.select) {
            source.select();
          } else {
            const range = document.createRange();
            range.selectNodeContents(source);
            getSelection().removeAllRanges();
            getSelection().addRange(range);
          }
          document.execCommand("copy");
        }
        button.textContent = "Copied";
        setTimeout(() => {
          button.textContent = "Copy";
        }, 2000);
      });
    });
  }

  // Error pages: "Back" returns to the portal page the user came from, if any.
  function initBackButtons() {
    if (!document.referrer.startsWith(location.origin + "/")) return;
    document.querySelectorAll("[data-back]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => history.back());
    });
  }

  // A failed htmx request never replaces what is on the page (htmx 2 swaps no 4xx or
  // 5xx response): it says what went wrong in the nearest [data-errors] element around
  // what sent it, else in a toast. The note goes when that element's next request
  // succeeds, or with its "×"; "can't be reached" goes with any request that succeeds.
  const FAILED = {
    signedOut: "You were signed out: reload the page to sign in again.",
    403: "Your session or this page's form has expired: reload the page and try again.",
    404: "That item no longer exists or isn't yours — reload the page.",
    400: "The server refused this request: reload the page and try again.",
    500: "Something went wrong on the server; try again.",
    unreachable: "The server can't be reached: check your connection and try again.",
  };
  const notes = new WeakMap(); // element that sent the request -> its note

  // With the session gone, htmx follows the redirect to the sign-in page: not a fragment.
  function signedOut(xhr) {
    const login = document.body.dataset.loginUrl;
    return Boolean(login && xhr.responseURL) && new URL(xhr.responseURL).pathname === login;
  }

  function failure(elt, xhr) {
    if (signedOut(xhr)) return FAILED.signedOut;
    if (xhr.status === 404) return elt.closest("[data-not-found]")?.dataset.notFound || FAILED[404];
    if (xhr.status === 403) return FAILED[403];
    if (xhr.status >= 500) return FAILED[500];
    // Views refuse bad input with one short sentence ("Too many IDs; ..."): worth showing.
    const text = xhr.responseText.trim();
    return text && text.length <= 200 && !text.startsWith("<") ? text : FAILED[400];
  }

  function showFailure(elt, text) {
    let place = elt.closest("[data-errors], dialog[open]");
    if (!place || !place.isConnected) place = document.body;
    let note = place.querySelector(":scope > .request-error");
    if (!note) {
      note = document.createElement("div");
      note.className = "request-error message error";
      note.setAttribute("role", "alert");
      note.append(document.createElement("span"), dismissButton(note, "close"));
      place.append(note);
    }
    note.firstChild.textContent = text;
    note.toggleAttribute("data-unreachable", text === FAILED.unreachable);
    notes.set(elt, note);
  }

  function initRequestErrors() {
    document.addEventListener("htmx:beforeSwap", (event) => {
      if (!signedOut(event.detail.xhr)) return;
      event.detail.shouldSwap = false;
      event.detail.isError = true; // reported by htmx:responseError below
    });
    document.addEventListener("htmx:responseError", (event) => {
      showFailure(event.detail.elt, failure(event.detail.elt, event.detail.xhr));
    });
    document.addEventListener("htmx:sendError", (event) => {
      showFailure(event.detail.elt, FAILED.unreachable);
    });
    document.addEventListener("htmx:afterRequest", (event) => {
      if (!event.detail.successful) return;
      notes.get(event.detail.elt)?.remove();
      document.querySelectorAll(".request-error[data-unreachable]").forEach((note) => note.remove());
    });
  }

  // Try your own text: Ctrl+Enter (⌘+Enter) predicts; editing the text marks the answer
  // shown as stale until the next one arrives.
  function initTryBox() {
    document.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey)) return;
      if (event.target.id !== "try-text") return;
      event.preventDefault();
      event.target.form.requestSubmit();
    });
    document.addEventListener("input", (event) => {
      if (event.target.id !== "try-text") return;
      const result = document.getElementById("try-result");
      if (result && result.children.length) result.classList.add("stale");
    });
    document.addEventListener("htmx:afterSwap", (event) => {
      if (event.detail.target.id === "try-result") event.detail.target.classList.remove("stale");
    });
  }

  // The page's messages become toasts: a done action's note fades after a few seconds,
  // a warning or an error stays until it is closed. Without JavaScript they stay above
  // the page, as they are.
  const TOAST_SECONDS = 8;
  function initToasts() {
    const list = document.querySelector("ul.messages");
    if (!list) return;
    list.classList.add("toasts");
    list.querySelectorAll("li").forEach((toast) => {
      toast.append(dismissButton(toast, "toast-close"));
      if (toast.matches(".success, .info")) {
        setTimeout(() => toast.classList.add("fading"), TOAST_SECONDS * 1000);
        toast.addEventListener("transitionend", () => toast.remove());
      }
    });
  }

  // The upload window's CSV file: dropped or chosen, its first rows are shown with the
  // format found and, for a label column, a mapping of its labels to concept IDs (sent
  // as the hidden label_map). The server reads the whole file again either way.
  const PREVIEW_BYTES = 65536;
  const PREVIEW_ROWS = 5;
  const MAX_MAPPED = 60;

  function parseCsv(text) {
    const header = text.split(/\r?\n/, 1)[0].replace(/"[^"]*"/g, "");
    const delimiter = [",", ";", "\t"].reduce((best, d) =>
      header.split(d).length > header.split(best).length ? d : best, ",");
    const records = [];
    let cells = [], cell = "", quoted = false;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; }
        else if (c === '"') quoted = false;
        else cell += c;
      } else if (c === '"') quoted = true;
      else if (c === delimiter) { cells.push(cell); cell = ""; }
      else if (c === "\n" || c === "\r") {
        if (c === "\r" && text[i + 1] === "\n") i++;
        cells.push(cell); records.push(cells); cells = []; cell = "";
      } else cell += c;
    }
    if (cell || cells.length) { cells.push(cell); records.push(cells); }
    return records.filter((r) => r.some((value) => value.trim()));
  }

  function element(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    if (className) node.className = className;
    return node;
  }

  async function previewCsv(input) {
    const box = document.getElementById("csv-preview");
    const mapField = document.getElementById("label-map");
    if (!box || !mapField) return;
    mapField.value = "";
    box.replaceChildren();
    box.hidden = true;
    const file = input.files[0];
    if (!file) return;
    let records = parseCsv(await file.slice(0, PREVIEW_BYTES).text());
    if (file.size > PREVIEW_BYTES) records = records.slice(0, -1); // cut mid-row
    if (!records.length) return;
    const names = records[0].map((name) => name.trim().toLowerCase());
    const rows = records.slice(1);
    const format = names.includes("input.data.text.raw") ? "the portal's format"
      : names.includes("input") ? "input and concepts (SDK format)"
      : names.includes("text") ? "text and label" : "";
    const labelIndex = ["concepts", "label"].map((n) => names.indexOf(n)).find((i) => i >= 0);
    box.append(element("p", format
      ? `${file.name}: ${format}` + (labelIndex !== undefined ? `, labels in column “${records[0][labelIndex].trim()}”.` : ", no label column.")
      : `${file.name}: no text column found (input, input.data.text.raw or text); the upload will say more.`,
      "csv-format"));
    const table = element("table", undefined, "csv-rows");
    const head = table.createTHead().insertRow();
    records[0].forEach((name) => head.append(element("th", name)));
    const body = table.createTBody();
    rows.slice(0, PREVIEW_ROWS).forEach((row) => {
      const tr = body.insertRow();
      records[0].forEach((_, i) => tr.append(element("td", (row[i] || "").slice(0, 120))));
    });
    const scroll = element("div", undefined, "table-scroll");
    scroll.append(table);
    box.append(element("p", `The first ${Math.min(PREVIEW_ROWS, rows.length)} rows:`, "muted"), scroll);
    if (labelIndex !== undefined) {
      const labels = new Set();
      rows.forEach((row) => (row[labelIndex] || "").split(",").forEach((label) => {
        if (label.trim()) labels.add(label.trim());
      }));
      const shown = [...labels].sort().slice(0, MAX_MAPPED);
      if (shown.length) {
        const details = element("details", undefined, "label-mapping");
        details.append(element("summary", `Label mapping: ${labels.size} label${labels.size === 1 ? "" : "s"} in the first rows`));
        details.append(element("p", "Each file label becomes the concept ID on its right; change one to rename it, e.g. ham → not-spam.", "muted"));
        const mapping = element("table");
        const mapBody = mapping.createTBody();
        shown.forEach((label) => {
          const tr = mapBody.insertRow();
          const target = element("input");
          target.type = "text";
          target.value = label;
          target.dataset.label = label;
          target.setAttribute("aria-label", `Concept ID for the file label ${label}`);
          tr.append(element("td", label, "mono"), element("td", "→"));
          const cell = tr.insertCell();
          cell.append(target);
        });
        details.append(mapping);
        box.append(details);
      }
    }
    box.hidden = false;
  }

  function initCsvPreview() {
    document.addEventListener("change", (event) => {
      if (event.target.id === "id_file") previewCsv(event.target);
    });
    document.addEventListener("input", (event) => {
      if (!event.target.closest(".label-mapping") || !event.target.dataset.label) return;
      const mapping = {};
      document.querySelectorAll(".label-mapping input[data-label]").forEach((target) => {
        const value = target.value.trim();
        if (value && value !== target.dataset.label) mapping[target.dataset.label] = value;
      });
      document.getElementById("label-map").value = Object.keys(mapping).length ? JSON.stringify(mapping) : "";
    });
    for (const type of ["dragenter", "dragover"]) {
      document.addEventListener(type, (event) => {
        const zone = event.target.closest && event.target.closest("[data-dropzone]");
        if (!zone) return;
        event.preventDefault();
        zone.classList.add("dragging");
      });
    }
    document.addEventListener("dragleave", (event) => {
      const zone = event.target.closest && event.target.closest("[data-dropzone]");
      if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
    });
    document.addEventListener("drop", (event) => {
      const zone = event.target.closest && event.target.closest("[data-dropzone]");
      if (!zone) return;
      event.preventDefault();
      zone.classList.remove("dragging");
      const input = zone.querySelector("input[type=file]");
      if (!event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    initCsvPreview();
    initToasts();
    initTryBox();
    initBackButtons();
    initRequestErrors();
    initCopyButtons();
    initSidebar();
    initDialogs();
    initMenus();
    initTabs();
    initPickers();
  });
})();
