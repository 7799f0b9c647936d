"""A post's configuration: one TOML file, validated by pydantic with unknown keys refused.

Every error names the file and the key path (``lanes[1].scale.url``) so a technician can fix all of
them in one pass. Secrets never live in the file itself: the file names an environment variable or a
file that holds them, and :class:`pydantic.SecretStr` keeps them out of logs and reprs.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge.errors import ConfigError

_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""Ids become MQTT topic levels and file names: no '/', '+', '#', spaces."""



def _check_id(v: str) -> str:
    if not re.fullmatch(_ID, v):
        raise ValueError(
            f"{v!r} is not a valid id: use letters, digits, '-' and '_' only, at most 64 characters "
            "(ids become MQTT topic levels and file names)"
        )
    return v


Identifier = Annotated[str, AfterValidator(_check_id)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


CAMERA_SCHEMES = ("rtsp", "rtsps", "http", "https", "file", "synthetic", "usb")
SCALE_SCHEMES = ("socket", "rfc2217", "loop")


def check_camera_url(url: str) -> str:
    """Accept what :func:`drivers.camera.open_source` can open; reject the rest here, at load time."""
    if re.fullmatch(r"\d+", url) or re.fullmatch(r"/dev/video\d+", url):
        return url
    parts = urlsplit(url)
    if parts.scheme not in CAMERA_SCHEMES:
        raise ValueError(
            f"unsupported camera URL scheme {parts.scheme!r}: use one of "
            f"{', '.join(s + '://' for s in CAMERA_SCHEMES)}, /dev/videoN or a USB index"
        )
    if parts.scheme in ("rtsp", "rtsps", "http", "https") and not parts.hostname:
        raise ValueError(f"camera URL has no host: {redact_url(url)!r}")
    if parts.scheme == "file" and not (parts.path or parts.netloc):
        raise ValueError("file:// camera URL has no path")
    return url


def check_scale_url(url: str) -> str:
    """Local serial ports are paths; device servers are pyserial URLs with host and port."""
    if url.startswith("/"):
        return url
    if re.fullmatch(r"COM\d+", url):
        return url
    parts = urlsplit(url)
    if parts.scheme not in SCALE_SCHEMES:
        raise ValueError(
            f"unsupported scale URL {url!r}: use a device path (/dev/ttyUSB0) or one of "
            f"{', '.join(s + '://' for s in SCALE_SCHEMES)}"
        )
    if parts.scheme in ("socket", "rfc2217"):
        try:
            port = parts.port
        except ValueError as err:
            raise ValueError(f"scale URL has an invalid port: {url!r}") from err
        if not parts.hostname or port is None:
            raise ValueError(f"scale URL needs host:port: {url!r}")
    return url


def redact_url(url: str) -> str:
    """Drop user:password from a URL so it can be logged; cameras often carry credentials in RTSP URLs."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=f"***@{host}").geturl()


class SecretRef(_Model):
    """Where a secret comes from: an environment variable or a file (e.g. a systemd credential)."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file'")
        return self

    def resolve(self) -> SecretStr:
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError("environment", [("", f"environment variable {self.env} is not set")])
            return SecretStr(value)
        assert self.file is not None
        try:
            return SecretStr(self.file.read_text().strip())
        except OSError as err:
            raise ConfigError(str(self.file), [("", f"cannot read secret file: {err.strerror}")]) from err


class PostSection(_Model):
    id: Identifier
    name: str = ""
    timezone: str = "UTC"


class TLSSection(_Model):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_hostname: bool = False

    @model_validator(mode="after")
    def _pair(self) -> TLSSection:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class BrokerSection(_Model):
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    client_id: str | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    topic_prefix: str = "customs/v1"
    username: SecretRef | None = None
    password: SecretRef | None = None
    tls: TLSSection | None = None
    session_expiry_s: int = Field(7 * 24 * 3600, ge=0)
    max_inflight: int = Field(20, ge=1, le=1000)
    ack_timeout_s: float = Field(30.0, gt=0)

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v.startswith("/") or v.endswith("/") or any(c in v for c in "+#"):
            raise ValueError("topic_prefix must be like 'customs/v1' (no leading/trailing '/', no wildcards)")
        return v


