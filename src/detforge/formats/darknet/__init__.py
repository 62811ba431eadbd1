"""Darknet datasets and side files: one package for the format.

Modules: ``files`` (.data/.names/image lists, path maps), ``labels`` (label paths and lines,
bulk ``parse_label_files``), ``sources`` (what a .data/list/folder names), ``index`` (the
per-file stat/read pass), ``read`` (:func:`read_darknet`), ``write`` (:func:`write_darknet`),
``cfg`` (rewriting a network ``.cfg`` for a dataset). The public names are re-exported here.
"""

from __future__ import annotations

from detforge.formats.darknet.files import (
    DATA_KEYS,
    DataFile,
    PathMap,
    apply_path_map,
    is_windows_absolute,
    read_data_file,
    read_image_list,
    read_image_list_lines,
    read_names,
    resolve_path,
    write_data_file,
    write_image_list,
    write_names,
)
from detforge.formats.darknet.labels import (
    find_label_path,
    format_label_lines,
    label_path_candidates,
    parse_label_text,
)
from detforge.formats.darknet.read import read_darknet
from detforge.formats.darknet.sources import split_from_list_name
from detforge.formats.darknet.write import write_darknet

__all__ = [
    "DATA_KEYS",
    "DataFile",
    "PathMap",
    "apply_path_map",
    "find_label_path",
    "format_label_lines",
    "is_windows_absolute",
    "label_path_candidates",
    "parse_label_text",
    "read_darknet",
    "read_data_file",
    "read_image_list",
    "read_image_list_lines",
    "read_names",
    "resolve_path",
    "split_from_list_name",
    "write_darknet",
    "write_data_file",
    "write_image_list",
    "write_names",
]
