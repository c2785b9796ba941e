"""The rater page's browser side: enlarged view, keyboard, focus, reload safety, timing report.

One ``st.components.v2`` component (no iframe, no network: its JavaScript is inline and talks
only to this page) is mounted inside the rating form. It does not draw the page; it works on
what Streamlit drew:

* **Enlarged view.** Clicking a thumbnail (or Enter on it, or **V**) opens a modal ``<dialog>``
  showing that image at its native size, scaled down only to fit the screen; **←/→** step through
  set A then set B, **G** shows a whole set at native size, **Esc** closes. The view shows the very
  ``/media/...`` URL of the thumbnail, through one code path for both sets, so it adds nothing that
  could tell the systems apart (every stored image has one size and byte length: storage.py).
* **Keyboard.** **A** / **I** / **B** answer the highlighted question (set A / indifferent / set B)
  and move the focus to the next unanswered one, then to the submit button; **Enter** submits.
  The real Streamlit radio inputs are clicked, so the form and its server-side checks are unchanged.
* **Reload safety.** Answers, the first time this browser showed the item and the image-open
  events are kept in ``localStorage`` per screen, and restored after a reload.
* **Timing report.** With the submission the component's ``telemetry`` state carries the
  browser's time on the item and the image-open events (a component state inside a form is sent
  with the form, without a rerun of its own). The server checks it (:mod:`raters_ui.telemetry`)
  and keeps it beside its own measure.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

KEYS_HELP = (
    "Keyboard: A, I or B answers the highlighted question (set A, indifferent, set B) and moves on; "
    "Enter submits; V views the images at full size (← → move through both sets, G shows a whole "
    "set, Esc closes); Tab and Shift+Tab move between questions."
)
VIEW_HELP = (
    "Click an image, or press V, to see it at its full size; ← → move through set A and then "
    "set B, G shows a whole set, Esc closes."
)

JS = r"""
const PREFIX = "imagen-bench:screen:";
const KEYS = {a: 0, i: 1, b: 2};
const NAMES = ["I prefer set A", "I am indifferent", "I prefer set B"];
const QUESTIONS = ["Quality", "Caption"];
const MAX_EVENTS = 200;

function now() { return Date.now(); }
function $$(sel) { return Array.from(document.querySelectorAll(sel)); }

function load(key) {
  try { const v = JSON.parse(localStorage.getItem(PREFIX + key)); if (v && v.first) return v; } catch (e) {}
  return {first: now(), events: [], answers: {}};
}
function save(ctx) { try { localStorage.setItem(PREFIX + ctx.data.key, JSON.stringify(ctx.st)); } catch (e) {} }
function forget(keep) {
  try {
    for (let i = localStorage.length - 1; i >= 0; i--) {
      const k = localStorage.key(i);
      if (!k || !k.startsWith(PREFIX) || k === PREFIX + keep) continue;
      const v = JSON.parse(localStorage.getItem(k) || "{}");
      if (v.submitted || now() - (v.first || 0) > 2 * 86400e3) localStorage.removeItem(k);
    }
  } catch (e) {}
}

function install() {
  const app = {cur: null};
  const live = document.createElement("div");
  live.className = "ib-live"; live.setAttribute("role", "status"); live.setAttribute("aria-live", "polite");
  document.body.appendChild(live);
  app.say = (text) => { live.textContent = ""; setTimeout(() => { live.textContent = text; }, 30); };
  app.viewer = makeViewer(app);

  document.addEventListener("keydown", (e) => onKey(app, e));
  document.addEventListener("click", (e) => onClick(app, e), true);
  document.addEventListener("change", (e) => onChange(app, e), true);
  return app;
}

// ---- the rating form ------------------------------------------------------------------------

function radios(ctx, q) { return $$(".st-key-" + ctx.data.radios[q] + " input[type=radio]"); }
function group(ctx, q) { return document.querySelector(".st-key-" + ctx.data.radios[q]); }
function chosen(ctx, q) { return radios(ctx, q).findIndex((r) => r.checked); }
function submitButton(ctx) { return document.querySelector(".st-key-" + ctx.data.submit + " button"); }
function thumbs(ctx, s) { return $$(".st-key-" + ctx.data.sets[s] + " img"); }
function ready(ctx) { return submitButton(ctx) && radios(ctx, 1).length === 3 && thumbs(ctx, 1).length > 0; }

