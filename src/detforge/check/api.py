"""``check_dataset``: one entry point that checks a dataset in any supported format.

Darknet sources (``.data`` files, image lists, folders) and Ultralytics YAMLs are checked from
their raw label text (:mod:`detforge.check.darknet`); TFRecords record by record
(:mod:`detforge.check.tfrecord`); COCO JSON and VOC folders through their readers
(:mod:`detforge.check.loaded`).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from detforge.check.findings import CheckReport, finding, severity_counts
from detforge.check.limits import DEFAULT_LIMITS, CheckLimits
from detforge.errors import DetforgeError
from detforge.formats.darknet import PathMap

if TYPE_CHECKING:
    from detforge.predict.writers import InputGuard


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


def input_guard(
    source: str | os.PathLike[str],
    *,
    path_map: PathMap = (),
    label_map: str | os.PathLike[str] | None = None,
) -> InputGuard:
    """An :class:`~detforge.predict.writers.InputGuard` of everything :func:`check_dataset`
    reads of ``source``: the source itself (every file in it when it is a folder), a
    ``.data`` file's lists, names and difficult list, the label map, the images and their
    label files. For a file that should never be written (``check --json FILE``)."""
    from detforge.formats.detect import detect_format, read_any
    from detforge.predict.writers import InputGuard

    src = os.fspath(source)
    files: list[str] = [src] if not os.path.isdir(src) else []
    folders: list[str] = [src] if os.path.isdir(src) else []
    images: list[str] = []
    if label_map is not None:
        files.append(os.fspath(label_map))
    fmt = detect_format(src)
    if fmt in ("darknet", "ultralytics"):
        from detforge.check.sources import gather_sources

        found = gather_sources(src, path_map=path_map)
        images = [e[0] for e in found.entries]
        named = [*found.lists.values(), found.names_path, found.label_map]
        if found.data_file is not None:
            named.append(found.data_file.difficult)
        for p in named:
            if p is not None:
                (folders if os.path.isdir(p) else files).append(p)
    elif fmt != "tfrecord":  # TFRecord images are inside the records
        with contextlib.suppress(DetforgeError):  # unreadable: reported by the check
            images = [str(p) for p in read_any(src, format=fmt).images.path]
    return InputGuard(images, files=files, folders=folders)
