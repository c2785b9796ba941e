"""The Streamlit pages: token entry, instructions, practice, the rating screen, the finish screen.

The app learns its database from the environment (``IMAGEN_BENCH_STUDY_DB``, optionally
``IMAGEN_BENCH_STUDY`` to serve one study only), set by ``imagen-bench raters``; a URL with a
password never appears on a command line. The rater is identified on every run from the
``?token=`` query parameter alone, so no session can act as another rater.

A rater first sees the study's instructions (and consent line, if any), then its practice items
(:mod:`raters_ui.onboarding`), then the items. What reaches the browser on a rating screen is
only: the prompt (as plain text: ``st.text`` never interprets Markdown or HTML), constant labels,
and images read from the study's own store and sent as bytes, which Streamlit serves as
``/media/<content hash>.png``; the alt texts are "Set A, image 1" and so on. System names, run
ids and paths stay on the server; the images of a study all have one size and byte length
(:mod:`raters_ui.storage`). The enlarged view, keyboard answers and the browser's timing report
come from one client component (:mod:`raters_ui.client`) that treats both sets alike.

Submitting: the form's callback records the answers of the screen the form was drawn for.
Two cases do not go through it cleanly, and both are handled: after a server restart the new
session never drew the form, so Streamlit calls no callback, but the click and the answers
arrive and are recorded from the script (:func:`_questions`); and a double click interrupts
the first callback after its commit, so a submission this tab made is reported as "Saved."
rather than as a duplicate (:func:`_record`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import streamlit as st

from harness.errors import UserError
from raters_ui import ENV_DB, ENV_STUDY, assign, client, onboarding, theme
from raters_ui.admin_view import admin_page
from raters_ui.db import Study, StudyDB, open_db
from raters_ui.studies import store_of
from raters_ui.telemetry import parse_client

if TYPE_CHECKING:
    from raters_ui.storage import ImageStore

TITLE = "Image preference study"
Q_FIDELITY = "Which set of images is of higher quality?"
Q_ALIGNMENT = "Which set of images better represents the text caption:"
ALIGNMENT_LABEL = "Which set of images better represents the text caption?"
LABELS = {"A": "I prefer set A", "indifferent": "I am indifferent", "B": "I prefer set B"}
COLUMNS = 4  # 8 images -> a 2 x 4 grid per set, also on a narrow screen (the sets stack)
SETS = '[class*="st-key-set-a-"], [class*="st-key-set-b-"]'

CSS = f"""<style>
.st-key-caption [data-testid="stText"] {{ font-size: 1.45rem; font-weight: 600; }}
[data-testid="stCaptionContainer"] {{ opacity: 1 !important; }}
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p {{ color: {theme.MUTED} !important; }}
:is({SETS}) {{ border: 2px solid {theme.BORDER}; border-radius: 8px; padding: 0.6rem; }}
/* the 4-column grid of a set stays a grid on narrow screens; the two sets stack instead */
:is({SETS}) [data-testid="stHorizontalBlock"] {{ flex-wrap: nowrap !important; gap: 0.4rem !important; }}
:is({SETS}) [data-testid="stColumn"] {{ min-width: 0 !important; flex: 1 1 0 !important; width: auto !important; }}
:is({SETS}) [data-testid="stElementToolbar"] {{ display: none !important; }}
:is({SETS}) img {{ cursor: zoom-in; }}
:is({SETS}) img:focus-visible, :is({SETS}) img:focus {{ outline: 3px solid {theme.PRIMARY}; outline-offset: 2px; }}
[class*="st-key-questions-"] [data-testid="stText"] {{ font-size: 1.05rem; font-style: italic; }}
[data-ib-current] {{ background: {theme.CURRENT}; outline: 2px solid {theme.PRIMARY}; border-radius: 6px;
  padding: 0.2rem 0.5rem; }}
/* radio and checkbox outlines at >= 3:1 (Streamlit draws them at 20% text colour, 1.5:1), focus shown */
[data-testid="stRadioOption"] > div > div:first-child, [data-testid="stCheckbox"] label > span + div {{
  border: 2px solid {theme.BORDER} !important; }}
