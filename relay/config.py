"""Typed configuration: embedded defaults, a TOML file over them, CLI overrides on top.

The dataclass defaults are the embedded defaults, so the server starts with no file at
all; relay/default.toml (`callguard config --default`) spells the same values out for a supervisor to copy and edit
(a test keeps the two equal). Validation names the offending key, because a supervisor
editing a file needs to know which line to fix.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from moderation.check_combination import CombinationConfig
from moderation.classifier_config import ClassifierConfig
from moderation.keyword_config import KeywordConfig
from moderation.policy import PolicyConfig
from moderation.stt_config import SttConfig
from moderation.stt_tier_config import SttTierConfig
from moderation.text_model_config import TextModelConfig


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    # Base URL for invite links handed to customers; empty derives it from the request.
    public_url: str = ""
    data_dir: str = "callguard-data"
    tls_cert: str = ""
    tls_key: str = ""
    max_body_bytes: int = 262144
    # /metrics: empty serves it to loopback clients only; set, it needs
    # "Authorization: Bearer <metrics_token>" (from anywhere, loopback too).
    metrics_token: str = ""
    # A request body not fully received this many seconds after its headers gets 408
    # (a client sending a byte at a time would otherwise hold its connection for ever).
    body_timeout_s: float = 10.0
    # Reverse proxies (addresses or networks) whose X-Forwarded-For/-Proto/-Host are
    # believed; from anyone else those headers are ignored.
    trusted_proxies: list[str] = field(default_factory=list)

    def validate(self) -> None:
        _check_range("server.port", self.port, 0, 65535)
        _check_range("server.max_body_bytes", self.max_body_bytes, 1024, 16 * 1024 * 1024)
        _check_range("server.body_timeout_s", self.body_timeout_s, 0.5, 300.0)
        for network in self.trusted_proxies:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"server.trusted_proxies: {network!r} is not an address or network") from None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("server.tls_cert and server.tls_key must be set together")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("server.public_url must start with http:// or https://")


@dataclass(frozen=True)
class AuthConfig:
    session_ttl_s: int = 12 * 3600
    # scrypt cost; 2**14 takes ~50 ms here, slow enough against guessing, fast for sign-in.
    scrypt_n: int = 2**14
    # How often expired sessions are deleted from the database.
    session_purge_interval_s: float = 600.0
    # Passwords set from now on: at least this long, and not on the shipped list of
    # common passwords (relay/web/common_passwords.txt).
    password_min_length: int = 12
    # Sign-in back-off: after this many failures in a row for one account (or, more
    # loosely, from one client address: an office shares one), each further attempt must
    # wait backoff_base_s, doubling per failure up to backoff_max_s (429 + Retry-After).
    account_free_failures: int = 3
    address_free_failures: int = 10
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    # After this many failures in a row the account is locked until a supervisor runs
    # `callguard users unlock NAME` (0: never lock).
    lockout_after: int = 10
    # How often an open events WebSocket checks that its session still stands: a session
    # revoked (or its account disabled), by the console or the CLI, is closed this soon.
    session_recheck_s: float = 2.0

    def validate(self) -> None:
        _check_range("auth.session_ttl_s", self.session_ttl_s, 60, 30 * 24 * 3600)
        if self.scrypt_n < 2**10 or self.scrypt_n & (self.scrypt_n - 1):
            raise ConfigError("auth.scrypt_n must be a power of two >= 1024")
        _check_range("auth.session_purge_interval_s", self.session_purge_interval_s, 1.0, 24 * 3600.0)
        _check_range("auth.password_min_length", self.password_min_length, 12, 1024)
        _check_range("auth.account_free_failures", self.account_free_failures, 1, 100)
        _check_range("auth.address_free_failures", self.address_free_failures, 1, 1000)
        _check_range("auth.backoff_base_s", self.backoff_base_s, 0.01, 60.0)
        _check_range("auth.backoff_max_s", self.backoff_max_s, self.backoff_base_s, 24 * 3600.0)
        _check_range("auth.lockout_after", self.lockout_after, 0, 1000)
        _check_range("auth.session_recheck_s", self.session_recheck_s, 0.1, 60.0)


@dataclass(frozen=True)
class CallsConfig:
    max_concurrent: int = 32
    # Calls not yet ended that one counselor may hold at once (429 beyond).
    max_per_counselor: int = 3
    # How long an unused invite works: the lifetime of a call nobody joined.
    invite_ttl_s: int = 900
    # A peer that has not reached 'connected' this long after its offer is closed.
    connect_timeout_s: float = 20.0
    # A call with no connected peer for this long is ended.
    idle_timeout_s: float = 120.0
    # Event WebSockets open at once on one call, and on one token (a session or an
    # invite); one more is refused at the handshake with 429.
    max_sockets_per_call: int = 16
    max_sockets_per_token: int = 4
    # A side that has joined and then sends no audio this long is lost (a closed tab, a
    # dropped network): WebRTC's own consent check takes about 30 s to say so.
    lost_after_s: float = 5.0
    # A lost side has this long to come back (reload, network change) before the call ends
    # by itself (reason customer_lost or counselor_lost).
    lost_grace_s: float = 30.0

    def validate(self) -> None:
        _check_range("calls.max_concurrent", self.max_concurrent, 1, 1000)
        _check_range("calls.max_per_counselor", self.max_per_counselor, 1, 1000)
        _check_range("calls.max_sockets_per_call", self.max_sockets_per_call, 1, 1000)
        _check_range("calls.max_sockets_per_token", self.max_sockets_per_token, 1, 100)
        _check_range("calls.invite_ttl_s", self.invite_ttl_s, 5, 7 * 24 * 3600)
        _check_range("calls.connect_timeout_s", self.connect_timeout_s, 1.0, 300.0)
        _check_range("calls.idle_timeout_s", self.idle_timeout_s, 1.0, 24 * 3600.0)
        _check_range("calls.lost_after_s", self.lost_after_s, 1.0, 300.0)
        _check_range("calls.lost_grace_s", self.lost_grace_s, 0.0, 3600.0)


@dataclass(frozen=True)
class DelayConfig:
    delay_s: float = 1.5
    # What plays when audio reaches playout before moderation has cleared it.
    undecided_policy: Literal["play", "mute"] = "play"
    mute_sound: Literal["silence", "beep"] = "silence"
    fade_ms: float = 5.0
    # Room in the buffer beyond the delay, for jitter and bursts.
    jitter_margin_s: float = 1.0
    # A pts step this far from where the stream should be is a new timeline, not loss.
    reanchor_threshold_s: float = 2.0
    # Largest playout rate correction for sender clock drift (parts per million).
    drift_max_ppm: float = 2000.0
    # The elastic delay (relay/media/elastic.py): while a decision on audio about to play is
    # pending, playout slows, pitch kept, so the delay grows up to max_s; in the customer's
    # pauses it shortens silence (never speech) back to delay_s. max_s <= delay_s: fixed.
    max_s: float = 2.0
    # Slowest playout rate while stretching (0.8 = 20 % slower: the delay grows 0.2 s/s).
    stretch_min_rate: float = 0.8
    # Stretch when audio that is not yet judged (or provisionally muted) is this close to playout.
    stretch_lead_s: float = 0.6
    # Fastest playout through a pause while catching up (2.0: a second of pause in 0.5 s).
    catchup_rate: float = 2.0
    # Audio quieter than this (peak, dB full scale) is a pause: catch-up may shorten it, and
    # a decision pending over it does not slow playout (there is nothing to silence).
    pause_gate_dbfs: float = -45.0

    def validate(self) -> None:
        _check_range("delay.delay_s", self.delay_s, 0.0, 30.0)
        _check_range("delay.max_s", self.max_s, 0.0, 30.0)
        _check_range("delay.stretch_min_rate", self.stretch_min_rate, 0.5, 1.0)
        _check_range("delay.stretch_lead_s", self.stretch_lead_s, 0.0, 5.0)
        _check_range("delay.catchup_rate", self.catchup_rate, 1.0, 4.0)
        _check_range("delay.pause_gate_dbfs", self.pause_gate_dbfs, -96.0, 0.0)
        _check_range("delay.fade_ms", self.fade_ms, 0.0, 50.0)
        _check_range("delay.jitter_margin_s", self.jitter_margin_s, 0.1, 10.0)
        _check_range("delay.reanchor_threshold_s", self.reanchor_threshold_s, 0.2, 60.0)
        _check_range("delay.drift_max_ppm", self.drift_max_ppm, 0.0, 20000.0)


ESCALATION_SOURCES = ("keyword", "classifier", "manual", "undecided")


@dataclass(frozen=True)
class EscalationConfig:
    # Abuse spans (mutes whose audio was silenced, not lifted) before the customer hears
    # the warning prompt; 0 never warns.
    warn_after: int = 3
    # Abuse spans before the limit: the call ends, or the counselor is offered to end it; 0: no limit.
    end_after: int = 6
    # At the limit: "end" ends the call (reason "abuse"); "offer" shows the counselor an
    # "End and report" button (reason "abuse_reported").
    on_limit: Literal["end", "offer"] = "end"
    # Which mutes count as abuse: the checks' sources by default; "manual" (a counselor's
    # dump or hold) is left out, since a counselor may mute a noise, not abuse.
    sources: list[str] = field(default_factory=lambda: ["keyword", "classifier"])
    # The warning the customer hears, a WAV file (any rate, mono or stereo); empty: the
    # Korean prompt shipped with the server.
    prompt: str = ""
    prompt_gain: float = 1.0

    def validate(self) -> None:
        _check_range("escalation.warn_after", self.warn_after, 0, 1000)
        _check_range("escalation.end_after", self.end_after, 0, 1000)
        _check_range("escalation.prompt_gain", self.prompt_gain, 0.0, 4.0)
        if self.warn_after and self.end_after and self.end_after < self.warn_after:
            raise ConfigError("escalation.end_after must not be below escalation.warn_after")
        for source in self.sources:
            if source not in ESCALATION_SOURCES:
                raise ConfigError(f"escalation.sources: {source!r} is not one of {', '.join(ESCALATION_SOURCES)}")


@dataclass(frozen=True)
class RetentionConfig:
    # Calls that ended longer ago than this are purged with their recordings, words,
    # decisions, marks and replays (0 keeps them for ever). The access log stays.
    days: int = 90
    # How often the server purges (0: only `callguard calls purge` does).
    purge_interval_s: float = 3600.0

    def validate(self) -> None:
        _check_range("retention.days", self.days, 0, 36500)
        _check_range("retention.purge_interval_s", self.purge_interval_s, 0.0, 7 * 24 * 3600.0)


@dataclass(frozen=True)
class IceServer:
    urls: list[str] = field(default_factory=list)
    username: str = ""
    credential: str = ""

    def validate(self, key: str) -> None:
        if not self.urls:
            raise ConfigError(f"{key}.urls must name at least one stun: or turn: URL")
        for url in self.urls:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ConfigError(f"{key}.urls: {url!r} is not a stun:, turn: or turns: URL")


@dataclass(frozen=True)
class WebRTCConfig:
    ice_servers: list[IceServer] = field(default_factory=list)
    # Local addresses the server gathers ICE candidates on; empty means every
    # non-loopback interface (aioice's default). Tests set ["127.0.0.1"].
    interfaces: list[str] = field(default_factory=list)
    # Remote ICE candidates outside these networks are dropped; empty keeps all.
    remote_networks: list[str] = field(default_factory=list)
    # Milliseconds of audio per packet of the delayed stream to the counselor (20, 40 or
    # 60). Longer packets cost less to send (relay/webrtc/tracks.py); a packet's later
    # frames are judged when its first plays, up to ptime - 20 ms before they play.
    delayed_ptime_ms: Literal[20, 40, 60] = 60
    # Milliseconds of audio per packet the server asks both browsers to send (a=ptime in
    # its answer). 60 ms packets are a third of the receives, SRTP decryptions, decodes
    # and forwards of 20 ms ones, the largest share of a call's media cost after the codec
    # itself; the counselor's voice to the customer waits 40 ms longer for its packet to
    # fill, against the 80 ms the server no longer holds it (relay/webrtc/rtp_tap.py). A
    # lost 60 ms packet is a longer gap to conceal: lossy networks may want 20.
    uplink_ptime_ms: Literal[20, 40, 60] = 60

    def validate(self) -> None:
        for i, server in enumerate(self.ice_servers):
            server.validate(f"webrtc.ice_servers[{i}]")
        for address in self.interfaces:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"webrtc.interfaces: {address!r} is not an IP address") from None
        for network in self.remote_networks:
            try:
                ipaddress.ip_network(network)
            except ValueError:
                raise ConfigError(f"webrtc.remote_networks: {network!r} is not a network") from None


@dataclass(frozen=True)
class DatabaseConfig:
    # Empty: SQLite in server.data_dir (one machine). "postgresql://USER@HOST:PORT/DB": the
    # call log, accounts and sessions shared by every relay node (the `cluster` extra).
    url: str = ""
    # Statements run on a thread of their own (relay/records/db_thread.py). Writes wait in
    # a queue of at most queue_max; past that they spill to a file in server.data_dir and
    # are applied once the database catches up (nothing is dropped).
    queue_max: int = 50_000
    # A request that reads (sign-in, a session, QA) gives up after this long: 503.
    read_timeout_s: float = 10.0
    # At shutdown, how long queued writes may take; what is left is spilled for the next start.
    close_timeout_s: float = 10.0

    def validate(self) -> None:
        if self.url and not self.url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("database.url must be empty (SQLite) or a postgresql:// URL")
        _check_range("database.queue_max", self.queue_max, 1, 10_000_000)
        _check_range("database.read_timeout_s", self.read_timeout_s, 0.1, 300.0)
        _check_range("database.close_timeout_s", self.close_timeout_s, 0.0, 600.0)


@dataclass(frozen=True)
class RecordingsConfig:
    # "folder": recordings stay under server.data_dir/calls (for several nodes, a volume they
    # all mount). "s3": written there while the call runs, uploaded to an S3-compatible
    # store once it ends (the `s3` extra), the local copy kept until the upload succeeds.
    backend: str = "folder"
    # The store's URL (https://s3.REGION.amazonaws.com, http://minio:9000); empty: AWS's own.
    endpoint: str = ""
    bucket: str = ""
    prefix: str = ""  # object keys are PREFIX + calls/<call_id>/<stream>.opus
    region: str = ""
    # Empty: the environment's (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the machine's role.
    access_key_id: str = ""
    secret_access_key: str = ""
    # How often ended calls are uploaded, and failed uploads tried again.
    upload_interval_s: float = 5.0

    def validate(self) -> None:
        if self.backend not in ("folder", "s3"):
            raise ConfigError('recordings.backend must be "folder" or "s3"')
        if self.backend == "s3" and not self.bucket:
            raise ConfigError('recordings.backend = "s3" needs recordings.bucket')
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError("recordings.endpoint must be an http:// or https:// URL")
        _check_range("recordings.upload_interval_s", self.upload_interval_s, 0.1, 3600.0)


@dataclass(frozen=True)
class ClusterConfig:
    # This relay node's name, in every call id it makes (c_NAME.TOKEN); empty: one machine.
    node: str = ""
    # Where the other nodes reach this one (signalling for its calls is proxied there);
    # empty: http://server.host:server.port.
    url: str = ""
    # How often the node says it is alive in the shared database, and how long the others
    # wait after its last word before ending its calls as node_lost.
    heartbeat_s: float = 2.0
    dead_after_s: float = 10.0

    def validate(self) -> None:
        if self.node and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,30}", self.node):
            raise ConfigError("cluster.node must be lower-case letters, digits and '-' (at most 31)")
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ConfigError("cluster.url must start with http:// or https://")
        _check_range("cluster.heartbeat_s", self.heartbeat_s, 0.1, 60.0)
        _check_range("cluster.dead_after_s", self.dead_after_s, 2 * self.heartbeat_s, 3600.0)


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    calls: CallsConfig = field(default_factory=CallsConfig)
    delay: DelayConfig = field(default_factory=DelayConfig)
    escalation: EscalationConfig = field(default_factory=EscalationConfig)
    webrtc: WebRTCConfig = field(default_factory=WebRTCConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    stt_tier: SttTierConfig = field(default_factory=SttTierConfig)
    keywords: KeywordConfig = field(default_factory=KeywordConfig)
    text_model: TextModelConfig = field(default_factory=TextModelConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    checks: CombinationConfig = field(default_factory=CombinationConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    def validate(self) -> Config:
        for f in dataclasses.fields(self):
            try:
                getattr(self, f.name).validate()
            except ConfigError:
                raise
            except ValueError as exc:  # moderation/ reports with ValueError: it cannot import us
                raise ConfigError(str(exc)) from None
        return self

    def with_overrides(self, host: str | None = None, port: int | None = None, delay: float | None = None) -> Config:
        server = self.server
        if host is not None:
            server = dataclasses.replace(server, host=host)
        if port is not None:
            server = dataclasses.replace(server, port=port)
        delay_cfg = self.delay if delay is None else dataclasses.replace(self.delay, delay_s=delay)
        return dataclasses.replace(self, server=server, delay=delay_cfg).validate()

    def with_changes(self, section: str, changes: dict[str, Any]) -> Config:
        """This config with some settings of one section changed, each checked as the config
        file's are (its type, allowed values and range): ConfigError names the first bad one."""
        current = getattr(self, section)
        raw = {**{f.name: getattr(current, f.name) for f in dataclasses.fields(current)}, **changes}
        return dataclasses.replace(self, **{section: _build(type(current), raw, f"{section}.")}).validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None) -> Config:
    """Embedded defaults, overlaid by the TOML file at `path` if given."""
    if path is None:
        return Config().validate()
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = parse_config(raw)
    here = Path(path)
    return dataclasses.replace(
        config,
        keywords=dataclasses.replace(config.keywords, lists_dir=_beside(here, config.keywords.lists_dir)),
        escalation=dataclasses.replace(config.escalation, prompt=_beside(here, config.escalation.prompt)),
        text_model=dataclasses.replace(config.text_model, model_dir=_beside(here, config.text_model.model_dir)),
    )


def _beside(config_file: Path, value: str) -> str:
    """A relative path written in a config file, taken from the file's folder: the server
    finds the lists, prompt or model named beside its config from any working directory."""
    if not value.strip() or Path(value).expanduser().is_absolute():
        return value
    return str(config_file.resolve().parent / Path(value))


def parse_config(raw: dict[str, Any]) -> Config:
    config: Config = _build(Config, raw, "")
    return config.validate()


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in names:
            raise ConfigError(f"unknown key {prefix}{key}")
    values = {name: _convert(hints[name], raw[name], f"{prefix}{name}") for name in names if name in raw}
    return cls(**values)


def _convert(hint: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, key + ".")
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, not {value!r}")
        return value
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list")
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        key_type, item = typing.get_args(hint)
        if key_type is not str or not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table")
        return {k: _convert(item, v, f'{key}."{k}"') for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: unsupported type")  # no optional fields by design
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, not {type(value).__name__}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, not {type(value).__name__}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not {type(value).__name__}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false")
        return value
    raise ConfigError(f"{key}: unsupported type {hint!r}")


def _check_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key} = {value} is out of range [{low}, {high}]")


DEFAULT_TOML = Path(__file__).resolve().parent / "default.toml"