function highlight(ctx, q) {
  for (let k = 0; k < 2; k++) { const g = group(ctx, k); if (g) g.toggleAttribute("data-ib-current", k === q); }
}
// Answered: the radio shows it, or a key just chose it (React may not have redrawn yet).
function isAnswered(ctx, q) { return chosen(ctx, q) >= 0 || ctx.st.answers[q] !== undefined; }
function firstOpen(ctx) { for (let q = 0; q < 2; q++) if (!isAnswered(ctx, q)) return q; return -1; }
function focusQuestion(ctx, q, scroll) {
  const rs = radios(ctx, q);
  const target = rs[Math.max(0, chosen(ctx, q))];
  highlight(ctx, q);
  if (target) target.focus({preventScroll: !scroll});
}
function focusNext(ctx, scroll) {
  const q = firstOpen(ctx);
  if (q >= 0) { focusQuestion(ctx, q, scroll); return; }
  highlight(ctx, -1);
  const b = submitButton(ctx);
  if (b) b.focus({preventScroll: !scroll});
}
function currentQuestion(ctx) {
  for (let q = 0; q < 2; q++) { const g = group(ctx, q); if (g && g.contains(document.activeElement)) return q; }
  return firstOpen(ctx);
}

function answer(app, ctx, idx) {
  const q = currentQuestion(ctx);
  if (q < 0) { app.say("Both questions are answered: press Enter to submit, or Shift+Tab to change an answer."); return; }
  const r = radios(ctx, q)[idx];
  if (!r) return;
  r.click();
  ctx.st.answers[q] = idx; save(ctx);
  app.say(QUESTIONS[q] + ": " + NAMES[idx] + ".");
  focusNext(ctx, true);  // at once: the next key press must find the focus on the next question
}

function report(ctx, final) {
  const t = (now() - ctx.st.first) / 1000;
  const events = ctx.st.events.slice(0, MAX_EVENTS).map((e) => ({set: e.set, image: e.image, at: e.at,
                                                                  seconds: e.seconds}));
  ctx.setState("telemetry", {key: ctx.data.key, client_seconds: final ? t : null, events: events});
}

function submit(app, ctx) {
  if (ctx.st.submitted) return;
  const q = firstOpen(ctx);
  if (q >= 0) { focusQuestion(ctx, q, true); app.say("Please answer both questions first."); return; }
  const b = submitButton(ctx);
  if (b) b.click();  // onClick below sends the report first
}

function onClick(app, e) {
  const ctx = app.cur;
  if (!ctx) return;
  const b = submitButton(ctx);
  if (b && b.contains(e.target)) {
    if (ctx.st.submitted || firstOpen(ctx) >= 0) return;  // the server says what is missing
    app.viewer.finish();
    report(ctx, true);
    ctx.st.submitted = true; save(ctx);
    // If the server refuses (an error), the same screen stays: allow another try.
    setTimeout(() => { if (app.cur === ctx && document.contains(b)) { ctx.st.submitted = false; save(ctx); } }, 8000);
    return;
  }
  const img = e.target.closest && e.target.closest("img[data-ib-set]");
  if (img) { e.preventDefault(); app.viewer.open(ctx, +img.dataset.ibSet, +img.dataset.ibIndex, false, img); }
}

function onChange(app, e) {
  const ctx = app.cur;
  if (!ctx) return;
  for (let q = 0; q < 2; q++) {
    const idx = radios(ctx, q).indexOf(e.target);
    if (idx >= 0) { ctx.st.answers[q] = idx; save(ctx); }
  }
}

function onKey(app, e) {
  if (app.viewer.isOpen()) { app.viewer.key(e); return; }
  const ctx = app.cur;
  if (!ctx || e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || !ready(ctx)) return;
  const t = e.target;
  if (t && t.matches && t.matches("input[type=text], input[type=password], textarea, [contenteditable=true]")) return;
  const k = (e.key || "").toLowerCase();
  if (k in KEYS && !e.shiftKey) {
    e.preventDefault();
    if (!ctx.st.submitted) answer(app, ctx, KEYS[k]);  // sent: the next screen is on its way
    return;
  }
  if (k === "v" || k === "g") {
    e.preventDefault();
    const img = t && t.dataset && t.dataset.ibSet !== undefined ? t : null;
    app.viewer.open(ctx, img ? +img.dataset.ibSet : 0, img ? +img.dataset.ibIndex : 0, k === "g", t);
    return;
  }
  if (e.key === "Enter") {
    if (t && t.dataset && t.dataset.ibSet !== undefined) {
      e.preventDefault(); app.viewer.open(ctx, +t.dataset.ibSet, +t.dataset.ibIndex, false, t); return;
    }
    if (t && t.closest && t.closest("button, a, summary")) return;  // their own Enter
    e.preventDefault(); submit(app, ctx);
  }
}