[data-testid="stRadioOption"]:has(input:checked) > div > div:first-child,
[data-testid="stCheckbox"] label:has(input:checked) > span + div {{ border-color: {theme.PRIMARY} !important; }}
[data-testid="stRadioOption"]:has(input:focus), [data-testid="stCheckbox"] label:has(input:focus) {{
  outline: 2px solid {theme.PRIMARY}; outline-offset: 2px; border-radius: 4px; }}
.ib-live {{ position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }}
dialog.ib-viewer {{ width: 100vw; height: 100vh; max-width: 100vw; max-height: 100vh; margin: 0; padding: 0;
  border: 0; background: {theme.VIEWER_BG}; color: {theme.VIEWER_TEXT}; }}
dialog.ib-viewer::backdrop {{ background: {theme.VIEWER_BG}; }}
.ib-viewer .ib-bar {{ display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem 1rem; padding: 0.5rem 1rem; }}
.ib-viewer .ib-title {{ font-size: 1.2rem; margin: 0; color: {theme.VIEWER_TEXT}; padding: 0; }}
.ib-viewer .ib-size, .ib-viewer .ib-help {{ color: {theme.VIEWER_TEXT}; font-size: 0.95rem; margin: 0; }}
.ib-viewer .ib-help {{ padding: 0 1rem 0.5rem; }}
.ib-viewer button {{ background: {theme.VIEWER_TEXT}; color: {theme.VIEWER_BG}; border: 0; border-radius: 6px;
  padding: 0.35rem 0.8rem; font-size: 1rem; cursor: pointer; }}
