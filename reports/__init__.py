"""Reports from result files: ``imagen-bench report`` (the ablation comparison report).

Modules: ``collect`` (runs, samples, verdict, config differences, guidance families), ``study`` (a human
study and the link between its ratings and the runs' automatic scores), ``build`` and ``study_sections``
(the report as a :class:`reports.document.Document`), ``plots`` (matplotlib, Agg), ``grids`` (sample
grids), ``html`` / ``markdown`` (renderers), ``write`` (the folder, written atomically), ``command`` (the
Hydra command and :func:`reports.command.make_report`). Never imports model code.
"""
