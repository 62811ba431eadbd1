"""Check a Darknet dataset (``.data`` file, image list or folder) from its raw files.

Unlike :func:`detforge.formats.darknet.read_darknet`, which stops at the first bad line, the
scan reads every list, names file, label file and image header and turns each problem into a
:class:`~detforge.check.findings.Finding`. The result, :class:`DarknetScan`, keeps what
``--fix`` needs to write a repaired copy (which lines and images to drop).

Per-file work is cached in the dataset index cache (:mod:`detforge.data.cache`): image header
results and label file contents are reused while a file's size, mtime and ctime are unchanged,
so an unchanged dataset is re-checked from ``stat`` calls alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import detforge.check.resultcache as resultcache
from detforge.check.dataset import (
    check_class_counts,
    check_classes_key,
    check_group_leaks,
    check_identical,
    check_label_map_names,
    check_names,
    check_split_overlap,
)
from detforge.check.files import (
    ImageTable,
    LabelStats,
    cached_images,
    full_digests,
    label_texts,
    locate_labels,
    store_images,
)
from detforge.check.findings import Finding, finding, severity_counts, sort_findings
from detforge.check.images import ImageInfo, image_findings, oriented_size
from detforge.check.labels import BoxVerdict, check_boxes
from detforge.check.limits import DEFAULT_LIMITS, CheckLimits
from detforge.check.rows import LabelRows, parse_label_texts
from detforge.check.sources import Entry, Sources, gather_sources
from detforge.data.imageformats import IMAGE_EXTENSIONS_ANY_CASE
from detforge.data.split import group_keys
from detforge.errors import DetforgeError
from detforge.formats.darknet import (
    DataFile,
    PathMap,
)
from detforge.utils.filestat import stat_many


@dataclass(eq=False)
class DarknetScan:
    """Everything the checker learned about a Darknet dataset.

    Images are unique paths (first-listed order); ``entry_*`` are per list line. Label file
    ``i`` belongs to image ``i`` (``label_paths[i] == ""`` when it has none), so
    ``rows.file`` indexes images.
    """

    source: str
    data_file: DataFile | None = None
    names: list[str] | None = None
    names_path: str | None = None
    lists: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)
    entry_image: list[int] = field(default_factory=list)
    entry_split: list[str] = field(default_factory=list)
    entry_origin: list[tuple[str, int | None]] = field(default_factory=list)
    infos: list[ImageInfo] = field(default_factory=list)
    label_paths: list[str] = field(default_factory=list)
    label_texts: list[str | None] = field(default_factory=list)
    rows: LabelRows | None = None
    verdict: BoxVerdict | None = None
    findings: list[Finding] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Damaged cache files that were rebuilt during this scan."""

    @property
    def num_classes(self) -> int | None:
        if self.names is not None:
            return len(self.names)
        return None if self.data_file is None else self.data_file.classes


