"""Deprecated re-export of ``benchmarks.files`` and ``benchmarks.reporting``.

Deleted once nothing imports it.
"""

from benchmarks.files import atomic_open, environment, is_lead_process
from benchmarks.files import to_jsonable, write_json, write_text
from benchmarks.reporting import markdown_table, save_figure, subplots
