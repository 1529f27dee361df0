// Telegram sign-in (docs/web-login.md): the sign-in page's phone → code card, and Settings'
// service-bot binding, trusted devices and service-bot designation. Uses `api` and
// `errorText` from app.js.
"use strict";

// Shows an API error with its stable code (data-code) and its message in the page language.
function signinError(p, r) {
  p.textContent = errorText(r);
  p.dataset.code = (r.data && r.data.error && r.data.error.code) || "";
  p.hidden = false;
}

// Counts `button` down from `secs`: disabled with "… in N s" until it may be used again.
function countdown(button, secs, template) {
  clearInterval(button._timer);
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  let left = secs;
  const tick = () => {
    if (left <= 0) {
      clearInterval(button._timer);
      button.disabled = false;
      button.textContent = label;
      delete button.dataset.left;
      return;
    }
    button.disabled = true;
    button.dataset.left = String(left);
    button.textContent = template.replace("{n}", String(left));
    left -= 1;
  };
  tick();
  button._timer = setInterval(tick, 1000);
}

document.addEventListener("DOMContentLoaded", async () => {
  const card = document.getElementById("tg-signin");
  if (!card) return;
  const opts = await api("GET", "/api/v1/auth/options");
  if (!opts.ok || !opts.data || opts.data.self_service === "off") return;
  card.hidden = false;
  const $ = (id) => document.getElementById(id);
  const phoneForm = $("tg-phone-form");
  const verifyForm = $("tg-verify-form");
  const codeForm = $("tg-code-form");
  const passwordForm = $("tg-password-form");
  const err = $("tg-error");
  const resend = $("tg-resend");
  const useTelegram = $("tg-use-telegram");
  const useQr = $("tg-use-qr");
  const restart = $("tg-restart");
  const steps = [verifyForm, codeForm, passwordForm, $("tg-bind"), $("tg-qr"), $("tg-welcome")];
  let phone = "";
  let flow = null;
  let resendKind = null;
  let qrTimer = null;
  const remember = () => $("tg-remember").checked;
  const hideSteps = () => {
    for (const s of steps) s.hidden = true;
    clearInterval(qrTimer);
    err.hidden = true;
  };

  const signedIn = (data) => {
    if (data.new_user && data.bot_link) {
      // First sign-in: offer the binding link once, so the next sign-in gets the bot's code.
      hideSteps();
      phoneForm.hidden = true;
      for (const b of [resend, useTelegram, useQr, restart]) b.hidden = true;
      // `bot_link` is the deep link itself: https://t.me/<bot>?start=<nonce>.
      const bot = (data.bot_link.match(/t\.me\/([^?]+)/) || [])[1] || "";
      $("tg-welcome-text").textContent = card.dataset.welcomeBind.replace("{bot}", bot);
      const a = $("tg-welcome-link");
      a.href = data.bot_link;
      a.textContent = data.bot_link;
      $("tg-welcome").hidden = false;
      return;
    }
    window.location.assign("/inbox");
  };

  // Shows the step an answer of start / the Telegram flow asks for.
  const show = (data) => {
    hideSteps();
    phoneForm.hidden = true;
    restart.hidden = false;
    useTelegram.hidden = true;
    useQr.hidden = true;
    resend.hidden = true;
    switch (data.status) {
      case "signed_in":
        flow = null;
        signedIn(data);
        return;
      case "code_sent":
        $("tg-verify-info").textContent = card.dataset.botCodeSent.replace("{bot}", data.bot_username || "");
        verifyForm.hidden = false;
        verifyForm.code.value = "";
        verifyForm.code.focus();
        useTelegram.hidden = false;
        resend.hidden = false;
        resendKind = "bot";
        countdown(resend, data.resend_after_secs || 60, card.dataset.resendIn);
        return;
      case "bind_bot": {
        $("tg-bind-text").textContent = card.dataset.bindHint.replace("{bot}", data.bot_username || "");
        const a = $("tg-bind-link");
        a.href = data.link;
        a.textContent = data.link;
        $("tg-bind").hidden = false;
        // Once bound, the bot sends the code at once: the code field waits for it.
        $("tg-verify-info").textContent = card.dataset.botCodeSent.replace("{bot}", data.bot_username || "");
        verifyForm.hidden = false;
        useTelegram.hidden = false;
        return;
      }
      case "telegram_code_sent":
        flow = data.flow_id;
        $("tg-code-info").textContent = card.dataset.tgCodeSent.replace("{via}", data.code.delivery);
        codeForm.hidden = false;
        codeForm.code.value = "";
        codeForm.code.focus();
        useQr.hidden = false;
        resend.hidden = false;
        resendKind = "telegram";
        countdown(resend, data.code.timeout_secs || 30, card.dataset.resendIn);
        return;
      case "qr_pending":
        flow = data.flow_id;
        $("tg-qr-image").innerHTML = data.svg;
        $("tg-qr").hidden = false;
        qrTimer = setInterval(pollQr, 2000);
        return;
      case "password_needed":
        flow = data.flow_id || flow;
        passwordForm.querySelector(".hint-text").textContent = data.hint ? " (" + data.hint + ")" : "";
        passwordForm.hidden = false;
        passwordForm.password.focus();
        return;
      default:
        err.textContent = "HTTP 200: " + data.status;
        err.hidden = false;
    }
  };

  // Closes the Telegram flow the page leaves (its login client) when the user chooses another
  // way or another phone, so no login client lingers until the flow's 15 minutes are over.
  const dropFlow = async () => {
    if (flow) await api("DELETE", "/api/v1/auth/telegram/" + flow);
    flow = null;
  };

  const start = async (method) => {
    err.hidden = true;
    await dropFlow();
    const body = { phone, method };
    const invite = new URLSearchParams(window.location.search).get("invite");
    if (invite) body.invite = invite;
    const r = await api("POST", "/api/v1/auth/start", body);
    if (!r.ok) {
      signinError(err, r);
      if (r.retryAfter && !resend.hidden) countdown(resend, r.retryAfter, card.dataset.resendIn);
      return false;
    }
    show(r.data);
    return true;
  };

  const pollQr = async () => {
    const r = await api("GET", "/api/v1/auth/telegram/" + flow + "?remember_device=" + remember());
    if (!r.ok) { clearInterval(qrTimer); signinError(err, r); return; }
    if (r.data.status === "qr_pending") { $("tg-qr-image").innerHTML = r.data.svg; return; }
    show(r.data);
  };

  phoneForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    phone = phoneForm.phone.value.trim();
    const button = phoneForm.querySelector("button");
    button.disabled = true;
    await start("auto");
    button.disabled = false;
  });
  verifyForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const r = await api("POST", "/api/v1/auth/verify", {
      phone, code: verifyForm.code.value.trim(), remember_device: remember(),
    });
    if (!r.ok) { signinError(err, r); return; }
    show(r.data);
  });
  codeForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const r = await api("POST", "/api/v1/auth/telegram/" + flow + "/code", {
      code: codeForm.code.value.trim(), remember_device: remember(),
    });
    if (!r.ok) { signinError(err, r); return; }
    show(r.data);
  });
  passwordForm.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    err.hidden = true;
    const r = await api("POST", "/api/v1/auth/telegram/" + flow + "/password", {
      password: passwordForm.password.value, remember_device: remember(),
    });
    if (!r.ok) { signinError(err, r); return; }
    passwordForm.reset();
    show(r.data);
  });
  resend.addEventListener("click", async () => {
    if (resendKind === "bot") { await start("auto"); return; }
    err.hidden = true;
    const r = await api("POST", "/api/v1/auth/telegram/" + flow + "/resend");
    if (!r.ok) { signinError(err, r); return; }
    show(r.data);
  });
  useTelegram.addEventListener("click", () => start("telegram"));
  useQr.addEventListener("click", () => start("qr"));
  restart.addEventListener("click", () => {
    hideSteps();
    dropFlow();
    for (const b of [resend, useTelegram, useQr, restart]) b.hidden = true;
    phoneForm.hidden = false;
    phoneForm.phone.focus();
  });
});

