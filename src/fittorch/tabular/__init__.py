"""Raw tables as they come: column roles, missing values and categories, saved as JSON.

``TabularPreprocessor`` fits on training rows and turns any later table with the same
columns into the model's inputs; unseen categories become an "unknown" level (counted in
``last_unknown``), never an error. ``fittorch.TabularMLP`` is the built-in model for its
output. See docs/data.md ("Raw tables").
"""

from __future__ import annotations

from .columns import TabularWarning
from .preprocessor import TabularPreprocessor, as_preprocessor, encode_pair, n_rows
from .schema import FORMAT, TabularState, parse_state

__all__ = ["FORMAT", "TabularPreprocessor", "as_preprocessor", "encode_pair", "TabularState", "TabularWarning", "n_rows", "parse_state"]