.ib-viewer button:focus-visible {{ outline: 3px solid #93c5fd; outline-offset: 2px; }}
.ib-viewer .ib-buttons {{ display: flex; flex-wrap: wrap; gap: 0.5rem; }}
.ib-viewer .ib-stage {{ display: flex; justify-content: center; align-items: center; overflow: auto;
  height: calc(100vh - 7.5rem); padding: 0 0.5rem; }}
.ib-viewer .ib-stage.ib-whole {{ flex-wrap: wrap; gap: 0.5rem; align-content: flex-start; }}
.ib-viewer .ib-img {{ max-width: 100%; max-height: 100%; width: auto; height: auto; }}
.ib-viewer .ib-whole .ib-img {{ max-height: none; }}
</style>"""


@st.cache_resource(show_spinner=False)
def _open(url: str) -> StudyDB:
    return open_db(url)


def main() -> None:
    st.set_page_config(page_title=TITLE, layout="wide", initial_sidebar_state="collapsed")
    st.html(CSS)
    url = os.environ.get(ENV_DB, "")
    study = os.environ.get(ENV_STUDY) or None
    if not url:
        st.error("The rating app was started without a study database (use `imagen-bench raters`).")
        return
    try:
        db = _open(url)
    except UserError:
        st.error("The study database is not available right now. Please try again later.")
        return
    params = st.query_params
    if "admin" in params:
        admin_page(db, params.get("admin", ""), study)
        return
    token = params.get("token", "")
    if not token:
        token_entry(db, study)
        return
    rater = assign.find_rater(db, token, study)
    if rater is None:
        token_entry(
            db, study, "This link or access code is not valid. Check it, or ask the study organiser for a new one."
        )
        return
    rating_page(db, rater)


def token_entry(db: StudyDB, study: str | None, problem: str | None = None) -> None:
    st.title(TITLE)
    if problem:
        st.error(problem)
    st.write("Enter the access code from your invitation link to start or resume rating.")
    with st.form("token-form"):
        code = st.text_input("Access code", type="password", key="token-input")
        go = st.form_submit_button("Start")
    if go:
        code = (code or "").strip()
        if assign.find_rater(db, code, study) is None:
            st.error("This access code is not valid.")
        else:
            st.query_params["token"] = code  # a refresh or bookmark resumes from the URL
            st.rerun()


HANDLED = "submit-handled"  # set by a submit callback: the key of the screen it handled
TRIED = "submitted-here"  # assignment ids this browser session has submitted


def _flash() -> None:
    kind, msg = st.session_state.pop("flash", (None, None))
    if kind:
        getattr(st, kind)(msg)


def _answers(key: str) -> tuple[str | None, str | None]:
    return st.session_state.get(f"fidelity-{key}"), st.session_state.get(f"alignment-{key}")


@dataclass(frozen=True)
class _Shown:
    """One screen as drawn: its key (the assignment id, or ``p<k>`` for practice) and images."""

    key: str
    prompt: str
    set_a: list[str]
    set_b: list[str]


def _record(db: StudyDB, rater: assign.RaterRef, assignment_id: int, n_images: int) -> None:
    """Submit the answers of one assignment (and the browser's report) and leave a message."""
    fid, aln = _answers(str(assignment_id))
    if fid is None or aln is None:
        st.session_state["flash"] = ("warning", "Please answer both questions before submitting.")
        return
    report = parse_client(
        client.telemetry_of(st.session_state.get(f"client-{assignment_id}")), str(assignment_id), n_images
    )
    # Noted *before* the write: a second click (a double click) interrupts this callback at its
    # next Streamlit call, possibly right after the commit, and then finds the item recorded.
    # That is this tab's own submission, so it is reported as saved, not as a duplicate.
    tried = st.session_state.setdefault(TRIED, set())
    ours = assignment_id in tried
    tried.add(assignment_id)
    try:
        saved = assign.submit(db, rater, assignment_id, fid, aln, client=report)
    except UserError as err:
        st.session_state["flash"] = ("error", str(err))
        return
    if saved or ours:
        st.session_state["flash"] = ("success", "Saved.")
    else:  # another tab or device of this rater recorded it first
        st.session_state["flash"] = ("info", "That item was already recorded, so nothing was added.")


def _record_practice(db: StudyDB, rater: assign.RaterRef, screen: onboarding.PracticeScreen) -> None:
    fid, aln = _answers(f"p{screen.index}")
    if fid is None or aln is None:
        st.session_state["flash"] = ("warning", "Please answer both questions before submitting.")
        return
    onboarding.finish_practice(db, rater, screen.index)
    st.session_state["flash"] = ("info", onboarding.feedback(screen, {"fidelity": fid, "alignment": aln}))


def _on_submit(key: str, record: Callable[[], None]) -> None:
    """Form callback: runs before the next script run with the values the rater submitted for
    *this* screen (bound when the form was drawn), so a stale tab cannot misfile answers."""
    st.session_state[HANDLED] = key
    record()


def rating_page(db: StudyDB, rater: assign.RaterRef) -> None:
    handled = st.session_state.pop(HANDLED, None)
    status = onboarding.rater_status(db, rater)
    if not status.started:
        instructions_page(db, rater, status)
        return
    if status.practice_done < status.practice_total:
        practice = onboarding.practice_screen(db, rater, status.practice_done)
        if practice is not None:
            _flash()
            st.info(
                f"Practice item {practice.index + 1} of {practice.total}: it is not counted. It shows "
                "how rating works; afterwards you are told which answer was expected.",
                icon=None,
            )
            shown = _Shown(f"p{practice.index}", practice.prompt, practice.set_a, practice.set_b)
            _screen(db, rater, shown, handled, lambda: _record_practice(db, rater, practice))
            _instructions_again(status)
            return
    screen = assign.current_screen(db, rater)
    _flash()
    if screen is None:
        done, _ = assign.progress(db, rater)
        st.title(TITLE)
        if done:
            st.success(
                f"All done. Thank you! You rated {done} item{'s' if done != 1 else ''}; "
                "there is nothing left for you in this study."
            )
        else:
            st.info("Every item of this study already has the ratings it needs. Thank you all the same!")
        return
    st.progress(min(1.0, screen.done / max(1, screen.total)), text=f"{screen.done} of {screen.total} items rated")
    aid = screen.assignment_id
    shown = _Shown(str(aid), screen.prompt, screen.set_a, screen.set_b)
    _screen(db, rater, shown, handled, lambda: _record(db, rater, aid, max(len(screen.set_a), len(screen.set_b))))
    _instructions_again(status)


def instructions_page(db: StudyDB, rater: assign.RaterRef, status: onboarding.RaterStatus) -> None:
    st.title(TITLE)
    _flash()
    with st.container(key="instructions"):
        st.markdown(status.instructions)  # the owner's Markdown (no raw HTML: Streamlit escapes it)
    if status.practice_total:
        n = status.practice_total
        st.write(f"First come {n} practice item{'s' if n > 1 else ''}; {'they are' if n > 1 else 'it is'} not counted.")
    with st.form("start-form"):
        agreed = st.checkbox(status.consent, key="consent") if status.consent else True
        go = st.form_submit_button("Start", type="primary", key="start")
    client.focus_first(".st-key-consent input", ".st-key-start button")
    if go:
        try:
            onboarding.start(db, rater, bool(agreed))
        except UserError as err:
            st.warning(str(err))
            return
        st.rerun()


def _instructions_again(status: onboarding.RaterStatus) -> None:
    with st.expander("Instructions"):
        st.markdown(status.instructions)


def _screen(
    db: StudyDB, rater: assign.RaterRef, shown: _Shown, handled: str | None, record: Callable[[], None]
) -> None:
    with st.container(key="caption"):
        st.caption("Caption")
        st.text(shown.prompt)
    with db.read() as s:
        store = store_of(db, s.get(Study, rater.study_id))
    left, right = st.columns(2, gap="large")
    for col, name, files in ((left, "A", shown.set_a), (right, "B", shown.set_b)):
        with col, st.container(key=f"set-{name.lower()}-{shown.key}"):
            st.subheader(f"Set {name}", anchor=False)
            _grid(store, name, files)
    st.caption(client.VIEW_HELP)
    _questions(shown, handled, record)


def _grid(store: ImageStore, name: str, files: list[str]) -> None:
    for start in range(0, len(files), COLUMNS):
        cols = st.columns(COLUMNS, gap="small")
        for k, f in enumerate(files[start : start + COLUMNS]):
            with cols[k]:
                # PNG, not the default "auto" (JPEG for opaque images): compression artifacts would bias
                # the quality question.
                st.image(store.read(f), alt=f"Set {name}, image {start + k + 1}", width="stretch", output_format="PNG")


def _choice(label: str, key: str) -> None:
    """One question's answer: A, B or the same, none picked yet (the heading above says the question)."""
    st.radio(
        label, list(LABELS), format_func=LABELS.get, index=None, horizontal=True, key=key, label_visibility="collapsed"
    )


def _questions(shown: _Shown, handled: str | None, record: Callable[[], None]) -> None:
    key = shown.key
    with st.form(f"rate-{key}"):
        with st.container(key=f"questions-{key}"):
            st.markdown(f"**{Q_FIDELITY}**")
            _choice(Q_FIDELITY, f"fidelity-{key}")
            st.markdown(f"**{Q_ALIGNMENT}**")
            st.text(f"{shown.prompt}")
            _choice(ALIGNMENT_LABEL, f"alignment-{key}")
        client.rating_client(
            key, (f"fidelity-{key}", f"alignment-{key}"), f"submit-{key}", (f"set-a-{key}", f"set-b-{key}")
        )
        clicked = st.form_submit_button(
            "Submit and continue", type="primary", on_click=_on_submit, args=(key, record), key=f"submit-{key}"
        )
        st.caption(client.KEYS_HELP)
    if clicked and handled != key:
        # The click reached a server session that never drew this form (the server restarted
        # after the page was drawn): Streamlit then calls no callback, but the click and the
        # answers do arrive with the form, which is this screen's. Record them here.
        record()
        st.rerun()
