"""The version of codesign (one definition; pyproject reads the same number)."""

__version__ = "0.1.0"
