#!/usr/bin/env bash
# Install, upgrade or uninstall Customs Post Edge on a post computer (or, with --hq, at HQ).
#
#   deploy/install.sh [options] [ROOT]          install or upgrade into ROOT (default /)
#   deploy/install.sh --uninstall [ROOT]        remove the program; keep config and data
#
# Layout (under ROOT):
#   /opt/customs-edge/venv              the program (a Python venv), replaced on upgrade
#   /opt/customs-edge/share/doc/...     keys.md, Mosquitto configs, example configs
#   /etc/customs-edge/post.toml         configuration: installed from the example once, NEVER overwritten
#   /etc/customs-edge/credentials/      root-only secrets handed to the service by systemd (LoadCredential)
#   /etc/customs-edge/tls/              the post's TLS key and certificate (see keys.md)
#   /var/lib/customs-edge/              journal, signing key, evidence: kept on upgrade AND uninstall
#   /etc/systemd/system/customs-edge.service (and customs-edge-hq.service)
#   /etc/udev/rules.d/99-customs-edge.rules  kept when edited locally (the new one lands next to it as .dist)
#   /etc/modules-load.d/customs-edge.conf
# Logs go to journald (journalctl -u customs-edge); nothing is written under /var/log.
#
# ROOT other than / stages the tree (DESTDIR style, for images and tests): no user is created, no
# ownership changed, systemd and udev are not touched.
#
# Options:
#   --hq              also set up the HQ subscriber (user customs-edge-hq, /var/lib/customs-edge-hq)
#   --wheels DIR      install offline from a wheelhouse (pip wheel -w DIR . on a connected machine);
#                     posts usually have no Internet access
#   --no-venv         lay out everything but the venv (staging, tests)
#   --python PY       the Python (>= 3.11) to build the venv with (default: python3)
#   --uninstall       remove program, units, modules-load file and unedited udev rules; keep the rest
#   -h, --help
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "install.sh: $*" >&2; exit 1; }

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=/
HQ=0
WHEELS=
NO_VENV=0
PYTHON=python3
UNINSTALL=0
while [ $# -gt 0 ]; do
  case "$1" in
    --hq) HQ=1 ;;
    --wheels) WHEELS=${2:?--wheels needs a directory}; shift ;;
    --no-venv) NO_VENV=1 ;;
    --python) PYTHON=${2:?--python needs a path}; shift ;;
    --uninstall) UNINSTALL=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) ROOT=$1 ;;
  esac
  shift
done
[ -d "$ROOT" ] || die "root $ROOT does not exist"
ROOT=$(cd "$ROOT" && pwd)
R=${ROOT%/}                 # prefix for paths: "" when installing for real
REAL=0
[ "$ROOT" = / ] && REAL=1
if [ $REAL = 1 ] && [ "$(id -u)" != 0 ]; then die "installing into / needs root (or give a staging ROOT)"; fi

OPT=$R/opt/customs-edge
ETC=$R/etc/customs-edge
STATE=$R/var/lib/customs-edge
UNITS=$R/etc/systemd/system
UDEV=$R/etc/udev/rules.d/99-customs-edge.rules
MODLOAD=$R/etc/modules-load.d/customs-edge.conf
SERVICES="customs-edge.service customs-edge-hq.service"

say() { echo "install.sh: $*"; }
own() { # own OWNER:GROUP MODE PATH: ownership only when installing for real
  [ $REAL = 1 ] && chown "$1" "$3"
  chmod "$2" "$3"
}
same() { [ -f "$1" ] && [ -f "$2" ] && cmp -s "$1" "$2"; }

if [ $UNINSTALL = 1 ]; then
  if [ $REAL = 1 ] && command -v systemctl >/dev/null 2>&1; then
    for s in $SERVICES; do systemctl disable --now "$s" 2>/dev/null || true; done
  fi
  for s in $SERVICES; do rm -f "$UNITS/$s"; done
  rm -f "$MODLOAD"
  if [ -f "$UDEV" ]; then
    if same "$UDEV" "$SRC/deploy/udev/99-customs-edge.rules"; then rm -f "$UDEV"
    else say "kept $UDEV (edited locally)"; fi
  fi
  rm -f "$UDEV.dist"
  rm -rf "$OPT"
  if [ $REAL = 1 ]; then
    command -v systemctl >/dev/null 2>&1 && systemctl daemon-reload || true
    command -v udevadm >/dev/null 2>&1 && udevadm control --reload || true
  fi
  say "removed the program; kept $ETC (configuration, keys) and $STATE (journal, data)"
  say "remove those by hand only once HQ has every event: edgectl status shows the backlog"
  exit 0
