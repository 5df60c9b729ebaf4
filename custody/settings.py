"""One place for every setting, read from `CUSTODY_*` environment variables.

Why one object: the API, the worker, the CLI and the embedded launcher must agree on ports, keys and
durations, and tests must be able to shrink durations (reminders, expiry) to seconds. Everything that
needs a setting receives this object; nothing reads the environment on its own.

Secrets (JWT signing key, S3 credentials, ledger signing key) are never hard-coded. In `dev` mode the
missing ones are generated once into `$CUSTODY_HOME/secrets.json` (mode 0600) and reused; in any other
mode a missing secret stops start-up with a message naming the variable to set, and production also
refuses one of those generated keys. Every secret (every `SecretStr` field) is read from
`CUSTODY_<NAME>` or from the file `CUSTODY_<NAME>_FILE` names (Docker and Kubernetes mount secrets as
files), never both; PEMs may carry real newlines or `\\n` escapes (one-line .env values).
"""

from __future__ import annotations

import json
import os
import typing
from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from custody.errors import ConfigurationError

Mode = Literal["dev", "test", "production"]
SmtpSecurity = Literal["none", "starttls", "tls"]

#: Start-to-close timeout of the activities that send one email (the notices; workflows/requests.py
#: builds its QUICK_TIMEOUT from this). CUSTODY_SMTP_TIMEOUT_S must stay below it, so a slow relay
#: fails the send (and Temporal retries it) rather than the activity timing out mid-conversation.
EMAIL_ACTIVITY_TIMEOUT_S = 15.0
JwtAlgorithm = Literal["ES256", "RS256", "HS256"]
LogFormat = Literal["json", "text"]

#: Settings that must be provided outside dev mode (env var name -> field name).
SECRET_FIELDS: dict[str, str] = {
    "CUSTODY_JWT_KEY": "jwt_key",
    "CUSTODY_S3_ACCESS_KEY": "s3_access_key",
    "CUSTODY_S3_SECRET_KEY": "s3_secret_key",
    "CUSTODY_LEDGER_SIGNING_KEY": "ledger_signing_key",
    "CUSTODY_REPORT_SIGNING_CERT": "report_signing_cert",
    "CUSTODY_REPORT_SIGNING_KEY": "report_signing_key",
}


