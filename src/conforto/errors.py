"""The project's exception tree.

Every error a user can cause or fix derives from :class:`ConfortoError`; the CLI maps it to a
one-line message and exit code 1, the API (later) to an HTTP status. Programming errors stay
``TypeError``/``ValueError``.

::

    ConfortoError
    ├── ConfigError            settings or config files are invalid
    ├── DataError              input data cannot be used
    │   ├── DataSourceError    a file is missing, unreadable, empty, or cannot be downloaded
    │   ├── ColumnError        a column is missing, unknown or ambiguous
    │   └── DataValidationError  values break the schema (impossible values, bad types)
    ├── DownloadError          a download failed or its checksum does not match
    ├── ArtifactError          a trained-model directory is missing, incomplete or incompatible
    ├── RegistryError          a registry operation cannot be done (unknown version, no gate, …)
    └── TrackingError          an experiment tracker failed (never fatal to a stage)
"""

from __future__ import annotations


class ConfortoError(Exception):
    """Base class of every user-facing error; the message says what is wrong and what to do."""


class ConfigError(ConfortoError):
    """Settings or a config file hold an invalid value."""


class DataError(ConfortoError):
    """Input data cannot be used as given."""


class DataSourceError(DataError):
    """A data file is missing, unreadable or empty, or cannot be fetched."""


class ColumnError(DataError):
    """A column is missing, unknown or ambiguous."""


class DataValidationError(DataError):
    """Values break the data schema (impossible values, wrong types, all-null columns)."""


class DownloadError(ConfortoError):
    """A download failed or its content does not match the expected checksum."""


class ArtifactError(ConfortoError):
    """A trained-model directory is missing, incomplete or from an incompatible version."""


class RegistryError(ConfortoError):
    """A registry operation cannot be done: unknown version, gate not passed, no rollback."""


class TrackingError(ConfortoError):
    """An experiment tracker failed; stages log it as a warning and carry on."""
