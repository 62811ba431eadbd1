"""``check_dataset``: one entry point that checks a dataset in any supported format.

Darknet sources (``.data`` files, image lists, folders) and Ultralytics YAMLs are checked from
their raw label text (:mod:`detforge.check.darknet`); TFRecords record by record
(:mod:`detforge.check.tfrecord`); COCO JSON and VOC folders through their readers
(:mod:`detforge.check.loaded`).
"""

from __future__ import annotations

import os

from detforge.check.findings import CheckReport, finding, severity_counts
from detforge.check.limits import DEFAULT_LIMITS, CheckLimits
from detforge.errors import DetforgeError
from detforge.formats.darknet import PathMap


def check_dataset(
    source: str | os.PathLike[str],
    *,
    deep: bool = False,
    path_map: PathMap = (),
    label_map: str | os.PathLike[str] | None = None,
    group_by: str | None = None,
    cache: bool = True,
    limits: CheckLimits = DEFAULT_LIMITS,
) -> CheckReport:
    """Check ``source`` and return every finding (see ``docs/checks.md`` for the codes).

    ``deep`` decodes every image; ``label_map`` (a ``.pbtxt``) is compared with the class
    names; ``group_by`` (``"parent"`` or a regex, as ``detforge split --group-by``) enables the
    sequence-leak check; ``cache=False`` ignores and does not update the index cache;
    ``limits`` sets the thresholds of the heuristic warnings (:class:`CheckLimits`).
    Raises :class:`DetforgeError` only when ``source`` does not exist or has no known format;
    a file that cannot be parsed is a ``read-error`` finding.
    """
    from detforge.formats.detect import detect_format

    fmt = detect_format(source)
    try:
        if fmt in ("darknet", "ultralytics"):
            from detforge.check.darknet import scan_darknet

            scan = scan_darknet(
                source,
                deep=deep,
                path_map=path_map,
                label_map=label_map,
                group_by=group_by,
                cache=cache,
                limits=limits,
            )
            scan.summary["format"] = fmt
            report = CheckReport(scan.findings, scan.summary)
        elif fmt == "tfrecord":
            from detforge.check.tfrecord import check_tfrecords

            report = check_tfrecords(source, label_map=label_map, deep=deep, limits=limits)
        else:
            from detforge.check.loaded import scan_loaded

            loaded = scan_loaded(
                source,
                fmt=fmt,
                deep=deep,
                label_map=label_map,
                group_by=group_by,
                cache=cache,
                limits=limits,
            )
            report = CheckReport(loaded.findings, loaded.summary)
    except DetforgeError as exc:
        if not os.path.exists(source):
            raise
        f = finding(
            "read-error",
            f"{exc.message}; nothing else could be checked until this is fixed",
            path=exc.path or os.fspath(source),
            line=exc.line,
        )
        counts = severity_counts([f])
        report = CheckReport(
            [f],
            {
                "source": os.fspath(source),
                "format": fmt,
                "errors": counts["error"],
                "warnings": counts["warning"],
                "infos": counts["info"],
            },
        )
    report.summary.setdefault("codes", dict(sorted(report.codes().items())))
    return report