class Settings(BaseSettings):
    """Every knob of custody. Field names map to `CUSTODY_<NAME>` environment variables."""

    model_config = SettingsConfigDict(env_prefix="CUSTODY_", extra="ignore", frozen=False)

    # --- where and how it runs -------------------------------------------------------------------
    mode: Mode = Field("dev", description="dev (embedded, generated secrets), test, or production")
    home: Path = Field(Path(".custody"), description="State folder: database, object store, mail, logs")
    api_host: str = Field("127.0.0.1", description="Address the API binds to")
    api_port: int = Field(8000, description="Port of the HTTP API")
    public_url: str | None = Field(None, description="Base URL owners' links point to (default: the API URL)")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Reverse proxies (comma-separated IPs or CIDRs) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed; empty (the default): those headers are ignored and the client "
        "is the connection's peer",
    )
    header_read_timeout_s: float = Field(
        10, gt=0, le=300, description="A request's headers must arrive within this many seconds, or 408"
    )
    body_read_timeout_s: float = Field(
        30, gt=0, le=3600, description="Longest wait for the next part of a request body before 408"
    )
    keep_alive_timeout_s: float = Field(
        5, gt=0, le=300, description="An idle keep-alive connection is closed after this many seconds"
    )
    max_header_bytes: int = Field(
        65536, ge=8192, le=1048576, description="Largest request line plus headers accepted (else 431)"
    )

    # --- database --------------------------------------------------------------------------------
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL; default SQLite file $CUSTODY_HOME/custody.db (dev and test only: "
        "production requires it)",
    )

    # --- processes and production guards --------------------------------------------------------
    allow_sqlite: bool = Field(
        False,
        description="Let production mode run on SQLite (one machine, one API and one worker); "
        "otherwise production refuses it: use PostgreSQL",
    )

    # --- Temporal --------------------------------------------------------------------------------
    temporal_host: str = Field("127.0.0.1", description="Temporal frontend host")
    temporal_port: int = Field(7233, description="Temporal frontend port (embedded server listens here)")
    temporal_ui_port: int = Field(8233, description="Temporal Web UI port (embedded server)")
    temporal_namespace: str = Field("default", description="Temporal namespace")
    task_queue: str = Field("custody", description="Temporal task queue of the worker")

    # --- object storage --------------------------------------------------------------------------
    s3_host: str = Field("127.0.0.1", description="S3 endpoint host")
    s3_port: int = Field(8333, description="S3 endpoint port (embedded SeaweedFS listens here)")
    s3_secure: bool = Field(False, description="Use TLS to reach S3")
    s3_access_key: SecretStr | None = Field(None, description="S3 access key (generated in dev)")
    s3_secret_key: SecretStr | None = Field(None, description="S3 secret key (generated in dev)")
    s3_bucket: str = Field("evidence", description="Evidence bucket (versioned, object lock)")
    evidence_retention_days: int = Field(
        365, ge=1, description="Default COMPLIANCE (WORM) retention of evidence objects, in days"
    )
    retention_classes: dict[str, int] = Field(
        default_factory=dict,
        description='Retention classes by case category, JSON category -> days (e.g. {"homicide": 27394}); '
        "a category not listed, or a case without one, keeps CUSTODY_EVIDENCE_RETENTION_DAYS",
    )
    retention_day_s: float = Field(
        86400,
        gt=0,
        description="Length of one retention day in seconds (tests only: refused outside dev and test)",
    )
    disposition_interval_s: float = Field(
        3600, gt=0, description="How often the worker looks for evidence past retention and not on hold"
    )

    # --- mail ------------------------------------------------------------------------------------
    smtp_host: str = Field("127.0.0.1", description="SMTP server host")
    smtp_port: int = Field(2525, description="SMTP server port (embedded aiosmtpd listens here)")
    smtp_from: str = Field("custody@localhost", description="Sender address of owner notices")

    # --- mail: TLS and AUTH to the relay -----------------------------------------------------------
    smtp_security: SmtpSecurity = Field(
        "none",
        description="none (plain, only for a relay on the same host or private network), starttls "
        "(upgrade required: never falls back to plain) or tls (implicit TLS, port 465 style); with TLS the "
        "relay's certificate and host name are always verified",
    )
    smtp_username: str | None = Field(None, description="SMTP AUTH user name (unset: no AUTH)")
    smtp_password: SecretStr | None = Field(None, description="SMTP AUTH password")
    smtp_ca_file: Path | None = Field(
        None, description="PEM CA bundle the relay's certificate must chain to (default: system + certifi)"
    )
    smtp_timeout_s: float = Field(
        10,
        gt=0,
        description="Whole-send budget (connect, TLS, AUTH, message), below the notice activity's 15 s",
    )

    # --- staff auth ------------------------------------------------------------------------------
    jwt_algorithm: JwtAlgorithm = Field("ES256", description="The one JWT algorithm accepted")
    jwt_key: SecretStr | None = Field(
        None, description="PEM private key (ES256/RS256) or shared secret (HS256); generated in dev"
    )
    jwt_issuer: str = Field("custody", description="JWT iss")
    jwt_audience: str = Field("custody-api", description="JWT aud")
    jwt_ttl_s: int = Field(3600, ge=60, description="Lifetime of an access token")
    login_max_failures: int = Field(5, ge=1, description="Failed logins allowed per window before throttling")
    login_window_s: int = Field(300, ge=1, description="Window (and lockout) for failed-login throttling")

    # --- ledger ----------------------------------------------------------------------------------
    ledger_signing_key: SecretStr | None = Field(
        None, description="Ed25519 private key, base64 of the 32-byte seed; generated in dev"
    )
    ledger_origin: str = Field("custody.local/ledger", description="Checkpoint origin line and key name")
    report_signing_cert: SecretStr | None = Field(
        None,
        description="PEM certificate that signs custody reports (PAdES); self-signed one generated in dev",
    )
    report_signing_key: SecretStr | None = Field(
        None, description="PEM private key of the report certificate"
    )
    report_pseudonymise_owners: bool = Field(
        False, description="Show camera owners in reports by a pseudonym instead of their registered name"
    )
    # --- report signing: RFC 3161 timestamps (PAdES B-T) ----------------------------------------------
    tsa_url: str | None = Field(
        None,
        description="RFC 3161 timestamp authority URL; set: reports are PAdES B-T (stamped), unset: B-B",
    )
    tsa_ca_file: Path | None = Field(
        None, description="PEM CA bundle an https TSA's certificate must chain to (default: system + certifi)"
    )
    tsa_username: str | None = Field(None, description="HTTP Basic user name at the TSA (unset: none)")
    tsa_password: SecretStr | None = Field(None, description="HTTP Basic password at the TSA")
    tsa_timeout_s: float = Field(10, gt=0, le=60, description="Wait for the TSA on each try")
    tsa_attempts: int = Field(
        3, ge=1, le=10, description="Tries of the TSA before the report is refused with 503"
    )
    ledger_checkpoint_interval_s: float = Field(
        10, gt=0, le=60, description="How often a new checkpoint is signed while entries arrive"
    )

    # --- ledger key rotation ---------------------------------------------------------------------
    ledger_previous_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Verifier keys (note verifier-key form, comma-separated) of ledger signing keys used "
        "before CUSTODY_LEDGER_SIGNING_KEY: published at GET /ledger/public-keys beside the current one, "
        "so checkpoints signed before a rotation stay verifiable (docs/operations.md, key rotation)",
    )

    # --- faults: how custody behaves when a dependency is slow, down or full -----------------------
    db_pool_size: int = Field(
        20, ge=1, le=500, description="Database connections kept per process (as many again may overflow)"
    )
    api_concurrency: int = Field(
        8,
        ge=1,
        le=1000,
        description="Requests the API serves at once (uploads and downloads aside); more wait, then 503",
    )
    db_pool_timeout_s: float = Field(
        5, gt=0, le=60, description="Wait for a free database connection before answering 503"
    )
    db_lock_timeout_s: float = Field(
        10,
        gt=0,
        le=120,
        description="Wait for a database lock (SQLite busy timeout, PostgreSQL lock_timeout)",
    )
    temporal_rpc_timeout_s: float = Field(
        5, gt=0, le=60, description="Wait for the workflow service before answering 503 (alerts: queued)"
    )
    temporal_update_timeout_s: float = Field(
        15, gt=0, le=120, description="Wait for a workflow to take a decision, `complete` or cancel, then 503"
    )
    relay_interval_s: float = Field(
        5, gt=0, le=600, description="How often the worker starts alerts' workflows the API could not start"
    )
    upload_concurrency: int = Field(
        16, ge=1, le=10000, description="Owners' uploads streamed at once (each holds up to 32 MiB)"
    )
    upload_queue_s: float = Field(
        30,
        gt=0,
        le=600,
        description="Wait of an upload beyond that number before 503 'try again in a minute'",
    )
    upload_heartbeat_s: float = Field(
        5, gt=0, le=300, description="How often an upload in progress says it is alive"
    )
    upload_stale_s: float = Field(
        120, gt=0, description="An upload not heard from this long is dead: the sweeper finishes or aborts it"
    )
    s3_volume_size_mb: int = Field(
        1024, ge=64, description="Embedded SeaweedFS: size of one volume (it adds volumes as disk allows)"
    )
    s3_timeout_s: float = Field(20, gt=0, le=600, description="Wait for the object store on each call")
    s3_data_dir: Path | None = Field(
        None, description="Disk folder of the object store, to check free space (dev: $CUSTODY_HOME/s3/data)"
    )
    s3_min_free_mb: int = Field(
        512, ge=0, description="Embedded SeaweedFS: disk kept free; uploads that would eat into it get 507"
    )

    # --- TLS and auth to Temporal, S3 and PostgreSQL ------------------------------------------------
    # PostgreSQL takes its TLS from CUSTODY_DATABASE_URL (`?sslmode=verify-full&sslrootcert=/ca.pem`).
    temporal_tls: bool | None = Field(
        None,
        description="TLS to Temporal: unset means on when a CA, client certificate, server name or API "
        "key is set; true alone trusts the system's CAs; false with any of those is refused",
    )
    temporal_ca_file: Path | None = Field(
        None, description="PEM CA bundle the Temporal frontend's certificate is checked against"
    )
    temporal_client_cert_file: Path | None = Field(
        None,
        description="PEM client certificate for mTLS to Temporal (with CUSTODY_TEMPORAL_CLIENT_KEY_FILE)",
    )
    temporal_client_key_file: Path | None = Field(
        None, description="PEM private key of the Temporal client certificate"
    )
    temporal_server_name: str | None = Field(
        None,
        description="Name the Temporal server certificate must carry, and the TLS SNI (default: the host)",
    )
    temporal_api_key: SecretStr | None = Field(
        None,
        description="Temporal Cloud API key, sent as `authorization: Bearer <key>` on each call; implies TLS",
    )
    s3_ca_file: Path | None = Field(
        None, description="PEM CA bundle the S3 endpoint's certificate is checked against (default: certifi)"
    )
    s3_region: str = Field("us-east-1", min_length=1, description="S3 region requests are signed for")

    # --- footage requests ------------------------------------------------------------------------
    program_name: str = Field(
        "Community Camera Program",
        max_length=120,
        description="What owners know the program as: named in emails and on the consent page",
    )
    time_zone: str = Field(
        "America/New_York",
        description="The program's IANA time zone: every time a person reads or types is in it",
    )
    pull_max_attempts: int = Field(
        5, ge=1, le=100, description="Tries of an integrated camera's pull before the request fails"
    )
    pull_timeout_s: float = Field(
        30, gt=0, le=600, description="How long a recorder may take to connect or to send the next bytes"
    )
    pull_retry_interval_s: float = Field(
        2, gt=0, le=600, description="Wait before the second try of a failed pull (doubling each try)"
    )
    pull_max_duration_s: float = Field(
        3600, gt=0, description="Longest a whole pull may take, however steadily the recorder sends"
    )
    pull_allowed_networks: Annotated[list[IPv4Network | IPv6Network] | None, NoDecode] = Field(
        None,
        description=(
            "Private, loopback and link-local networks an integrated camera's pull URL may reach, "
            "comma-separated CIDRs; default none, except 127.0.0.0/8 in dev mode"
        ),
    )
    consent_ttl_s: int = Field(604800, ge=1, description="How long an owner may answer a request")
    reminders_s: Annotated[list[int], NoDecode] = Field(
        default_factory=lambda: [86400, 259200],
        description="Reminder offsets from the first notice, comma-separated seconds",
    )
    max_radius_m: float = Field(1000, gt=0, description="Largest alert / search radius in metres")
    max_window_s: int = Field(86400, gt=0, description="Longest footage window of an alert")
    max_file_bytes: int = Field(4 * 1024**3, gt=0, description="Largest single uploaded file")
    activity_heartbeat_s: int = Field(
        60, ge=1, description="Heartbeat timeout of long activities: how soon a dead worker's work is retried"
    )
    # --- working copies (custody/workcopy.py, activities/workcopy.py) ---------------------------
    ffmpeg_path: str = Field("ffmpeg", description="ffmpeg that makes working copies (Debian's)")
    ffprobe_path: str = Field("ffprobe", description="ffprobe that reads a master's container facts")
    workcopy_timeout_s: int = Field(
        3600, ge=1, description="Longest ffmpeg run for one working copy; past it the copy is not made"
    )

    # --- incidents from a crime center's CAD/RTCC system (POST /incidents) -----------------------
    # draft: an incident opens (or finds) its case and nothing is sent; an investigator decides.
    # send: a new incident's case also starts an alert at once, within the stricter limits below
    # (never wider than max_radius_m / max_window_s): the sender is a machine, not an investigator.
    incident_policy: Literal["draft", "send"] = Field("draft", description="draft | send")
    incident_radius_m: float = Field(150, gt=0, description="Radius of an alert started by an incident")
    incident_window_s: int = Field(
        1800, gt=0, description="Footage window of an incident's alert, centred on occurred_at"
    )
    tus_expiry_s: float = Field(
        86400,
        gt=0,
        description="A resumable upload not resumed this long is ended by the sweeper (nothing kept)",
    )

    # --- consent basis (docs/bundle.md) --------------------------------------------------------------
    # The version of the terms an owner accepts on the consent page and an integrated camera's owner
    # agreed to; bound in the `consent_given` and `camera_approved` ledger entries' facts.
    consent_terms_version: str = Field(
        "2026-11", min_length=1, max_length=40, description="Version of the program's consent terms"
    )

    # --- web console and residents ----------------------------------------------------------------
    session_ttl_s: int = Field(28800, ge=60, description="Lifetime of a web console or resident session")
    cookie_secure: bool | None = Field(
        None, description="Mark session cookies Secure (default: when the public URL is https)"
    )
    map_tile_url: str = Field(
        "",
        description="Map tile URL template ({z}/{x}/{y}); empty: maps show pins on a plain grid, no tiles",
    )
    map_attribution: str = Field("", description="Attribution shown under the map tiles")
    map_center: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [38.9072, -77.0369], description="Map centre 'lat,lon' when nothing is set"
    )
    terms_version: str = Field("2026-11", description="Version of the program terms residents accept")
    signup_link_ttl_s: int = Field(
        86400, ge=60, description="Lifetime of a resident's email confirmation link"
    )
    login_link_ttl_s: int = Field(900, ge=60, description="Lifetime of a resident's emailed sign-in link")
    signup_max_per_email: int = Field(3, ge=1, description="Sign-ups / sign-in links per address per window")
    signup_max_per_client: int = Field(
        10, ge=1, description="Sign-ups / sign-in links per client IP per window"
    )
    signup_window_s: int = Field(3600, ge=1, description="Window of the sign-up throttle")
    share_max_days: int = Field(
        180, ge=1, description="Longest a case may be shared before it must be renewed"
    )
    report_rate_per_min: int = Field(
        30, ge=1, description="Custody reports and bundles one user may generate per minute"
    )

    # --- observability: logs, metrics, health ----------------------------------------------------
    log_format: LogFormat | None = Field(
        None,
        description="Log lines as json (one object a line, with request, case and workflow ids) or text; "
        "default json, except text in dev mode",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="Bearer token GET /metrics requires; unset: /metrics is open in dev mode and refused "
        "(403) in any other mode",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", description="Address the worker's Prometheus endpoint binds to (0.0.0.0 in a container)"
    )
    worker_metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Port of the worker's Prometheus endpoint (Temporal SDK and custody worker metrics); "
        "0: off",
    )

    # --- embedded launcher -----------------------------------------------------------------------
    demo_users: bool = Field(True, description="Create one demo user per role in dev mode")

    @field_validator("reminders_s", mode="before")
    @classmethod
    def _parse_reminders(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                return [int(p) for p in parts]
            except ValueError as exc:
                raise ValueError(
                    f"CUSTODY_REMINDERS_S must be comma-separated whole seconds, got {value!r}"
                ) from exc
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _parse_proxies(cls, value: object) -> object:
        import ipaddress

        if isinstance(value, str):
            value = [p.strip() for p in value.split(",") if p.strip()]
        if isinstance(value, list):
            for item in value:
                try:
                    ipaddress.ip_network(str(item), strict=False)
                except ValueError as exc:
                    raise ValueError(
                        f"CUSTODY_TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs; "
                        f"{item!r} is neither"
                    ) from exc
        return value

    @field_validator("ledger_previous_keys", mode="before")
    @classmethod
    def _parse_previous_keys(cls, value: object) -> object:
        from custody.ledger.note import NoteError, parse_verifier

        if isinstance(value, str):
            value = [k.strip() for k in value.split(",") if k.strip()]
        if isinstance(value, list):
            for item in value:
                try:
                    parse_verifier(str(item))
                except NoteError as exc:
                    raise ValueError(
                        f"CUSTODY_LEDGER_PREVIOUS_KEYS must be comma-separated verifier keys "
                        f"(<name>+<key id hex>+<base64 key>, as GET /ledger/public-key printed them): {exc}"
                    ) from exc
        return value

    @field_validator("pull_allowed_networks", mode="before")
    @classmethod
    def _parse_networks(cls, value: object) -> object:
        if isinstance(value, str | list | tuple):
            from custody.netpolicy import parse_networks

            return parse_networks(value)
        return value

    @field_validator("retention_classes", mode="after")
    @classmethod
    def _check_classes(cls, value: dict[str, int]) -> dict[str, int]:
        out: dict[str, int] = {}
        for name, days in value.items():
            key = name.strip().lower()
            if not key or days < 1:
                raise ValueError(
                    f"CUSTODY_RETENTION_CLASSES maps a category to whole days >= 1; {name!r}: {days!r} is not"
                )
            out[key] = days
        return out

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from custody.localtime import zone

        zone(value)  # ValueError naming the setting when unknown
        return value

    @field_validator("map_center", mode="before")
    @classmethod
    def _parse_center(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return [float(p) for p in value.split(",")]
            except ValueError as exc:
                raise ValueError(f"CUSTODY_MAP_CENTER must be 'lat,lon', got {value!r}") from exc
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Values given in code, then secrets from `CUSTODY_<NAME>_FILE`, then the environment."""
        return init_settings, SecretFiles(settings_cls), env_settings, dotenv_settings, file_secret_settings

    @model_validator(mode="after")
    def _normalise_secrets(self) -> Settings:
        """An empty secret is an unset one (compose passes `VAR=` as ''); a PEM given on one line
        with `\\n` escapes gets its newlines back, whichever secret it is."""
        for name in secret_field_names():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                setattr(self, name, normalise_secret(value.get_secret_value()))
        return self

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if (self.temporal_client_cert_file is None) != (self.temporal_client_key_file is None):
            raise ValueError(
                "CUSTODY_TEMPORAL_CLIENT_CERT_FILE and CUSTODY_TEMPORAL_CLIENT_KEY_FILE go together: "
                "set both for mTLS, or neither"
            )
        if self.temporal_tls is False and self._temporal_tls_asked:
            raise ValueError(
                "CUSTODY_TEMPORAL_TLS=false, but a Temporal CA, client certificate, server name or API key "
                "is set, and those only work over TLS: unset CUSTODY_TEMPORAL_TLS or the others"
            )
        if self.s3_ca_file is not None and not self.s3_secure:
            raise ValueError(
                "CUSTODY_S3_CA_FILE is set but CUSTODY_S3_SECURE is false, so the CA would never be used: "
                "set CUSTODY_S3_SECURE=true for https to the object store"
            )
        if any(r <= 0 for r in self.reminders_s):
            raise ValueError("CUSTODY_REMINDERS_S offsets must be positive")
        if len(self.map_center) != 2:
            raise ValueError("CUSTODY_MAP_CENTER must be 'lat,lon'")
        if self.mode == "production" and self.retention_day_s != 86400:
            raise ValueError(
                "CUSTODY_RETENTION_DAY_S shortens every retention (it is for tests); unset it in production"
            )
        self._check_smtp()
        self._check_tsa()
        return self

    def _check_smtp(self) -> None:
        """Mail settings that cannot work together, or would send a password in plain text."""
        if self.smtp_timeout_s >= EMAIL_ACTIVITY_TIMEOUT_S:
            raise ValueError(
                f"CUSTODY_SMTP_TIMEOUT_S={self.smtp_timeout_s:g} must be below "
                f"{EMAIL_ACTIVITY_TIMEOUT_S:g} s, the notice activity's start-to-close timeout: a send "
                "must fail (and be retried) before Temporal gives up on the activity"
            )
        if bool(self.smtp_username) != (self.smtp_password is not None):
            raise ValueError(
                "CUSTODY_SMTP_USERNAME and CUSTODY_SMTP_PASSWORD go together: set both for SMTP AUTH, "
                "or neither"
            )
        if self.smtp_security == "none" and self.smtp_ca_file is not None:
            raise ValueError(
                "CUSTODY_SMTP_CA_FILE is set but CUSTODY_SMTP_SECURITY is none, so it would never be used; "
                "set CUSTODY_SMTP_SECURITY to starttls or tls"
            )
        if self.mode == "production" and self.smtp_security == "none" and self.smtp_username:
            # The one combination refused: a password readable on the wire. Plain SMTP without AUTH
            # stays allowed for a relay on the same host or private network (a sidecar MTA, compose's
            # Mailpit), which is a deployment choice, not a leak of custody's credentials.
            raise ValueError(
                "CUSTODY_SMTP_USERNAME is set with CUSTODY_SMTP_SECURITY=none: the password would cross "
                "the network in plain text. Set CUSTODY_SMTP_SECURITY=starttls (port 587) or tls (465)"
            )

    def _check_tsa(self) -> None:
        """Timestamp settings that cannot work together, or would send a password in plain text."""
        url = self.tsa_url or ""
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"CUSTODY_TSA_URL must be an http:// or https:// URL, got {url!r}")
        if bool(self.tsa_username) != (self.tsa_password is not None):
            raise ValueError(
                "CUSTODY_TSA_USERNAME and CUSTODY_TSA_PASSWORD go together: set both, or neither"
            )
        if (self.tsa_username or self.tsa_ca_file) and not url:
            raise ValueError("CUSTODY_TSA_USERNAME / CUSTODY_TSA_CA_FILE are set but CUSTODY_TSA_URL is not")
        if self.tsa_ca_file is not None and not url.startswith("https://"):
            raise ValueError(
                "CUSTODY_TSA_CA_FILE is set but CUSTODY_TSA_URL is not https://, so it is unused"
            )
        if self.mode == "production" and self.tsa_username and not url.startswith("https://"):
            # Timestamp replies are signed, so plain http is normal for a TSA; a password is not.
            raise ValueError(
                "CUSTODY_TSA_USERNAME is set with an http:// CUSTODY_TSA_URL: the password would cross "
                "the network in plain text. Use the TSA's https:// URL"
            )

    # --- derived ---------------------------------------------------------------------------------
    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'custody.db').resolve()}"

    @property
    def admitted_requests(self) -> int:
        """Requests served at once: `api_concurrency`, but never more than the database pool holds
        (2 x CUSTODY_DB_POOL_SIZE) less a few for the ledger, checkpoints and streams."""
        return max(1, min(self.api_concurrency, 2 * self.db_pool_size - 4))

    @property
    def store_dir(self) -> Path | None:
        """Where the object store keeps its bytes, when custody can see that disk."""
        if self.s3_data_dir is not None:
            return self.s3_data_dir
        return self.home / "s3" / "data" if self.mode == "dev" else None

    @property
    def tz(self) -> ZoneInfo:
        """The program's zone (CUSTODY_TIME_ZONE)."""
        from custody.localtime import zone

        return zone(self.time_zone)

    @property
    def pull_networks(self) -> list[IPv4Network | IPv6Network]:
        """Where pulls may go besides public addresses (CUSTODY_PULL_ALLOWED_NETWORKS): when unset,
        nowhere, except the local machine in dev mode (the demo recorder runs there)."""
        if self.pull_allowed_networks is not None:
            return list(self.pull_allowed_networks)
        return [IPv4Network("127.0.0.0/8")] if self.mode == "dev" else []

    @property
    def logs_as(self) -> LogFormat:
        """CUSTODY_LOG_FORMAT, or json outside dev mode and text in it (`make run` stays readable)."""
        if self.log_format is not None:
            return self.log_format
        return "text" if self.mode == "dev" else "json"

    @property
    def api_url(self) -> str:
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def base_url(self) -> str:
        return (self.public_url or self.api_url).rstrip("/")

    @property
    def https(self) -> bool:
        """Whether people reach custody over https (then browsers are told to keep to it: HSTS)."""
        return self.base_url.startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.base_url.startswith("https://")

    @property
    def temporal_address(self) -> str:
        return f"{self.temporal_host}:{self.temporal_port}"

    @property
    def _temporal_tls_asked(self) -> bool:
        return any(
            v is not None
            for v in (
                self.temporal_ca_file,
                self.temporal_client_cert_file,
                self.temporal_server_name,
                self.temporal_api_key,
            )
        )

    @property
    def temporal_uses_tls(self) -> bool:
        """Whether the Temporal client speaks TLS (CUSTODY_TEMPORAL_TLS, else implied by the others)."""
        if self.temporal_tls is not None:
            return self.temporal_tls
        return self._temporal_tls_asked

    @property
    def s3_endpoint(self) -> str:
        return f"{self.s3_host}:{self.s3_port}"

    def secret(self, field: str) -> str:
        """The plain value of a secret setting; ConfigurationError when it was never set."""
        value = getattr(self, field)
        if value is None:
            env = f"CUSTODY_{field.upper()}"
            raise ConfigurationError(f"{env} is not set; set it (or {env}_FILE) in the environment.")
        return str(value.get_secret_value())

    def require_secrets(self) -> None:
        """Raise a ConfigurationError naming every missing secret (called outside dev mode)."""
        missing = [env for env, field in SECRET_FIELDS.items() if getattr(self, field) is None]
        if missing:
            raise ConfigurationError(
                f"custody is running in {self.mode!r} mode and these secrets are not set: "
                f"{', '.join(missing)}. Set them in the environment, or each as a file named by "
                "<VARIABLE>_FILE (or use CUSTODY_MODE=dev for a local stack with generated secrets)."
            )

    def require_production(self) -> None:
        """What production mode refuses, each with what to do instead: no database named (it would
        be a SQLite file in the working folder), SQLite without CUSTODY_ALLOW_SQLITE, and any key
        the embedded stack generated into `$CUSTODY_HOME/secrets.json` (a key that has sat in a dev
        folder is no signing key for evidence)."""
        if not self.database_url:
            raise ConfigurationError(
                "CUSTODY_DATABASE_URL is not set: production mode needs a database named, e.g. "
                "postgresql://custody:PASSWORD@db.example.org:5432/custody (it does not fall back to a "
                "SQLite file)."
            )
        if self.database_url.startswith("sqlite") and not self.allow_sqlite:
            raise ConfigurationError(
                "CUSTODY_DATABASE_URL is a SQLite database, which production mode refuses: use "
                "PostgreSQL, or set CUSTODY_ALLOW_SQLITE=true for a single machine running one API and "
                "one worker."
            )
        generated_file = self.home / "secrets.json"
        if generated_file.is_file():
            try:
                generated = json.loads(generated_file.read_text())
            except (OSError, ValueError):
                generated = {}
            reused = [
                f"CUSTODY_{name.upper()}"
                for name in secret_field_names()
                if isinstance(getattr(self, name), SecretStr)
                and isinstance(generated.get(name), str)
                and normalise_secret(generated[name]) == getattr(self, name)
            ]
            if reused:
                raise ConfigurationError(
                    f"{', '.join(reused)} equal{'s' if len(reused) == 1 else ''} a key the embedded stack "
                    f"generated into {generated_file}; production mode refuses generated keys: make "
                    "new ones for production (see README, 'Running in production')."
                )


def secret_field_names() -> list[str]:
    """Every secret setting: each field typed SecretStr (those added later included)."""
    return [
        name
        for name, info in Settings.model_fields.items()
        if info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation)
    ]


def normalise_secret(value: str) -> SecretStr | None:
    """'' -> None; a one-line PEM with literal `\\n` escapes -> the PEM with real newlines."""
    if not value.strip():
        return None
    if "-----BEGIN" in value and "\\n" in value:
        value = value.replace("\\r\\n", "\n").replace("\\n", "\n")
    return SecretStr(value)


class SecretFiles(PydanticBaseSettingsSource):
    """`CUSTODY_<NAME>_FILE=/run/secrets/...` for every secret field: the file's content (surrounding
    whitespace stripped, so `echo key > file` works) is the value. Setting both the variable and its
    _FILE is an error naming both: which one wins would otherwise be a guess."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads every field at once

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        values: dict[str, Any] = {}
        for name in secret_field_names():
            var = f"CUSTODY_{name.upper()}"
            path = env.get(f"{var}_FILE", "").strip()
            if not path:
                continue
            if env.get(var, "").strip():
                raise ConfigurationError(
                    f"both {var} and {var}_FILE are set; set only one (the file, to keep the secret out "
                    "of the environment)."
                )
            try:
                values[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigurationError(
                    f"{var}_FILE names {path}, which cannot be read ({exc.strerror or exc}): mount the "
                    "secret there or correct the path."
                ) from exc
        return values


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; in dev mode fill missing secrets from `$CUSTODY_HOME`.

    Outside dev mode a missing secret raises ConfigurationError: custody never runs in production
    with a key somebody else could also have.
    """
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if settings.mode == "dev":
        from custody.devsecrets import ensure_dev_secrets

        generated = ensure_dev_secrets(settings.home)
        for field in SECRET_FIELDS.values():
            if getattr(settings, field) is None:
                setattr(settings, field, SecretStr(generated[field]))
    settings.require_secrets()
    if settings.mode == "production":
        settings.require_production()
    return settings
