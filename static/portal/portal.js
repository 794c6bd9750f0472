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

  document.addEventListener("DOMContentLoaded", () => {
    initSidebar();
    initDialogs();
    initMenus();
  });
})();
