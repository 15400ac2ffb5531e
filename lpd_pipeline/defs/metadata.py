"""Asset metadata the Dagster UI shows inline, on the asset's page, without a click.

Rule: the UI draws numbers, short text and tables (``dg.MetadataValue.table``) in place, but shows markdown of 1,000
characters or more (every inlined picture: previews, sample sheets, plots) behind a "[Show Markdown]" link. A table
a person compares at a glance (metrics per checkpoint, the variants' comparison) is therefore a table value, its
cells plain text (the UI never interprets them), not a markdown table.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg


def inline_table(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> dg.TableMetadataValue:
    """A table of text cells (``None`` and NaN-like values become empty), one record per row."""
    schema = dg.TableSchema(columns=[dg.TableColumn(name, "string") for name in columns])
    records = []
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} cells for {len(columns)} columns: {row!r}")
        records.append(dg.TableRecord({name: "" if cell is None else str(cell) for name, cell in zip(columns, row)}))
    return dg.MetadataValue.table(records=records, schema=schema)