fi

# --- users (for real only) ---
ensure_user() { # ensure_user NAME HOME
  if ! getent passwd "$1" >/dev/null; then
    useradd --system --user-group --home-dir "$2" --no-create-home --shell /usr/sbin/nologin "$1"
    say "created system user $1"
  fi
}
if [ $REAL = 1 ]; then
  ensure_user customs-edge /var/lib/customs-edge
  [ $HQ = 1 ] && ensure_user customs-edge-hq /var/lib/customs-edge-hq
fi

# --- directories ---
install -d -m 0755 "$OPT" "$OPT/share/doc/customs-edge" "$ETC" "$UNITS" "$(dirname "$UDEV")" "$(dirname "$MODLOAD")"
install -d -m 0700 "$ETC/credentials"
install -d "$ETC/tls"; own root:customs-edge 0750 "$ETC/tls"
install -d "$STATE"; own customs-edge:customs-edge 0750 "$STATE"
if [ $HQ = 1 ]; then install -d "$STATE-hq"; own customs-edge-hq:customs-edge-hq 0750 "$STATE-hq"; fi

# --- the program ---
if [ $NO_VENV = 0 ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PYTHON is not Python >= 3.11"
  [ -x "$OPT/venv/bin/python" ] || "$PYTHON" -m venv "$OPT/venv"
  if [ -n "$WHEELS" ]; then
    "$OPT/venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" \
      --upgrade customs-post-edge
  else
    "$OPT/venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade "$SRC"
  fi
  [ -x "$OPT/venv/bin/customs-edge" ] || die "the venv has no customs-edge entry point after pip install"
  say "installed customs-post-edge into $OPT/venv"
fi

# --- configuration: never overwritten ---
DOC=$OPT/share/doc/customs-edge
install -m 0644 "$SRC/deploy/keys.md" "$DOC/keys.md"
install -d -m 0755 "$DOC/mosquitto" "$DOC/config"
install -m 0644 "$SRC"/deploy/mosquitto/* "$DOC/mosquitto/"
for f in "$SRC"/deploy/config/*.toml; do
  if [ -e "$f" ]; then install -m 0644 "$f" "$DOC/config/"; fi
done
install_config() { # install_config EXAMPLE TARGET GROUP
  if [ ! -e "$2" ]; then
    install -m 0640 "$1" "$2"; own "root:$3" 0640 "$2"; say "installed $2 from $(basename "$1"): edit it"
  else
    say "kept $2"
  fi
}
if [ -f "$SRC/deploy/config/post-example.toml" ]; then
  install_config "$SRC/deploy/config/post-example.toml" "$ETC/post.toml" customs-edge
fi
if [ $HQ = 1 ] && [ -f "$SRC/deploy/config/hq-example.toml" ]; then
  install_config "$SRC/deploy/config/hq-example.toml" "$ETC/hq.toml" customs-edge-hq
fi
# LoadCredential= fails the start when its file is missing; an empty one means "no password".
if [ ! -e "$ETC/credentials/mqtt-password" ]; then
  install -m 0600 /dev/null "$ETC/credentials/mqtt-password"
fi

# --- systemd, udev, kernel modules ---
for s in $SERVICES; do install -m 0644 "$SRC/deploy/systemd/$s" "$UNITS/$s"; done
install -m 0644 "$SRC/deploy/modules-load.d/customs-edge.conf" "$MODLOAD"
if [ ! -e "$UDEV" ] || same "$UDEV" "$SRC/deploy/udev/99-customs-edge.rules"; then
  install -m 0644 "$SRC/deploy/udev/99-customs-edge.rules" "$UDEV"
  rm -f "$UDEV.dist"
else
  install -m 0644 "$SRC/deploy/udev/99-customs-edge.rules" "$UDEV.dist"
  say "kept $UDEV (edited locally); the shipped version is $UDEV.dist"
fi

date -u +"installed %Y-%m-%dT%H:%M:%SZ from $SRC" > "$OPT/INSTALLED"

if [ $REAL = 1 ]; then
  if command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
    systemctl try-restart customs-edge.service || true
    [ $HQ = 1 ] && { systemctl try-restart customs-edge-hq.service || true; }
  fi
  command -v udevadm >/dev/null 2>&1 && udevadm control --reload || true
  say "next: edit $ETC/post.toml and the udev rules, enrol the post's keys (keys.md), then"
  say "      systemctl enable --now customs-edge"
else
  say "staged into $ROOT"
fi