def _orphans(scan: DarknetScan) -> list[Finding]:
    """``label-orphan``: ``.txt`` files beside the used labels that belong to no image."""
    from detforge.utils.paths import PathResolver

    same = PathResolver().key  # a list reached through a link to its folder is still the list
    claimed = {p for p in scan.label_paths if p}
    skip = {same(p) for p in scan.lists.values()}
    if scan.names_path:
        skip.add(same(scan.names_path))
    folders = {p.rpartition(os.sep)[0] for p in claimed}
    out = []
    for folder in sorted(folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        unclaimed = [
            n
            for n in names
            if n.endswith(".txt") and n != "classes.txt" and f"{folder}{os.sep}{n}" not in claimed
        ]
        if not unclaimed:
            continue
        present = {os.path.splitext(n)[0] for n in names if not n.endswith(".txt")}
        for n in sorted(unclaimed):
            p = os.path.join(folder, n)
            stem = os.path.splitext(p)[0]
            if same(p) in skip or os.path.splitext(n)[0] in present:
                continue  # a list, or the label of an image that is not listed
            alt = [
                stem.replace(f"{os.sep}labels{os.sep}", f"{os.sep}{d}{os.sep}")
                for d in ("images", "JPEGImages")
            ]
            if any(
                os.path.exists(a + e) for a in alt if a != stem for e in IMAGE_EXTENSIONS_ANY_CASE
            ):
                continue
            out.append(
                finding(
                    "label-orphan",
                    "no image with this name exists; the labels are unused (a renamed or "
                    "deleted image?) -- restore the image or delete the label file",
                    path=p,
                )
            )
    return out


def _unique_images(scan: DarknetScan, entries: list[Entry]) -> dict[int, tuple[str, int | None]]:
    """Fill ``scan.images`` (unique, first-listed order) and the ``entry_*`` columns; report
    ``list-duplicate`` (an image on two lines of one list file, the list given as ``source``
    too; a folder's images come once each). One image is any spelling of its path, a link to
    its folder included (:mod:`detforge.utils.paths`); ``scan.images`` keeps the first
    spelling. Returns where each image was first listed."""
    from detforge.utils.paths import PathResolver

    resolver = PathResolver()
    index: dict[str, int] = {}
    spelled: list[str] = []
    seen_in_list: dict[tuple[str, int], int | None] = {}
    for img, split, lp, line in entries:
        i = index.setdefault(resolver.key(img), len(index))
        if i == len(spelled):
            spelled.append(img)
        key = (lp, i)
        if key in seen_in_list and line is not None:
            first = seen_in_list[key]
            if split in ("valid", "val", "test"):
                effect = f"it is scored twice in {split}"
            elif split == "train":
                effect = "it is trained on twice as often"
            else:
                effect = "it is read twice (trained on twice as often in a train list)"
            scan.findings.append(
                finding(
                    "list-duplicate",
                    f"{img} is already listed on line {first}; {effect} (--fix keeps one)",
                    path=lp,
                    line=line,
                )
            )
            continue
        seen_in_list[key] = line
        scan.entry_image.append(i)
        scan.entry_split.append(split)
        scan.entry_origin.append((lp, line))
    scan.images = spelled
    first_origin: dict[int, tuple[str, int | None]] = {}
    for i, o in zip(scan.entry_image, scan.entry_origin, strict=True):
        first_origin.setdefault(i, o)
    return first_origin


def _dataset_findings(
    scan: DarknetScan,
    kept: NDArray[np.bool_],
    table: ImageTable,
    label_map: str | os.PathLike[str] | None,
    group_by: str | None,
    imbalance: float,
) -> list[Finding]:
    """Class counts, label map, split overlap, identical images and sequence leaks."""
    assert scan.rows is not None
    out: list[Finding] = []
    if scan.names is not None:
        cls = scan.rows.cls[kept].astype(np.int64)
        out += check_class_counts(cls, scan.names, path=scan.names_path, imbalance=imbalance)
    if label_map is not None:
        out += _label_map_findings(label_map, scan.names)
    ent_paths = [scan.images[i] for i in scan.entry_image]
    out += check_split_overlap(ent_paths, scan.entry_split)
    img_split = [""] * len(scan.images)
    for i, s in zip(scan.entry_image, scan.entry_split, strict=True):
        img_split[i] = img_split[i] or s
    if len(set(scan.entry_split)) > 1:
        digests = full_digests(scan.images, img_split, table)
        out += check_identical(scan.images, img_split, digests)
        if group_by:
            keys, _ = group_keys(scan.images, group_by)
            out += check_group_leaks(scan.images, img_split, keys)
    return out


def _names_findings(found: Sources) -> list[Finding]:
    """Findings about the class names and the ``classes=`` / ``nc:`` that declares them."""
    if found.names is None:
        return []
    names_at = found.names_path if found.names_have_lines else None
    out = check_names(found.names, path=found.names_path, lines=names_at is not None)
    if found.declared_classes is not None and found.declared_at is not None:
        out += check_classes_key(
            found.declared_classes,
            len(found.names),
            path=found.declared_at[0],
            line=found.declared_at[1],
        )
    return out


def _label_findings(
    scan: DarknetScan, source: str, cache: bool, limits: CheckLimits
) -> tuple[LabelRows, BoxVerdict, int, LabelStats, int]:
    """Find, read, parse and check every label file of ``scan.images`` (``scan.infos`` known):
    fills ``label_paths``, ``label_texts``, ``rows``, ``verdict`` and the findings. Returns the
    rows and their verdict, the label files reused from the cache, the label stats for the
    result cache and the number of malformed lines."""
    infos = scan.infos
    exists = [inf.problem != "image-missing" for inf in infos]
    scan.label_paths = locate_labels(scan.images, exists)
    texts, label_errors, reused_lab, label_stats = label_texts(
        source, scan.label_paths, cache, notes=scan.notes
    )
    scan.label_texts = texts
    scan.findings += label_errors
    for p, info, lp in zip(scan.images, infos, scan.label_paths, strict=True):
        if not lp and not info.problem:
            scan.findings.append(
                finding(
                    "label-missing",
                    "no label file: trained as a negative image (no objects); create an "
                    "empty .txt to make that explicit, or label it",
                    path=p,
                )
            )
    label_where = [lp or img for lp, img in zip(scan.label_paths, scan.images, strict=True)]
    rows, line_findings = parse_label_texts(texts, label_where)
    sizes = [oriented_size(inf) for inf in infos]
    verdict, box_findings = check_boxes(
        rows,
        label_where,
        num_classes=scan.num_classes,
        widths=np.asarray([s[0] for s in sizes], dtype=np.int64),
        heights=np.asarray([s[1] for s in sizes], dtype=np.int64),
        near_iou=limits.near_duplicate_iou,
    )
    scan.rows, scan.verdict = rows, verdict
    scan.findings += line_findings + box_findings
    return rows, verdict, reused_lab, label_stats, len(line_findings)


def scan_darknet(
    source: str | os.PathLike[str],
    *,
    deep: bool = False,
    path_map: PathMap = (),
    label_map: str | os.PathLike[str] | None = None,
    group_by: str | None = None,
    cache: bool = True,
    reuse: bool = True,
    limits: CheckLimits = DEFAULT_LIMITS,
) -> DarknetScan:
    """Check every file of a Darknet dataset; see the module docstring.

    ``cache`` uses the per-file caches; ``reuse`` (with ``cache``) returns the previous
    findings when nothing changed (:mod:`detforge.check.resultcache`) -- such a scan has
    findings and summary only, so ``--fix`` passes ``reuse=False``. Raises
    :class:`DetforgeError` only when ``source`` does not exist or its ``.data`` file cannot be
    parsed at all; every other problem becomes a finding. ``limits``: thresholds of the
    heuristic warnings.
    """
    t0, c0 = time.perf_counter(), time.process_time()
    src = Path(source)
    scan = DarknetScan(source=str(src))
    found = gather_sources(src, path_map=path_map)
    scan.data_file, scan.lists, scan.names = found.data_file, found.lists, found.names
    scan.names_path = found.names_path
    scan.findings += found.findings
    if label_map is None:
        label_map = found.label_map
    scan.findings += _names_findings(found)
    first_origin = _unique_images(scan, found.entries)
    small = [str(src), *scan.lists.values()]
    small += [os.fspath(p) for p in (scan.names_path, label_map) if p is not None]
    opts = {"deep": deep, "path_map": list(path_map), "group_by": group_by}
    opts["limits"] = limits.as_dict()
    stats = fp = None
    if cache and reuse:
        # the key is made before any image or label file is read (the stat pass is reused by
        # cached_images): a file written during the check makes the next key differ
        stats = stat_many(scan.images, ctime=True)
        fp = resultcache.fingerprint(options=opts, files=small, images=scan.images, stamps=stats)
        hit = resultcache.load(str(src), fp, notes=scan.notes)
        if hit is not None:
            scan.findings, scan.summary = hit
            scan.summary["cached_files"] = scan.summary.get("files", 0)
            scan.summary["seconds"] = round(time.perf_counter() - t0, 3)
            scan.summary["cpu_seconds"] = round(time.process_time() - c0, 3)
            return scan
    table = cached_images(str(src), scan.images, deep, cache, stats=stats)
    infos = table.infos
    scan.infos = infos
    origins = [first_origin[i] for i in range(len(scan.images))]
    scan.findings += image_findings(scan.images, infos, origins=origins, tiny=limits.tiny_image_px)
    rows, verdict, reused_lab, label_stats, n_bad_lines = _label_findings(
        scan, str(src), cache, limits
    )
    if not src.is_dir():
        scan.findings += _orphans(scan)
    # --- dataset level
    kept = ~verdict.bad & ~verdict.duplicate
    scan.findings += _dataset_findings(
        scan, kept, table, label_map, group_by, limits.imbalance_ratio
    )
    store_images(table, scan.images, deep)
    scan.findings = sort_findings(scan.findings)
    scan.summary = _summary(scan, int(kept.sum()), len(rows) + n_bad_lines, deep)
    scan.summary["cached_files"] = table.reused + reused_lab
    scan.summary["seconds"] = round(time.perf_counter() - t0, 3)
    scan.summary["cpu_seconds"] = round(time.process_time() - c0, 3)
    if fp is not None:
        resultcache.store(str(src), fp, label_stats, scan.findings, scan.summary)
    notes = [n for n in (table.note, *scan.notes) if n]
    if notes:  # shown once, not stored with the result
        scan.summary["notes"] = notes
    return scan


def _summary(scan: DarknetScan, boxes: int, label_lines: int, deep: bool) -> dict[str, Any]:
    """The summary ``detforge check`` prints and stores (timings added by the caller)."""
    labels = sum(1 for p in scan.label_paths if p)
    counts = severity_counts(scan.findings)
    return {
        "source": scan.source,
        "format": "darknet",
        "images": len(scan.images),
        "list_entries": len(scan.entry_image),
        "splits": {s: scan.entry_split.count(s) for s in dict.fromkeys(scan.entry_split)},
        "label_files": labels,
        "boxes": boxes,
        "label_lines": label_lines,
        "classes": scan.num_classes,
        "errors": counts["error"],
        "warnings": counts["warning"],
        "infos": counts["info"],
        "codes": dict(sorted(_code_counts(scan.findings).items())),
        "deep": deep,
        "cached_files": 0,
        "files": len(scan.images) + labels,
    }


def _code_counts(findings: list[Finding]) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in findings:
        out[f.code] = out.get(f.code, 0) + 1
    return out


def _label_map_findings(path: str | os.PathLike[str], names: list[str] | None) -> list[Finding]:
    from detforge.formats.labelmap import read_label_map

    try:
        mapping = read_label_map(path)
    except DetforgeError as exc:
        return [finding("read-error", exc.message, path=exc.path or os.fspath(path), line=exc.line)]
    if names is None:
        return []
    return check_label_map_names(mapping, [n.strip() for n in names], path=os.fspath(path))
