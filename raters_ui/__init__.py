"""The human preference study (DrawBench protocol): rater app, storage, study management, statistics.

Modules: ``db`` (SQLAlchemy models, opening with Alembic migrations, retried write transactions),
``storage`` (the study's own image store: one size, one byte length, no metadata), ``controls``
(gold trials), ``inputs`` (checks of names, options and pairs files), ``studies`` (create,
raters, export), ``tokens`` (the private tokens file), ``assign`` (what a rater sees next;
submitting), ``onboarding`` (instructions, consent, practice items), ``views``/``app``
(Streamlit rater pages), ``client`` (the page's browser side: enlarged view, keyboard, timing
report), ``telemetry`` (checks of that report), ``theme`` (AA-contrast colours), ``admin`` /
``admin_view`` (the admin page), ``analysis`` (results tables), ``quality`` (rater flags: too
fast, same side, controls), ``stats`` (pure statistics), ``commands`` (``imagen-bench study`` and
``raters``), ``synthetic`` (a drawn study for tests and demos). Never imports ``imagen`` or torch.
"""

# The app reads its database and optional study from these (set by `imagen-bench raters`).
ENV_DB = "IMAGEN_BENCH_STUDY_DB"
ENV_STUDY = "IMAGEN_BENCH_STUDY"