class CameraSection(_Model):
    name: Identifier
    url: str
    role: Literal["front", "rear", "trailer", "container", "overview"] = Field(
        "front",
        description="front, rear, overview: its plate reads vote for the vehicle's plate; trailer: for "
        "the trailer's; container: none of them (a container side's print is no plate), only its "
        "container codes count",
    )
    read_fps: float = Field(5.0, gt=0, le=60, description="frames a second handed to the plate reader")
    far_rest_frames: int = Field(
        2, ge=0, le=100,
        description="after a frame in which even the full-resolution look for far plates read nothing, "
        "this many frames are read without it (0: every frame gets it); see edge.recognition.gating.FarLook",
    )
    stall_timeout_s: float = Field(5.0, gt=0)
    open_timeout_s: float = Field(10.0, gt=0)
    roi: tuple[float, float, float, float] | None = Field(
        None, description="x, y, w, h as fractions of the frame: where plates appear"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_camera_url(v)


class ScaleSection(_Model):
    url: str
    protocol: str = "ascii"
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: Literal[1, 2] = 1
    address: int | None = Field(None, ge=0, le=255, description="RS-485 address where the bus has several")
    unit: Literal["kg", "t", "lb"] = "kg"
    min_vehicle_weight: float = Field(500.0, gt=0, description="above this a vehicle is on the platform")
    max_capacity: float = Field(80000.0, gt=0)
    stable_window_s: float = Field(1.5, gt=0)
    stable_tolerance: float = Field(20.0, ge=0)
    zero_tolerance: float = Field(40.0, ge=0)
    mode: Literal["static", "axle"] = "static"
    axle_gap_s: float = Field(4.0, gt=0, description="axle mode: an empty platform this long ends the vehicle")
    silence_timeout_s: float = Field(3.0, gt=0, description="no frame this long: the indicator is gone")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_scale_url(v)

    @field_validator("protocol")
    @classmethod
    def _protocol(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9_-]+", v):
            raise ValueError("protocol names are lower-case words like 'ascii' or 'mettler-continuous'")
        return v


class CrossingSection(_Model):
    idle_gap_s: float = Field(3.0, gt=0, description="camera-only lanes: a plate unseen this long has left")
    pre_roll_s: float = Field(8.0, ge=0, description="plate reads this long before the scale saw weight count")
    post_roll_s: float = Field(2.0, ge=0)
    max_duration_s: float = Field(600.0, gt=0)


class LaneSection(_Model):
    id: Identifier
    cameras: list[CameraSection] = Field(min_length=1)
    scale: ScaleSection | None = None
    crossing: CrossingSection = CrossingSection()

    @model_validator(mode="after")
    def _unique_cameras(self) -> LaneSection:
        names = [c.name for c in self.cameras]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"camera names must be unique within a lane: {', '.join(dup)}")
        return self


class StorageSection(_Model):
    data_dir: Path
    retention_days: float = Field(90.0, gt=0)
    quota_mb: int = Field(20_000, gt=0)
    quota_alarm_fraction: float = Field(0.8, gt=0, lt=1)


class RecognitionSection(_Model):
    models_dir: Path | None = None
    threads: int = Field(2, ge=1, le=64)
    spin_us: int = Field(
        100, ge=0, le=10_000,
        description="microseconds an idle onnxruntime thread spins before it sleeps: long enough to bridge "
        "one operator to the next, short enough to leave the cores to the lanes between reads; 0 never spins "
        "(measure a post's CPU with ./dev bench spin)",
    )
    det_max_side: int = Field(
        1280, ge=320, le=4096,
        description="the longest side the detector sees a frame at when it looks for small, far plates "
        "(a smaller frame is enlarged to it, up to twice its size)",
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1,
        description="plates whose mean character probability is below this are not reported at all",
    )
    countries: list[str] = Field(default_factory=list, description="preferred countries first; empty: all")
    ignore_countries: list[str] = Field(
        default_factory=list,
        description="countries whose plates never come to this post: a plate of another country that fits one "
        "of their formats as misread is not taken for it (a German WEV O 785 for a Brazilian WEV 0785), and a "
        "text that fits only their formats is read without a country",
    )
    persian_plates: bool = Field(
        True,
        description="also read Iranian national plates (Persian digits and letter) with the fa-plate-rec model; "
        "off saves its time (1-7% of a dev photo's reading) where no Iranian vehicle comes",
    )

    @field_validator("countries", "ignore_countries")
    @classmethod
    def _known_countries(cls, v: list[str]) -> list[str]:
        from edge.recognition.syntax import table_countries

        codes = [c.strip().upper() for c in v]
        known = table_countries()
        unknown = sorted(set(codes) - known)
        if unknown:
            raise ValueError(f"no plate formats for {', '.join(unknown)} (country codes as in "
                             f"plate_syntaxes.toml: {', '.join(sorted(known))})")
        return codes

    @model_validator(mode="after")
    def _preferred_not_ignored(self) -> RecognitionSection:
        both = sorted(set(self.countries) & set(self.ignore_countries))
        if both:
            raise ValueError(f"countries and ignore_countries both name {', '.join(both)}")
        return self


class ScreeningSection(_Model):
    """How far a weighed truck may be from its declared gross weight before it is flagged."""

    weight_tolerance_pct: float = Field(5.0, ge=0, le=100)
    weight_tolerance_kg: float = Field(300.0, ge=0)


