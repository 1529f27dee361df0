// The Team page's user controls (owners and admins): "log out of Telegram" and "delete user",
// each asking for a confirmation in the row before it calls the API. Uses `api` and
// `errorText` from app.js.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const users = document.getElementById("users");
  if (!users) return;
  const lang = document.documentElement.lang || "en";
  for (const t of users.querySelectorAll("time[data-ts]")) {
    t.textContent = new Date(Number(t.dataset.ts)).toLocaleString(lang);
  }
  const status = document.getElementById("users-status");
  const error = document.getElementById("users-error");

  // Reloads the table from the server (the page itself), keeping the messages.
  const refresh = async () => {
    const res = await fetch("/team", { credentials: "same-origin", headers: { "Accept": "text/html" } });
    if (!res.ok) return;
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    const fresh = doc.getElementById("users-table");
    const current = document.getElementById("users-table");
    if (fresh && current) {
      for (const t of fresh.querySelectorAll("time[data-ts]")) {
        t.textContent = new Date(Number(t.dataset.ts)).toLocaleString(lang);
      }
      current.replaceWith(fresh);
    }
  };

  users.addEventListener("click", async (ev) => {
    const row = ev.target.closest("tr[data-user]");
    if (!row) return;
    const confirm = row.querySelector(".confirm");
    const action = ev.target.closest("button[data-user-action]");
    if (action) {
      // First click: the confirmation step, in the row.
      confirm.dataset.action = action.dataset.userAction;
      confirm.dataset.done = action.dataset.done || "";
      confirm.querySelector(".confirm-text").textContent = action.dataset.confirm;
      confirm.querySelector(".confirm-yes").textContent = action.dataset.yes;
      confirm.hidden = false;
      return;
    }
    if (ev.target.closest(".confirm-no")) {
      confirm.hidden = true;
      return;
    }
    const yes = ev.target.closest(".confirm-yes");
    if (!yes) return;
    const id = row.dataset.user;
    status.hidden = true;
    error.hidden = true;
    yes.disabled = true;
    const r = confirm.dataset.action === "delete"
      ? await api("DELETE", "/api/v1/team/users/" + id)
      : await api("POST", "/api/v1/team/users/" + id + "/telegram/logout");
    yes.disabled = false;
    confirm.hidden = true;
    if (!r.ok) {
      error.textContent = errorText(r);
      error.hidden = false;
      return;
    }
    if (confirm.dataset.action === "delete") {
      row.remove();
    } else {
      status.textContent = confirm.dataset.done;
      status.hidden = false;
      await refresh();
    }
  });
});