function decorate(ctx) {
  for (let s = 0; s < 2; s++) {
    thumbs(ctx, s).forEach((img, i) => {
      if (img.dataset.ibSet === String(s) && img.dataset.ibIndex === String(i)) return;
      img.dataset.ibSet = String(s); img.dataset.ibIndex = String(i);
      img.tabIndex = 0;
      img.setAttribute("role", "button");
      img.setAttribute("aria-haspopup", "dialog");
      img.setAttribute("aria-label", (img.alt || ("Set " + "AB"[s] + ", image " + (i + 1))) + ": view at full size");
    });
  }
}

// ---- the enlarged view ----------------------------------------------------------------------

function makeViewer(app) {
  const dlg = document.createElement("dialog");
  dlg.className = "ib-viewer";
  dlg.setAttribute("aria-labelledby", "ib-viewer-title");
  dlg.innerHTML =
    '<div class="ib-bar"><h2 id="ib-viewer-title" class="ib-title"></h2><span class="ib-size"></span>' +
    '<span class="ib-buttons"><button type="button" data-act="prev">← Previous</button>' +
    '<button type="button" data-act="next">Next →</button>' +
    '<button type="button" data-act="mode"></button>' +
    '<button type="button" data-act="close">Close (Esc)</button></span></div>' +
    '<div class="ib-stage" tabindex="0" role="group" aria-label="Enlarged images (scroll with the arrow keys up and down)"></div>' +
    '<p class="ib-help">← → previous / next image (set A, then set B) · G whole set or single image · Esc close</p>';
  document.body.appendChild(dlg);
  const stage = dlg.querySelector(".ib-stage"), title = dlg.querySelector(".ib-title");
  const size = dlg.querySelector(".ib-size"), modeBtn = dlg.querySelector("[data-act=mode]");
  const v = {ctx: null, set: 0, index: 0, whole: false, opener: null, ev: null};

  function begin() {
    const ctx = v.ctx;
    const ev = {set: "AB"[v.set], image: v.whole ? null : v.index + 1,
                at: Math.round(now() - ctx.st.first) / 1000, seconds: null, t0: now()};
    if (ctx.st.events.length < MAX_EVENTS) { ctx.st.events.push(ev); v.ev = ev; } else { v.ev = null; }
    save(ctx); report(ctx, false);
  }
  function end() {
    if (v.ev && v.ctx) { v.ev.seconds = Math.round(now() - v.ev.t0) / 1000; save(v.ctx); report(v.ctx, false); }
    v.ev = null;
  }
  function scaleNote(img) {
    const w = img.naturalWidth, h = img.naturalHeight;
    if (!w) return;
    const pct = Math.round(100 * img.getBoundingClientRect().width / w);
    size.textContent = w + " × " + h + " px, shown at " + Math.min(100, pct) + "%";
  }
  function image(src, alt) {
    const img = document.createElement("img");
    img.className = "ib-img"; img.alt = alt; img.src = src;
    return img;
  }
  function draw() {
    const imgs = thumbs(v.ctx, v.set);
    const label = "Set " + "AB"[v.set];
    stage.replaceChildren();
    stage.classList.toggle("ib-whole", v.whole);
    if (v.whole) {
      title.textContent = label + ", all " + imgs.length + " images";
      imgs.forEach((t) => stage.appendChild(image(t.currentSrc || t.src, t.alt)));
      size.textContent = "";
      const first = stage.querySelector("img");
      if (first) first.addEventListener("load", () => scaleNote(first), {once: true});
    } else {
      const t = imgs[v.index];
      title.textContent = label + ", image " + (v.index + 1) + " of " + imgs.length;
      const img = image(t.currentSrc || t.src, t.alt);
      img.addEventListener("load", () => scaleNote(img), {once: true});
      stage.appendChild(img);
      if (img.complete) scaleNote(img);
    }
    modeBtn.textContent = v.whole ? "Single image (G)" : "Whole set (G)";
    app.say(title.textContent);
  }
  function go(step) {
    end();
    if (v.whole) { v.set = 1 - v.set; v.index = 0; }
    else {
      const n = thumbs(v.ctx, 0).length, m = thumbs(v.ctx, 1).length;
      let flat = (v.set === 0 ? v.index : n + v.index) + step;
      flat = (flat + n + m) % (n + m);
      v.set = flat < n ? 0 : 1; v.index = flat < n ? flat : flat - n;
    }
    begin(); draw();
  }
  function toggle() { end(); v.whole = !v.whole; begin(); draw(); }
  dlg.addEventListener("click", (e) => {
    const act = e.target.closest && e.target.closest("[data-act]");
    if (act) { ({prev: () => go(-1), next: () => go(1), mode: toggle, close: () => dlg.close()})[act.dataset.act](); }
    else if (e.target === dlg) dlg.close();  // the backdrop
  });
  dlg.addEventListener("close", () => {
    end();
    const back = v.opener;
    v.ctx = null; v.opener = null;
    if (back && document.contains(back) && back.focus) back.focus({preventScroll: true});
  });
  return {
    isOpen: () => dlg.open,
    finish: end,
    open(ctx, set, index, whole, opener) {
      if (!thumbs(ctx, set).length) return;
      if (dlg.open) end();
      Object.assign(v, {ctx, set, index, whole, opener: opener && opener.focus ? opener : document.activeElement});
      begin(); draw();
      if (!dlg.open) dlg.showModal();
      dlg.querySelector("[data-act=next]").focus({preventScroll: true});
    },
    key(e) {
      const k = (e.key || "").toLowerCase();
      if (e.key === "ArrowRight") { e.preventDefault(); go(1); }
      else if (e.key === "ArrowLeft") { e.preventDefault(); go(-1); }
      else if (k === "g") { e.preventDefault(); toggle(); }
      else if (k === "v") { e.preventDefault(); dlg.close(); }
      else if (k in KEYS || e.key === "Enter" && !(e.target.closest && e.target.closest("button"))) e.preventDefault();
    },
  };
}

