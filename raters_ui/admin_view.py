"""The admin page (``?admin=<token>``): the study at a glance, refreshed while it is open.

Preference bars per category with 95% intervals for both questions, progress per rater with
their quality checks (flagged raters and why), progress per category, agreement, and the
exports. Everything below the title is a fragment that reruns every :data:`REFRESH`, so the
page follows a study as ratings come in; the bootstrap is cached per state of the ratings.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from raters_ui import admin, analysis, assign
from raters_ui.db import StudyDB
from raters_ui.ratings import load_image_views, load_ratings

REFRESH = timedelta(seconds=15)
N_BOOT = 1000  # the page's bootstrap; `study analyze` uses n_boot (2000 by default)


@st.cache_data(show_spinner=False, max_entries=16, ttl=3600)
def _bars(ratings: pd.DataFrame, overview: dict) -> pd.DataFrame:
    return admin.preference_bars(ratings, overview, n_boot=N_BOOT)


def admin_page(db: StudyDB, token: str, study: str | None) -> None:
    name = assign.find_admin_study(db, token, study)
    if name is None:
        st.error("This admin link is not valid.")
        return
    info = admin.study_overview(db, name)
    st.title(f"Study administration: {name}")
    st.write(
        f"Systems: {', '.join(info['names'].values())} · {info['items']} items, {info['controls']} controls · "
        f"{info['ratings_per_item']} ratings per item · {info['raters']} raters · "
        f"{info['practice_items']} practice item{'' if info['practice_items'] == 1 else 's'}"
    )
    _live(db, name, info)


@st.fragment(run_every=REFRESH)
def _live(db: StudyDB, name: str, info: dict) -> None:
    ratings = load_ratings(db, name)
    st.caption(
        f"Updated {datetime.now().strftime('%H:%M:%S')}; refreshes every {REFRESH.seconds} s. "
        f"{len(ratings)} answers so far."
    )
    _exports(db, name, ratings)
    progress, floor = admin.rater_table(admin.progress_by_rater(db, name, ratings), ratings, admin.quality_rules(info))
    st.subheader("Preferences per category (95% intervals)")
    _preferences(ratings, info)
    st.subheader("Raters")
    flagged = progress[progress["flagged"]]
    if len(flagged):
        # A list, not a grid: read by screen readers and findable on the page. Labels and reasons
        # are made by this package (rater-NNN, numbers), never free text.
        st.warning(f"{len(flagged)} rater(s) flagged; `study analyze` reports the results with and without them.")
        with st.container(key="flagged"):
            st.markdown("\n".join(f"- **{r.rater}**: {r.reason}" for r in flagged.itertuples()))
    else:
        st.success("No rater flagged.")
    st.caption(
        f"Speed floor: {floor.rule}. Times are the server's; browser times and image opens are shown for reference."
    )
    st.dataframe(progress, hide_index=True, key="raters", width="stretch")
    st.subheader("Progress per category")
    st.dataframe(admin.progress_by_category(db, name), hide_index=True, key="categories")
    st.subheader("Rater agreement (Krippendorff's α)")
    st.dataframe(analysis.agreement(ratings), hide_index=True, key="agreement")


def _preferences(ratings: pd.DataFrame, info: dict) -> None:
    main = ratings[ratings["kind"] == "main"] if len(ratings) else ratings
    if main.empty:
        st.info("No ratings of main items yet.")
        return
    bars = _bars(ratings, info)
    if bars.empty:
        st.info("No ratings of main items by raters who pass the controls yet.")
        return
    for pair, part in bars.groupby("pair", sort=False):
        st.altair_chart(admin.preference_chart(part.reset_index(drop=True)), key=f"chart-{pair}")
        with st.expander(f"{pair}: the numbers"):
            st.dataframe(
                part.drop(columns=["pair", "slot"]),
                hide_index=True,
                column_config={
                    c: st.column_config.NumberColumn(format="percent") for c in ("rate", "ci_low", "ci_high")
                },
            )


def _exports(db: StudyDB, name: str, ratings: pd.DataFrame) -> None:
    left, right = st.columns(2)
    with left:
        st.download_button(
            "Download ratings (CSV)",
            ratings.to_csv(index=False).encode("utf-8"),
            file_name=f"{name}-ratings.csv",
            mime="text/csv",
            key="export-ratings",
        )
    with right:
        st.download_button(
            "Download image-view events (CSV)",
            load_image_views(db, name).to_csv(index=False).encode("utf-8"),
            file_name=f"{name}-image-views.csv",
            mime="text/csv",
            key="export-views",
        )
