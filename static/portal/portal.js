// Small behaviours shared by every page; htmx does the rest.
(function () {
  "use strict";

  // The sidebar remembers whether it was collapsed.
  function initSidebar() {
    const sidebar = document.getElementById("sidebar");
    if (!sidebar) return;
    const toggle = sidebar.querySelector(".sidebar-toggle");
    const apply = (collapsed) => {
      sidebar.classList.toggle("collapsed", collapsed);
      toggle.setAttribute("aria-expanded", String(!collapsed));
      toggle.textContent = collapsed ? "⟩" : "⟨";
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
      const close = document.createElement("button");
      close.type = "button";
      close.className = "close";
      close.setAttribute("aria-label", "Dismiss");
      close.textContent = "×";
      close.addEventListener("click", () => note.remove());
      note.append(document.createElement("span"), close);
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

  document.addEventListener("DOMContentLoaded", () => {
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
