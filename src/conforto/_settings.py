"""The project's settings: one class read from the environment (prefix ``CONFORTO_``), and the
YAML configuration files (:func:`load_yaml_model`).

Nested groups use ``__`` as delimiter, e.g. ``CONFORTO_DOWNLOAD__RETRIES=5``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, Field, HttpUrl, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conforto.errors import ConfigError

GCP_PROJECT = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"  # Google Cloud's rule for project IDs
GCP_REGION = r"^[a-z]+-[a-z]+[0-9]+$"  # e.g. europe-west1
MEASUREMENTS_URL = (
    "https://github.com/CenterForTheBuiltEnvironment/ashrae-db-II/raw/master/"
    "v2.1.0/db_measurements_v2.1.0.csv.gz"
)
MEASUREMENTS_SHA256 = "9722be588ec3e779de21679513711e2d980138359a1b44bb9775e9499bc68380"
METADATA_URL = (
    "https://github.com/CenterForTheBuiltEnvironment/ashrae-db-II/raw/master/v2.1.0/db_metadata.csv"
)
METADATA_SHA256 = "af6770a2b469f079cd172bd6632d1ae726a3a663515126816ff6d2d8f51bfc10"
#: Confidence levels a prediction set may be asked for (lowest, highest) and the default.
MIN_LEVEL, MAX_LEVEL, DEFAULT_LEVEL = 0.5, 0.99, 0.9


class DownloadSettings(BaseModel):
    """Where the official ASHRAE Global Thermal Comfort Database II files come from."""

    measurements_url: HttpUrl = Field(
        HttpUrl(MEASUREMENTS_URL), description="Where the measurements file is downloaded from."
    )
    measurements_sha256: str = Field(
        MEASUREMENTS_SHA256, description="Its sha256: a download that differs is refused."
    )
    metadata_url: HttpUrl = Field(
        HttpUrl(METADATA_URL), description="Where the building metadata file is downloaded from."
    )
    metadata_sha256: str = Field(
        METADATA_SHA256, description="Its sha256: a download that differs is refused."
    )
    retries: int = Field(3, ge=0, le=10, description="Retries after a transient failure.")
    timeout: float = Field(60.0, gt=0, description="Seconds to wait for the server.")

    @field_validator("measurements_sha256", "metadata_sha256")
    @classmethod
    def _is_sha256(cls, value: str) -> str:
        value = value.strip().lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError(f"expected 64 hex digits of a sha256 digest, got {value!r}")
        return value


class TrackingSettings(BaseModel):
    """Experiment tracking (MLflow and/or ClearML) and the model registry (MLflow).

    Without a URI, MLflow runs embedded: a SQLite store and an artifact folder under
    ``CONFORTO_HOME/mlflow``, no server. ClearML takes its server and credentials from the
    standard ``CLEARML_*`` variables and runs offline (sessions under ``CLEARML_CACHE_DIR``)
    when no server is reachable.
    """

    backends: list[Literal["mlflow", "clearml"]] = Field(
        ["mlflow"],
        description='Where stages record their runs, e.g. \'["mlflow", "clearml"]\'; [] for none.',
    )
    clearml_project: str = Field(
        "conforto_termico", description="ClearML parent project; one sub-project per stage."
    )
    uri: str | None = Field(None, description="MLflow tracking URI, e.g. http://mlflow:5000.")
    registry_uri: str | None = Field(None, description="MLflow registry URI; default: uri.")
    experiment: str = Field("conforto", description="MLflow experiment of the runs.")
    model_name: str = Field("conforto-thermal-sensation", description="Registered model name.")
    lease_s: float = Field(
        300.0,
        gt=0,
        description="With a tracking server: how long a production move's lease lasts [s] "
        "before another machine may complete a move its command left unfinished.",
    )


def _absolute(value: Path | None) -> Path | None:
    """A path made absolute where the settings are read (``~`` expanded): the programs started
    later (nginx, uvicorn's workers, the log writer) run elsewhere or resolve against their own
    folders.
    """
    return None if value is None else value.expanduser().absolute()


def _unset_when_empty(value: object) -> object:
    """An image built without a model (or a challenger) sets its variable to "" (Dockerfile
    ``${VAR:+...}``): unset.
    """
    return None if value == "" else value


class ChallengerSettings(BaseModel):
    """A second model beside production in the service: A/B tests
    (:mod:`conforto._serving.challenger`).
    """

    model: str | None = Field(
        None,
        description="Challenger: a registry version number or a model directory; unset: none.",
    )
    _none_when_empty = field_validator("model", mode="before")(_unset_when_empty)
    mode: Literal["shadow", "canary"] = Field(
        "shadow",
        description="shadow: production answers, the challenger scores the same rows behind it; "
        "canary: the challenger answers a share of the clients.",
    )
    canary_percent: float = Field(
        10.0, gt=0, le=100, description="Share of clients the challenger answers in canary [%]."
    )
    window: int = Field(
        500, ge=10, le=100_000, description="Challenger predictions judged by the automatic stop."
    )
    min_predictions: int = Field(
        50, ge=1, description="Predictions in the window before the automatic stop judges it."
    )
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="Stop the challenger above this share of failed scorings."
    )
    max_p99_ms: float = Field(
        250.0, gt=0, description="Stop the challenger above this p99 latency [ms]."
    )
    max_disagreement: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Stop a shadow above this share of classes unlike production's.",
    )
    shadow_backlog: int = Field(
        4096, ge=1, description="Rows a shadow may have waiting; more are skipped (and counted)."
    )


class SiteAdaptationServeSettings(BaseModel):
    """Site adaptation in the service: answers for a site adjusted by its occupants' votes."""

    enabled: bool = Field(
        True, description="Adjust the answers of a request that names a site whose occupants voted."
    )
    refresh_seconds: float = Field(
        30.0,
        gt=0,
        description="How often each instance learns the votes that arrived and reads every "
        "site's state from the prediction log [s]: about the longest a vote waits to count.",
    )
    off: list[str] = Field(
        default_factory=list, description="Sites always answered zero-shot, whatever their votes."
    )
    votes_per_client: int = Field(
        100,
        ge=1,
        description="Most votes of one client (X-Client-Id, else its address) that count for a "
        "site, its latest: what one client can teach a site is bounded.",
    )


class ServeSettings(BaseModel):
    """The prediction service."""

    model_dir: Path | None = Field(
        None, description="Model directory to serve; default: the production version."
    )
    max_batch: int = Field(1000, ge=1, description="Most observations per /predict/batch request.")
    coverage: float = Field(
        DEFAULT_LEVEL,
        ge=MIN_LEVEL,
        le=MAX_LEVEL,
        description="Confidence level of the prediction sets when a request does not ask for one.",
    )
    max_body_bytes: int = Field(1_000_000, ge=1024, description="Largest request body [bytes].")
    threads: int = Field(2, ge=1, le=64, description="Threads running predictions per worker.")
    log_url: str | None = Field(
        None,
        description="Prediction log database (SQLAlchemy URL, e.g. "
        "postgresql+psycopg://user@host/db); default: SQLite under CONFORTO_HOME.",
    )
    spool_dir: Path | None = Field(
        None,
        description="Local folder where predictions wait for the log's database (on a disk "
        "that outlives the process); default: CONFORTO_HOME/spool.",
    )
    spool_max_bytes: int = Field(
        1 << 30,
        ge=1 << 16,
        description="Most bytes the spool holds while the database is down; past it the "
        "oldest rows are dropped (and counted) [bytes].",
    )
    feedback_horizon: float = Field(
        600.0,
        gt=0,
        description="How long a vote for a prediction not stored yet is held as pending [s].",
    )
    votes_per_minute: int = Field(
        30,
        ge=1,
        description="Votes one client (X-Client-Id, else its address) may send to /feedback "
        "a minute, in bursts of as many; more are refused (429) [1/min].",
    )
    admin_token: SecretStr | None = Field(
        None, description="Bearer token of the /admin routes; unset disables them."
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token Prometheus sends to /metrics; unset: /metrics is open (a "
        "service on 127.0.0.1). Set wherever the service is reachable by anyone (Cloud Run).",
    )
    poll_seconds: float = Field(
        5.0, ge=0, description="How often to check for a new production model [s]; 0: never."
    )
    challenger: ChallengerSettings = ChallengerSettings()
    adaptation: SiteAdaptationServeSettings = SiteAdaptationServeSettings()

    _no_model_when_empty = field_validator("model_dir", mode="before")(_unset_when_empty)
    _absolute_paths = field_validator("model_dir", "spool_dir")(_absolute)

    @field_validator("log_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        # The full parse (and the driver) is checked where the log is opened: the service
        # itself never imports SQLAlchemy.
        if value is not None and not re.match(r"[A-Za-z][\w+]*://", value):
            raise ValueError(
                "not a SQLAlchemy database URL: write dialect[+driver]://..., e.g. "
                "sqlite:///predictions.db or postgresql+psycopg://user@host/db"
            )
        return value


class NotifySettings(BaseModel):
    """Slack notifications of lifecycle events (:mod:`conforto._notify`)."""

    slack_webhook_url: SecretStr | None = Field(
        None, description="Slack incoming webhook (a secret); unset: no notifications."
    )
    timeout: float = Field(10.0, gt=0, le=120, description="Seconds to wait for Slack.")
    retries: int = Field(2, ge=0, le=10, description="Retries after a failed delivery.")

    @field_validator("slack_webhook_url")
    @classmethod
    def _https(cls, value: SecretStr | None) -> SecretStr | None:
        # the value is a secret: the message never repeats it
        if value is not None and not value.get_secret_value().startswith(("https://", "http://")):
            raise ValueError("not a webhook URL: it must start with https://")
        return value


class DeploySettings(BaseModel):
    """Local blue/green deploys (:mod:`conforto._deploy.local`)."""

    port: int = Field(8080, ge=1, le=65535, description="Production's stable address (nginx).")
    staging_port: int = Field(8081, ge=1, le=65535, description="Staging's stable address.")
    ready_timeout: float = Field(
        60.0, gt=0, description="Longest wait for a new slot to be ready [s]."
    )
    drain_seconds: float = Field(
        2.0, ge=0, description="Time the old slot keeps serving after the switch [s]."
    )
    image: str | None = Field(
        None, description="Run slots as this image under podman instead of as processes."
    )
    gcp_project: str | None = Field(
        None,
        pattern=GCP_PROJECT,
        description="Google Cloud project ID of Cloud Run deploys (6-30 of a-z, 0-9, -).",
    )
    region: str = Field("europe-west1", pattern=GCP_REGION, description="Cloud Run region.")
    invoker: str = Field(
        "allUsers",
        description="Who may call the Cloud Run services (granted roles/run.invoker at each "
        "deploy): allUsers for a public API, or a member such as group:clients@example.org; "
        "empty: leave their IAM policy alone.",
    )
    alert_channel: str | None = Field(
        None,
        pattern=r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]+$",
        description="Cloud Monitoring notification channel the services' alert policies notify "
        "(projects/PROJECT/notificationChannels/ID: a Slack channel, made once in the console); "
        "unset: the policies are applied without one.",
    )

    @field_validator("alert_channel", mode="before")
    @classmethod
    def _no_channel_when_empty(cls, value: object) -> object:
        # a workflow passes an unset repository variable as ""
        return None if value == "" else value


class Settings(BaseSettings):
    """Project settings, read from ``CONFORTO_*`` environment variables.

    Attributes
    ----------
    home
        Folder that holds everything the project writes (reports, models, stores); relative
        paths are taken from the working folder where the settings are read, and kept absolute.
    measurements, metadata
        Local copies of the database's two files; when unset, the official files are
        downloaded once into ``cache_dir`` and reused.
    cache_dir
        Where downloaded data is kept; defaults to ``home / "cache"``.
    """

    model_config = SettingsConfigDict(
        env_prefix="CONFORTO_", env_nested_delimiter="__", extra="ignore"
    )

    home: Path = Field(
        Path(".conforto"),
        validate_default=True,
        description="Everything the project writes: reports, models, stores, the prediction log.",
    )
    measurements: Path | None = Field(
        None, description="Measurements file (csv, csv.gz, parquet); unset: the official one."
    )
    metadata: Path | None = Field(
        None, description="Building metadata file; unset: the official one."
    )
    cache_dir: Path | None = Field(
        None, description="Where downloaded files are kept (unset: ``home/cache``)."
    )
    seed: int = Field(42, description="Random seed of training, sampling and bootstraps.")
    crash_at: str | None = Field(
        None, description="Fault injection for the crash tests: a registry checkpoint's name."
    )
    download: DownloadSettings = DownloadSettings()
    tracking: TrackingSettings = TrackingSettings()
    serve: ServeSettings = ServeSettings()
    notify: NotifySettings = NotifySettings()
    deploy: DeploySettings = DeploySettings()

    _absolute_paths = field_validator("home", "measurements", "metadata", "cache_dir")(_absolute)

    @property
    def data_cache(self) -> Path:
        """Folder holding downloaded data files."""
        return self.cache_dir if self.cache_dir is not None else self.home / "cache"

    @property
    def reports_dir(self) -> Path:
        """Default folder for data reports."""
        return self.home / "reports"

    @property
    def registry_dir(self) -> Path:
        """Folder of the audit log, the production pointer and the promotion lock."""
        return self.home / "registry"

    @property
    def tracking_outbox(self) -> Path:
        """Tracker calls that failed, kept for ``conforto tracking retry``."""
        return self.home / "tracking" / "outbox.jsonl"

    @property
    def prediction_log_url(self) -> str:
        """The prediction log's database URL in force (SQLite under ``home`` by default)."""
        if self.serve.log_url:
            return self.serve.log_url
        return f"sqlite:///{(self.home / 'predictions.db').resolve()}"

    @property
    def spool_dir(self) -> Path:
        """The prediction log's spool folder in force (``home/spool`` by default)."""
        return self.serve.spool_dir or self.home / "spool"

    @property
    def mlflow_uri(self) -> str:
        """The MLflow tracking URI in force (embedded SQLite store by default)."""
        if self.tracking.uri:
            return self.tracking.uri
        return f"sqlite:///{(self.home / 'mlflow' / 'mlflow.db').resolve()}"

    @property
    def mlflow_artifacts(self) -> str:
        """Artifact location of the embedded store."""
        return (self.home / "mlflow" / "artifacts").resolve().as_uri()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the settings, read once from the environment.

    Returns
    -------
    Settings
        The cached settings; call ``get_settings.cache_clear()`` after changing the environment.

    Raises
    ------
    ConfigError
        Naming each invalid setting by its environment variable, with the reason.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            "CONFORTO_" + "__".join(str(p) for p in err["loc"]).upper() + f": {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings: {problems}.") from None


M = TypeVar("M", bound=BaseModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read ``path`` (YAML mapping) into ``model``.

    Parameters
    ----------
    path
        YAML file.
    model
        Pydantic model class to validate against.

    Returns
    -------
    pydantic.BaseModel
        The validated config.

    Raises
    ------
    ConfigError
        When the file is missing, not YAML, not a mapping, or has invalid values; the message
        names the file, the key and the reason.
    """
    import yaml  # the service never reads a YAML file

    if not path.is_file():
        raise ConfigError(f"config file not found: {path}.")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}.") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, not {type(data).__name__}.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid config {path}: {problems}.") from None
