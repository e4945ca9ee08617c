"""The project's exception tree, and what each error becomes at the edges.

Every error a user can cause or fix derives from :class:`ConfortoError`; its message says what
was wrong and what to do. Programming errors stay ``TypeError``/``ValueError`` (and reach the
user as a bug: exit code 1 with a traceback, or HTTP 500 "internal error").

::

    error                      what happened                                   HTTP  CLI exit
    ConfortoError              (base)                                          500   1
    ├── ConfigError            settings or config files are invalid            500   1
    ├── DataError              input data cannot be used                       422   1
    │   ├── DataSourceError    a file is missing, unreadable, empty, or cannot 422   1
    │   │                      be downloaded
    │   ├── ColumnError        a column is missing, unknown or ambiguous        422   1
    │   └── DataValidationError  values break the schema                       422   1
    ├── DownloadError          a download failed or its checksum does not match 502   1
    ├── ArtifactError          a model directory is missing, incomplete or      503   1
    │                          incompatible
    ├── RegistryError          a registry operation cannot be done (unknown     409   1
    │   │                      version, no gate, …)
    │   ├── NoProductionModel  nothing is in production yet                    503   3
    │   ├── RegistryBusy       another command is moving production (try       409   4
    │   │                      again when it has finished)
    │   └── ShadowPending      the version waits for its shadow period (serve  409   5
    │                          it as a shadow challenger first)
    ├── TrackingError          an experiment tracker failed (never fatal to a   500   1
    │                          stage: it becomes a warning)
    ├── DeliveryError          a result could not be handed to an outside       502   1
    │                          service (Pushgateway, Slack)
    ├── ModelUnavailable       the service has no model to answer with          503   1
    ├── ReloadError            a new model could not be loaded; the old one     409   1
    │                          still serves
    └── LogUnavailable         the prediction log's database cannot take or     503   1
                               answer a request now

The CLI prints the message on one line (the traceback only with ``--debug``) and exits with
the code above (:data:`EXIT_CODE`): 3 tells a script that there is no production model yet (a
new project's first run), 4 that another command, maybe on another machine, is moving
production (run the same command again once it has finished), 5 that the version is
validated but waits for the shadow period the gate asks for (deploy it as a shadow challenger).
The service answers ``{"detail": message}`` with the status above (:data:`HTTP_STATUS`, the
most specific class wins). A failed gate or validation is a result, not an error: those
commands exit 1 after printing their report.
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


class QuietWindow(DataError):  # noqa: N818 - reads as what it is
    """The prediction log holds no prediction in the window (none logged yet, or a quiet day):
    nothing to judge, and nothing wrong.
    """


class DownloadError(ConfortoError):
    """A download failed or its content does not match the expected checksum."""


class ArtifactError(ConfortoError):
    """A trained-model directory is missing, incomplete or from an incompatible version."""


class RegistryError(ConfortoError):
    """A registry operation cannot be done: unknown version, gate not passed, no rollback."""


class NoProductionModel(RegistryError):  # noqa: N818 - reads as what happened
    """Nothing is in production yet (a new registry): the message says which commands make one."""


class RegistryBusy(RegistryError):  # noqa: N818 - reads as what happened
    """Another command (maybe on another machine) is moving production, or took the same lease
    at the same moment; nothing was changed, and the command may be run again.
    """


class ShadowPending(RegistryError):  # noqa: N818 - reads as what happened
    """The gate asks for a shadow period the version has not had yet
    (``gate.shadow_min_predictions``): it stays validated, waiting to be served as a shadow
    challenger; nothing was changed.
    """


class TrackingError(ConfortoError):
    """An experiment tracker failed; stages log it as a warning and carry on."""


class AccessRefused(ConfigError):  # noqa: N818 - reads as what happened
    """A server refused the credentials sent (or their absence): not an outage, so the call is
    neither kept for later nor retried; the message says which variables to set.
    """


class DeliveryError(ConfortoError):
    """A result could not be handed to an outside service (a Pushgateway, Slack)."""


class ModelUnavailable(ConfortoError):  # noqa: N818 - reads as what happened, like TimeoutError
    """The service has no model loaded (none in production yet, or it failed to load)."""


class ReloadError(ConfortoError):
    """A new model could not be loaded; the model served before keeps serving."""


class LogUnavailable(ConfortoError):  # noqa: N818 - reads as what happened, like TimeoutError
    """The prediction log's database cannot take or answer a request now."""


#: HTTP status of each error class (the most specific class listed in an error's MRO wins).
HTTP_STATUS: dict[type[ConfortoError], int] = {
    ConfortoError: 500,
    DataError: 422,
    DownloadError: 502,
    DeliveryError: 502,
    ArtifactError: 503,
    RegistryError: 409,
    NoProductionModel: 503,
    ModelUnavailable: 503,
    ReloadError: 409,
    LogUnavailable: 503,
}


#: The CLI's exit code of each error class (the most specific class listed wins).
EXIT_CODE: dict[type[ConfortoError], int] = {
    ConfortoError: 1,
    NoProductionModel: 3,
    RegistryBusy: 4,
    ShadowPending: 5,
}


def _most_specific(error: ConfortoError, table: dict[type[ConfortoError], int]) -> int:
    return next(table[cls] for cls in type(error).__mro__ if cls in table)


def exit_code(error: ConfortoError) -> int:
    """The exit code of the CLI for ``error`` (see the table above).

    Examples
    --------
    >>> exit_code(RegistryError("no version 9")), exit_code(NoProductionModel("none yet"))
    (1, 3)
    """
    return _most_specific(error, EXIT_CODE)


def http_status(error: ConfortoError) -> int:
    """The HTTP status that answers ``error`` (see the table above).

    Examples
    --------
    >>> http_status(ColumnError("no ta")), http_status(LogUnavailable("down"))
    (422, 503)
    """
    return _most_specific(error, HTTP_STATUS)