// --- Settings: the service bot binding, trusted devices, the service bot designation ---
document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("signin-settings");
  if (!box) return;
  const $ = (id) => document.getElementById(id);
  const err = $("signin-error");
  const lang = document.documentElement.lang || "en";
  const when = (ms) => new Date(ms).toLocaleString(lang);
  const state = await api("GET", "/api/v1/me/signin");
  if (state.ok && state.data && state.data.service_bot_username) {
    box.hidden = false;
    const bot = state.data.service_bot_username;
    $("bot-state").textContent = (state.data.bound ? box.dataset.bound : box.dataset.unbound).replace("{bot}", bot);
    $("bot-state").dataset.bound = String(state.data.bound);
    $("bot-link-new").addEventListener("click", async () => {
      err.hidden = true;
      const r = await api("POST", "/api/v1/me/bot-link");
      if (!r.ok) { signinError(err, r); return; }
      const a = $("bot-link");
      a.href = r.data.link;
      a.textContent = r.data.link;
      a.hidden = false;
    });
  } else {
    $("bot-link-new").hidden = true;
  }
  const devices = $("devices");
  const loadDevices = async () => {
    const r = await api("GET", "/api/v1/me/devices");
    if (!r.ok || !r.data) return;
    box.hidden = false;
    const body = devices.querySelector("tbody");
    body.textContent = "";
    for (const d of r.data.devices) {
      const tr = document.createElement("tr");
      tr.dataset.device = String(d.id);
      for (const text of [
        (d.browser || "?") + (d.current ? " (" + box.dataset.current + ")" : ""),
        when(d.created_at), when(d.last_used_at), when(d.expires_at),
      ]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "secondary";
      b.dataset.revoke = String(d.id);
      b.textContent = box.dataset.revoke;
      td.appendChild(b);
      tr.appendChild(td);
      body.appendChild(tr);
    }
    const none = r.data.devices.length === 0;
    devices.hidden = none;
    $("devices-none").hidden = !none;
    $("devices-revoke-all").hidden = none;
  };
  devices.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-revoke]");
    if (!b) return;
    err.hidden = true;
    const r = await api("DELETE", "/api/v1/me/devices/" + b.dataset.revoke);
    if (!r.ok) { signinError(err, r); return; }
    await loadDevices();
  });
  $("devices-revoke-all").addEventListener("click", async () => {
    err.hidden = true;
    const r = await api("DELETE", "/api/v1/me/devices");
    if (!r.ok) { signinError(err, r); return; }
    await loadDevices();
  });
  await loadDevices();

  const botBox = $("service-bot-settings");
  if (!botBox) return;
  const settings = await api("GET", "/api/v1/auth/settings");
  if (!settings.ok || !settings.data || !settings.data.can_manage) return;
  const bots = await api("GET", "/api/v1/bots");
  const select = $("service-bot-select");
  for (const b of (bots.ok && bots.data ? bots.data.bots : [])) {
    const o = document.createElement("option");
    o.value = String(b.id);
    o.textContent = "@" + b.username;
    select.appendChild(o);
  }
  const current = settings.data.service_bot;
  select.value = current ? String(current.id) : "";
  botBox.hidden = false;
  $("service-bot-save").addEventListener("click", async () => {
    $("service-bot-status").hidden = true;
    $("service-bot-error").hidden = true;
    const r = await api("PUT", "/api/v1/auth/settings/service-bot", { bot_id: select.value ? Number(select.value) : null });
    if (!r.ok) { signinError($("service-bot-error"), r); return; }
    $("service-bot-status").hidden = false;
  });
});