// ---- mounting -------------------------------------------------------------------------------

function whenReady(test, run, tries) {
  if (test()) { run(); return; }
  if (tries <= 0) return;
  setTimeout(() => whenReady(test, run, tries - 1), 50);
}

function mountScreen(app, data, setState) {
  const fresh = !localStorage.getItem(PREFIX + data.key);
  const ctx = {data, setState, st: load(data.key)};
  ctx.st.submitted = false;
  save(ctx); forget(data.key);
  app.cur = ctx;
  whenReady(() => ready(ctx), () => {
    if (app.cur !== ctx) return;
    decorate(ctx);
    for (let q = 0; q < 2; q++) {  // answers given before a reload
      const idx = ctx.st.answers[q];
      if (idx !== undefined && chosen(ctx, q) < 0 && radios(ctx, q)[idx]) radios(ctx, q)[idx].click();
    }
    if (fresh) { const main = document.querySelector("[data-testid=stMain]"); if (main) main.scrollTo(0, 0); window.scrollTo(0, 0); }
    setTimeout(() => { if (app.cur === ctx) focusNext(ctx, false); }, 0);
    // Streamlit may redraw the thumbnails (e.g. after a warning): keep them openable.
    ctx.observer = new MutationObserver(() => decorate(ctx));
    ctx.observer.observe(document.querySelector("[data-testid=stMain]") || document.body, {subtree: true, childList: true});
  }, 600);
  return () => { if (ctx.observer) ctx.observer.disconnect(); if (app.cur === ctx) app.cur = null; };
}

export default function (component) {
  const {data, setStateValue} = component;
  const app = window.__imagenBenchRater || (window.__imagenBenchRater = install());
  if (data.mode === "focus") {
    whenReady(() => data.targets.some((s) => document.querySelector(s)), () => {
      const el = data.targets.map((s) => document.querySelector(s)).find(Boolean);
      if (el) el.focus({preventScroll: true});
    }, 600);
    return () => {};
  }
  return mountScreen(app, data, setStateValue);
}
"""

_component = None


def _mount() -> Any:
    global _component
    if _component is None:
        _component = st.components.v2.component("imagen_bench_rater", js=JS, isolate_styles=False)
    return _component


def rating_client(key: str, radios: tuple[str, str], submit: str, sets: tuple[str, str]) -> dict | None:
    """Mount the component for one screen (inside its form); returns the submitted ``telemetry``
    state (None until the browser sent one). ``key`` names the screen; the other arguments are
    the Streamlit keys of the two radios, the submit button and the two image containers."""
    result = _mount()(
        key=f"client-{key}",
        data={"mode": "rate", "key": key, "radios": list(radios), "submit": submit, "sets": list(sets)},
        default={"telemetry": None},
        on_telemetry_change=lambda: None,
        height=0,
    )
    return telemetry_of(result)


def telemetry_of(state: Any) -> dict | None:
    """The ``telemetry`` value of the component's state (a mapping), or None."""
    try:
        value = state.get("telemetry") if hasattr(state, "get") else getattr(state, "telemetry", None)
    except (AttributeError, KeyError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def focus_first(*selectors: str) -> None:
    """Put the keyboard focus on the first element matching one of ``selectors`` (CSS)."""
    _mount()(key="client-focus", data={"mode": "focus", "targets": list(selectors)}, height=0)
