// authmail pages: progressive enhancement only. Every form works without this
// file; with it, a "send code" button stays disabled and counts down until
// another code may be asked for (the server's resend_after).
"use strict";

function startCountdown(button) {
  let left = parseInt(button.dataset.countdown || "0", 10);
  if (!(left > 0)) {
    return;
  }
  const label = button.textContent;
  const waitLabel = button.dataset.waitLabel || "{n}";
  const deadline = Date.now() + left * 1000;
  const tick = () => {
    left = Math.ceil((deadline - Date.now()) / 1000);
    if (left <= 0) {
      button.disabled = false;
      button.textContent = label;
      button.removeAttribute("aria-disabled");
      return;
    }
    button.disabled = true;
    button.setAttribute("aria-disabled", "true");
    button.textContent = waitLabel.replace("{n}", String(left));
    setTimeout(tick, Math.min(1000, deadline - Date.now() - (left - 1) * 1000));
  };
  tick();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-countdown]").forEach(startCountdown);
});
