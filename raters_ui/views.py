"""The Streamlit pages: token entry, the rating screen, the finish screen and the admin page.

The app learns its database from the environment (``IMAGEN_BENCH_STUDY_DB``, optionally
``IMAGEN_BENCH_STUDY`` to serve one study only), set by ``imagen-bench raters``; a URL with a
password never appears on a command line. The rater is identified on every run from the
``?token=`` query parameter alone, so no session can act as another rater.

What reaches the browser on a rating screen is only: the prompt (as plain text: ``st.text``
never interprets Markdown or HTML), constant labels, and images read from the study's own store
and sent as bytes, which Streamlit serves as ``/media/<content hash>.png``; the alt texts are
"Set A, image 1" and so on. System names, run ids and paths stay on the server; the images of
a study all have one size and byte length (:mod:`raters_ui.storage`).

Submitting: the form's callback records the answers of the assignment the form was drawn for.
Two cases do not go through it cleanly, and both are handled: after a server restart the new
session never drew the form, so Streamlit calls no callback, but the click and the answers
arrive and are recorded from the script (:func:`_questions`); and a double click interrupts
the first callback after its commit, so a submission this tab made is reported as "Saved."
rather than as a duplicate (:func:`_record`).
"""

from __future__ import annotations

import os
import time

import streamlit as st

from harness.errors import UserError
from raters_ui import ENV_DB, ENV_STUDY, admin, analysis, assign
from raters_ui.db import Study, StudyDB, open_db
from raters_ui.studies import load_ratings, store_of

TITLE = "Image preference study"
Q_FIDELITY = "Which set of images is of higher quality?"
Q_ALIGNMENT = "Which set of images better represents the text caption:"
LABELS = {"A": "I prefer set A", "indifferent": "I am indifferent", "B": "I prefer set B"}
COLUMNS = 4  # 8 images -> a 2 x 4 grid per set

