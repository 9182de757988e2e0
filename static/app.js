// authmail pages: progressive enhancement only. Every form works without this
// file; with it, a "send code" button stays disabled and counts down until
// another code may be asked for (the server's resend_after), and a form that
// sends a code solves the server's proof of work in a Web Worker (pow.js)
// before it is sent, so the person never sees the picture challenge.
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

// A solution is good until a little before the challenge expires.
const CHALLENGE_MARGIN_MS = 15_000;

/// One proof of work: fetched from the API, solved in a worker.
async function solveChallenge(workerUrl) {
  const r = await fetch("/api/auth/challenge", { headers: { accept: "application/json" } });
  if (!r.ok) throw new Error(`GET /api/auth/challenge answered ${r.status}`);
  const challenge = await r.json();
  const until = Date.now() + challenge.expires_in * 1000 - CHALLENGE_MARGIN_MS;
  const worker = new Worker(workerUrl);
  try {
    const answer = await new Promise((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(`challenge worker: ${event.message}`));
      worker.postMessage({ salt: challenge.salt, bits: challenge.bits });
    });
    return { id: challenge.id, until, ...answer };
  } finally {
    worker.terminate();
  }
}

/// The picture the server put in a <noscript> (parsed as text while scripts
/// run), made part of the form.
function showPicture(form) {
  const box = form.querySelector("noscript.challenge");
  if (!box) return;
  const template = document.createElement("template");
  template.innerHTML = box.textContent;
  box.replaceWith(template.content);
}

function setField(form, name, value) {
  let input = form.querySelector(`input[type=hidden][name=${name}]`);
  if (!input) {
    input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    form.append(input);
  }
  input.value = value;
}

/// A form with data-challenge: solve as soon as it is shown; on submit, wait
/// for a solution that has not expired. Should the worker fail, or the server
/// still have asked for a challenge (data-challenged), the picture shows and
/// the form goes as it would without this script.
function guardSend(form) {
  if (form.hasAttribute("data-challenged") || typeof Worker !== "function") {
    showPicture(form);
    return;
  }
  let solution = null;
  let solving = null;
  let waiting = null; // the submit button of a send held until solved
  let failed = false;
  const solve = () => {
    solving = solveChallenge(form.dataset.challenge)
      .then((s) => {
        solution = s;
        setField(form, "challenge_id", s.id);
        setField(form, "challenge_nonce", s.nonce);
        // How long the worker took, for whoever measures it.
        form.dataset.challengeMs = String(Math.round(s.ms));
        form.dataset.challengeTries = String(s.tries);
      })
      .catch((err) => {
        failed = true;
        form.querySelectorAll("input[name^=challenge_]").forEach((i) => i.remove());
        showPicture(form);
        console.warn(`solving the challenge failed, showing the picture: ${err}`);
      })
      .finally(() => {
        solving = null;
        if (waiting) {
          const button = waiting;
          waiting = null;
          button.removeAttribute("aria-busy");
          form.requestSubmit(button);
        }
      });
  };
  form.addEventListener("submit", (event) => {
    if (failed) return;
    if (solution && Date.now() < solution.until) {
      // Sent with this send: another (should this one not get through) needs a new one.
      solution.until = 0;
      return;
    }
    event.preventDefault();
    if (waiting) return;
    waiting = event.submitter || form.querySelector("button[type=submit]");
    waiting.setAttribute("aria-busy", "true");
    if (!solving) solve();
  });
  solve();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("button[data-countdown]").forEach(startCountdown);
  document.querySelectorAll("form[data-challenge]").forEach(guardSend);
});