class CommandsSection(_Model):
    """HQ's public key for signed commands; with neither given, the post accepts no commands."""

    hq_public_key: str | None = Field(None, description="base64 of the raw Ed25519 key, or PEM")
    hq_public_key_file: Path | None = None
    max_clock_skew_s: float = Field(300.0, ge=0)

    @model_validator(mode="after")
    def _one(self) -> CommandsSection:
        if self.hq_public_key is not None and self.hq_public_key_file is not None:
            raise ValueError("give hq_public_key or hq_public_key_file, not both")
        return self

    def public_key(self) -> str | None:
        if self.hq_public_key_file is not None:
            try:
                return self.hq_public_key_file.read_text().strip()
            except OSError as err:
                raise ConfigError(str(self.hq_public_key_file),
                                  [("commands.hq_public_key_file", f"cannot read: {err.strerror}")]) from err
        return self.hq_public_key


class MetricsSection(_Model):
    """A local Prometheus endpoint; off by default, and loopback only (the post's network is not ours)."""

    enabled: bool = False
    host: Literal["127.0.0.1", "::1", "localhost"] = "127.0.0.1"
    port: int = Field(9464, ge=1, le=65535)


class HQSection(_Model):
    """Used by ``customs-edge hq``: where HQ stores events, whose keys it trusts, how it splits work."""

    db: str = Field("hq.sqlite", description="SQLite path, or a postgresql:// DSN")
    share_group: Identifier = "hq"
    client_id: str | None = None
    keys_dir: Path | None = Field(None, description="posts' public keys as <post_id>.pub (base64) or .pem")
    trust_on_first_use: bool = Field(
        False, description="accept an unknown post's first key (demo, lab); never at a real HQ"
    )


class PostConfig(_Model):
    post: PostSection
    broker: BrokerSection = BrokerSection()
    storage: StorageSection
    recognition: RecognitionSection = RecognitionSection()
    lanes: list[LaneSection] = Field(min_length=1)
    screening: ScreeningSection = ScreeningSection()
    commands: CommandsSection = CommandsSection()
    metrics: MetricsSection = MetricsSection()

    @model_validator(mode="after")
    def _unique_lanes(self) -> PostConfig:
        ids = [lane.id for lane in self.lanes]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"lane ids must be unique: {', '.join(dup)}")
        return self


class HQConfig(_Model):
    """HQ's subscriber process: its broker connection and its store."""

    broker: BrokerSection = BrokerSection()
    hq: HQSection = HQSection()
    metrics: MetricsSection = MetricsSection()


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from(err: ValidationError) -> list[tuple[str, str]]:
    """Turn pydantic's errors into (key path, message) with the wording a technician understands."""
    out: list[tuple[str, str]] = []
    for e in err.errors(include_url=False):
        path = _loc(tuple(e["loc"]))
        kind = e["type"]
        if kind == "missing":
            msg = "required key is missing"
        elif kind == "extra_forbidden":
            msg = "unknown key (not part of the configuration schema; check the spelling)"
        else:
            msg = e["msg"].removeprefix("Value error, ")
        out.append((path, msg))
    return out


def parse_config(data: dict[str, Any], source: str = "<config>") -> PostConfig:
    try:
        return PostConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, problems_from(err)) from err


def load_config(path: str | os.PathLike[str]) -> PostConfig:
    """Read and validate a post's TOML file; relative paths in it are relative to the file."""
    data = _read_toml(Path(path))
    return parse_config(data, str(path))


def load_hq_config(path: str | os.PathLike[str]) -> HQConfig:
    data = _read_toml(Path(path))
    try:
        return HQConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(str(path), problems_from(err)) from err


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise ConfigError(str(p), [("", f"cannot read file: {err.strerror or err}")]) from err
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(str(p), [("", f"not valid TOML: {err}")]) from err
    _resolve_paths(data, p.parent.resolve())
    return data


_PATH_KEYS = {
    "storage": ("data_dir",),
    "recognition": ("models_dir",),
    "hq": ("keys_dir",),
    "commands": ("hq_public_key_file",),
}


def _resolve_paths(data: dict[str, Any], base: Path) -> None:
    """Make folder paths absolute against the config file's folder, so the process's cwd never matters."""
    for section, keys in _PATH_KEYS.items():
        sect = data.get(section)
        if not isinstance(sect, dict):
            continue
        for key in keys:
            if isinstance(sect.get(key), str):
                sect[key] = str(base / sect[key])
    tls = data.get("broker", {}).get("tls") if isinstance(data.get("broker"), dict) else None
    if isinstance(tls, dict):
        for key in ("ca_file", "cert_file", "key_file"):
            if isinstance(tls.get(key), str):
                tls[key] = str(base / tls[key])
