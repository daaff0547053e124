"""A DataTable whose cursor follows an item, not a row number.

Rows are keyed by the item's name. When the rows are rebuilt (the engine sent a new
board or vault, a sort changed), the cursor goes back to the same item wherever it
moved; an action always reads the key under the cursor, never an index into a list
that may have changed since the row was drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist

Cell = str | Text


class KeyedTable(DataTable[Cell]):
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None: an empty table)."""
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        except CellDoesNotExist:
            return None
        return key

    def replace_rows(self, rows: Iterable[tuple[str, Sequence[Cell]]]) -> None:
        """Redraw every row, keeping the cursor on the item it was on."""
        keep = self.cursor_key()
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep), animate=False)
