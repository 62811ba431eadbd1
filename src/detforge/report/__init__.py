"""A static report site: dataset summary, evaluation, error browser, likely label mistakes and
the training run, as ``index.html`` plus assets that work from ``file://`` (``detforge report``).

::

    from detforge.report import Model, build_report
    build_report(gt, "report/", models=[Model("yolo-n", pred)], source="obj.data")

Modules: :mod:`~detforge.report.classify` (per-image error kinds and label suspects, pure
numpy), :mod:`~detforge.report.collect` (dataset summary, findings, evaluation numbers),
:mod:`~detforge.report.gallery` (per-image records), :mod:`~detforge.report.thumbs`,
:mod:`~detforge.report.run` (training run), :mod:`~detforge.report.page` (writing the site).
"""

from detforge.report.build import Model, build_report, report_data

__all__ = ["Model", "build_report", "report_data"]