CSS = """<style>
.st-key-caption [data-testid="stText"] { font-size: 1.45rem; font-weight: 600; }
.st-key-set-a, .st-key-set-b { border: 1px solid #d0d4dc; border-radius: 8px; padding: 0.6rem; }
.st-key-questions [data-testid="stText"] { font-size: 1.05rem; font-style: italic; }
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
        token_entry(db, study, "This link or access code is not valid. Check it, or ask the study "
                    "organiser for a new one.")
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


HANDLED = "submit-handled"  # set by the submit callback: the id of the assignment it handled
TRIED = "submitted-here"  # assignment ids this browser session has submitted


def _on_submit(db: StudyDB, rater: assign.RaterRef, assignment_id: int) -> None:
    """Form callback: runs before the next script run with the values the rater submitted for
    *this* assignment (bound when the form was drawn), so a stale tab cannot misfile answers."""
    st.session_state[HANDLED] = assignment_id
    _record(db, rater, assignment_id)


def _record(db: StudyDB, rater: assign.RaterRef, assignment_id: int) -> None:
    """Submit the answers of one assignment and leave a message for the next run."""
    fid = st.session_state.get(f"fidelity-{assignment_id}")
    aln = st.session_state.get(f"alignment-{assignment_id}")
    if fid is None or aln is None:
        st.session_state["flash"] = ("warning", "Please answer both questions before submitting.")
        return
    shown = st.session_state.get(f"shown-{assignment_id}")
    seconds = round(time.time() - shown, 2) if shown else None
    # Noted *before* the write: a second click (a double click) interrupts this callback at its
    # next Streamlit call, possibly right after the commit, and then finds the item recorded.
    # That is this tab's own submission, so it is reported as saved, not as a duplicate.
    tried = st.session_state.setdefault(TRIED, set())
    ours = assignment_id in tried
    tried.add(assignment_id)
    try:
        saved = assign.submit(db, rater, assignment_id, fid, aln, seconds)
    except UserError as err:
        st.session_state["flash"] = ("error", str(err))
        return
    if saved or ours:
        st.session_state["flash"] = ("success", "Saved.")
    else:  # another tab or device of this rater recorded it first
        st.session_state["flash"] = ("info", "That item was already recorded, so nothing was added.")


def _flash() -> None:
    kind, msg = st.session_state.pop("flash", (None, None))
    if kind:
        getattr(st, kind)(msg)


def rating_page(db: StudyDB, rater: assign.RaterRef) -> None:
    handled = st.session_state.pop(HANDLED, None)
    screen = assign.current_screen(db, rater)
    _flash()
    if screen is None:
        done, _ = assign.progress(db, rater)
        st.title(TITLE)
        if done:
            st.success(f"All done. Thank you! You rated {done} item{'s' if done != 1 else ''}; "
                       "there is nothing left for you in this study.")
        else:
            st.info("Every item of this study already has the ratings it needs. Thank you all the same!")
        return
    st.session_state.setdefault(f"shown-{screen.assignment_id}", time.time())
    st.progress(min(1.0, screen.done / max(1, screen.total)),
                text=f"{screen.done} of {screen.total} items rated")
    with st.container(key="caption"):
        st.caption("Caption")
        st.text(screen.prompt)
    with db.read() as s:
        store = store_of(db, s.get(Study, rater.study_id))
    left, right = st.columns(2, gap="large")
    for col, name, files in ((left, "A", screen.set_a), (right, "B", screen.set_b)):
        with col, st.container(key=f"set-{name.lower()}"):
            st.subheader(f"Set {name}")
            _grid(store, name, files)
    _questions(db, rater, screen, handled)


def _grid(store, name: str, files: list[str]) -> None:
    for start in range(0, len(files), COLUMNS):
        cols = st.columns(COLUMNS, gap="small")
        for k, f in enumerate(files[start:start + COLUMNS]):
            with cols[k]:
                # PNG, not the default "auto" (JPEG for opaque images): compression artifacts would bias
                # the quality question.
                st.image(store.read(f), alt=f"Set {name}, image {start + k + 1}", width="stretch",
                         output_format="PNG")


def _questions(db: StudyDB, rater: assign.RaterRef, screen: assign.Screen, handled: int | None) -> None:
    aid = screen.assignment_id
    with st.form(f"rate-{aid}"), st.container(key="questions"):
        st.markdown(f"**{Q_FIDELITY}**")
        st.radio(Q_FIDELITY, list(LABELS), format_func=LABELS.get, index=None, horizontal=True,
                 key=f"fidelity-{aid}", label_visibility="collapsed")
        st.markdown(f"**{Q_ALIGNMENT}**")
        st.text(f"{screen.prompt}")
        st.radio("Which set better represents the caption?", list(LABELS), format_func=LABELS.get,
                 index=None, horizontal=True, key=f"alignment-{aid}", label_visibility="collapsed")
        clicked = st.form_submit_button("Submit and continue", type="primary", on_click=_on_submit,
                                        args=(db, rater, aid))
    if clicked and handled != aid:
        # The click reached a server session that never drew this form (the server restarted
        # after the page was drawn): Streamlit then calls no callback, but the click and the
        # answers do arrive with the form, which is this assignment's. Record them here.
        _record(db, rater, aid)
        st.rerun()


def admin_page(db: StudyDB, token: str, study: str | None) -> None:
    name = assign.find_admin_study(db, token, study)
    if name is None:
        st.error("This admin link is not valid.")
        return
    info = admin.study_overview(db, name)
    st.title(f"Study administration: {name}")
    st.write(f"Systems: {', '.join(info['names'].values())} · {info['items']} items, {info['controls']} controls · "
             f"{info['ratings_per_item']} ratings per item · {info['raters']} raters")
    ratings = load_ratings(db, name)
    st.subheader("Progress per category")
    st.dataframe(admin.progress_by_category(db, name), hide_index=True)
    st.subheader("Progress per rater")
    st.dataframe(admin.progress_by_rater(db, name, ratings), hide_index=True)
    st.subheader("Rater agreement (Krippendorff's α)")
    st.dataframe(analysis.agreement(ratings), hide_index=True)
    st.download_button("Download ratings (CSV)", ratings.to_csv(index=False).encode("utf-8"),
                       file_name="ratings.csv", mime="text/csv")
