#!/bin/sh
# tests/config/systemd.sh: checks systemd/crewd.service.in and
# systemd/crewd.socket.in.
#
# Renders both with the same substitutions as Makefile.am (sbindir pointing
# at a stand-in crewd in a temporary folder, since "systemd-analyze verify"
# wants ExecStart's program to exist), runs "systemd-analyze verify" on
# them and fails on anything it says about these two units; reports the
# exposure level of "systemd-analyze security --offline"; and checks the
# directives the design depends on.  Nothing is started: systemd need not
# be running.
#
# Automake test: exit 0 pass, 1 fail, 77 skip without systemd-analyze (a
# failure instead when CREWD_REQUIRE_INTEGRATION=1).  The last line is
# "systemd: N passed, N failed".  CREWD_SRCDIR is the source tree
# (default: this script's ../..).

set -u

srcdir=${CREWD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
service_in=$srcdir/systemd/crewd.service.in
socket_in=$srcdir/systemd/crewd.socket.in

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
summary() { printf 'systemd: %d passed, %d failed\n' "$passed" "$failed"; }
check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}

for f in "$service_in" "$socket_in"; do
    [ -f "$f" ] || { bad "$f is missing"; summary; exit 1; }
done

ANALYZE=$(command -v systemd-analyze 2>/dev/null) || ANALYZE=
if [ -z "$ANALYZE" ]; then
    for d in /usr/bin /bin /usr/lib/systemd; do
        [ -x "$d/systemd-analyze" ] && { ANALYZE=$d/systemd-analyze; break; }
    done
fi
if [ -z "$ANALYZE" ]; then
    if [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ]; then
        bad "systemd-analyze is not installed (required: CREWD_REQUIRE_INTEGRATION=1)"
        summary
        exit 1
    fi
    note "SKIP: systemd-analyze is not installed (Debian package systemd)"
    summary
    exit 77
fi
note "$("$ANALYZE" --version | head -n 1)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crewd-systemd-test.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

# ---------------------------------------------------------------------
# Rendering, as Makefile.am does it.
# ---------------------------------------------------------------------
check "the .in files use no placeholder but @sbindir@, @sysconfdir@, @localstatedir@, @runstatedir@" \
    sh -c '! grep -h -o "@[A-Za-z_]*@" "$1" "$2" | grep -vqx "@\(sbindir\|sysconfdir\|localstatedir\|runstatedir\)@"' \
    sh "$service_in" "$socket_in"

mkdir -p "$tmp/sbin" "$tmp/units"
printf '#!/bin/sh\nexit 0\n' >"$tmp/sbin/crewd"
chmod 0755 "$tmp/sbin/crewd"
for u in service socket; do
    sed -e "s|@sbindir[@]|$tmp/sbin|g" \
        -e 's|@sysconfdir[@]|/etc|g' \
        -e 's|@localstatedir[@]|/var|g' \
        -e 's|@runstatedir[@]|/run|g' \
        "$srcdir/systemd/crewd.$u.in" >"$tmp/units/crewd.$u"
done
service=$tmp/units/crewd.service
socket=$tmp/units/crewd.socket
check "no placeholder is left after rendering" \
    sh -c '! grep -n "@[A-Za-z_]*@" "$1" "$2"' sh "$service" "$socket"

# ---------------------------------------------------------------------
# systemd-analyze verify.  Inside containers it can also talk about other
# units of the system (dependencies it loads); only lines about these two
# units (or their files) count.
# ---------------------------------------------------------------------
(cd "$tmp/units" && SYSTEMD_LOG_COLOR=0 "$ANALYZE" verify \
    "$tmp/units/crewd.socket" "$tmp/units/crewd.service") \
    >"$tmp/verify.out" 2>&1
rc=$?
ours=$(grep -E "crewd\.(service|socket)|$tmp" "$tmp/verify.out" || true)
noise=$(grep -vE "crewd\.(service|socket)|$tmp" "$tmp/verify.out" | grep -v '^[[:space:]]*$' || true)
if [ -n "$noise" ]; then
    note "systemd-analyze verify said about other units (ignored):"
    printf '%s\n' "$noise" | sed 's/^/#   /'
fi
if [ -n "$ours" ]; then
    printf '%s\n' "$ours" | sed 's/^/#   /'
    bad "systemd-analyze verify has nothing to say about crewd.socket and crewd.service"
elif [ "$rc" != 0 ] && [ -z "$noise" ]; then
    bad "systemd-analyze verify exits 0 (it exited $rc)"
else
    [ "$rc" = 0 ] || note "systemd-analyze verify exited $rc, for other units only"
    ok "systemd-analyze verify has nothing to say about crewd.socket and crewd.service"
fi

# The check above must be able to fail: a broken copy has to be caught.
mkdir -p "$tmp/broken"
sed -e 's/^NoNewPrivileges=yes/NoNewPrivilegez=yes/' "$service" >"$tmp/broken/crewd.service"
cp "$socket" "$tmp/broken/crewd.socket"
(cd "$tmp/broken" && SYSTEMD_LOG_COLOR=0 "$ANALYZE" verify \
    "$tmp/broken/crewd.socket" "$tmp/broken/crewd.service") \
    >"$tmp/broken.out" 2>&1
check "systemd-analyze verify does catch a misspelt directive (self-check)" \
    grep -q 'NoNewPrivilegez' "$tmp/broken.out"

# ---------------------------------------------------------------------
# systemd-analyze security, offline (systemd 250 and later).
# ---------------------------------------------------------------------
if "$ANALYZE" security --help 2>/dev/null | grep -q -- '--offline'; then
    (cd "$tmp/units" && SYSTEMD_LOG_COLOR=0 "$ANALYZE" security --offline=yes \
        --no-pager "$service") >"$tmp/security.out" 2>&1
    level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' "$tmp/security.out" | sed 's/.*: //')
    note "systemd-analyze security --offline: exposure ${level:-unknown} (0 best, 10 worst)"
    # --threshold is in tenths: 20 is an exposure of 2.0.
    (cd "$tmp/units" && "$ANALYZE" security --offline=yes --threshold=20 \
        --no-pager "$service") >/dev/null 2>&1
    check "systemd-analyze security rates crewd.service at most 2.0 (${level:-unknown})" \
        test "$?" = 0
else
    note "systemd-analyze security --offline not available: exposure not rated"
fi

# ---------------------------------------------------------------------
# The directives the design depends on.
# ---------------------------------------------------------------------
has_line() {
    # has_line FILE LINE: FILE has LINE exactly, in its own right.
    grep -Fxq "$2" "$1"
}
for line in \
    'ListenStream=/run/crewd/crewd.sock' \
    'SocketUser=crewd' \
    'SocketGroup=www-data' \
    'SocketMode=0660' \
    'RemoveOnStop=yes' \
    'Accept=no' \
    'WantedBy=sockets.target'; do
    check "crewd.socket: $line" has_line "$socket" "$line"
done

for line in \
    'Requires=crewd.socket' \
    'Type=simple' \
    'User=crewd' \
    'Group=crewd' \
    "ExecStart=$tmp/sbin/crewd -c /etc/crewd/crewd.conf" \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'KillMode=mixed' \
    'KillSignal=SIGTERM' \
    'TimeoutStopSec=35' \
    'Restart=on-failure' \
    'StateDirectory=crewd' \
    'StateDirectoryMode=0700' \
    'UMask=0077' \
    'NoNewPrivileges=yes' \
    'ProtectSystem=strict' \
    'ProtectHome=yes' \
    'PrivateTmp=yes' \
    'PrivateDevices=yes' \
    'ProtectKernelTunables=yes' \
    'ProtectKernelModules=yes' \
    'ProtectKernelLogs=yes' \
    'ProtectControlGroups=yes' \
    'ProtectClock=yes' \
    'ProtectHostname=yes' \
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
    'RestrictNamespaces=yes' \
    'RestrictRealtime=yes' \
    'RestrictSUIDSGID=yes' \
    'LockPersonality=yes' \
    'MemoryDenyWriteExecute=yes' \
    'SystemCallArchitectures=native' \
    'SystemCallFilter=@system-service' \
    'CapabilityBoundingSet=' \
    'AmbientCapabilities=' \
    'WantedBy=multi-user.target' \
    'Also=crewd.socket'; do
    check "crewd.service: $line" has_line "$service" "$line"
done

check "crewd.service: After=crewd.socket" sh -c 'sed -n "s/^After=//p" "$1" | tr " " "\n" | grep -qx crewd.socket' sh "$service"
check "crewd.service: After=postgresql.service" sh -c 'sed -n "s/^After=//p" "$1" | tr " " "\n" | grep -qx postgresql.service' sh "$service"
check "crewd.service: Wants=postgresql.service (not Requires: a remote database is fine)" \
    sh -c 'sed -n "s/^Wants=//p" "$1" | tr " " "\n" | grep -qx postgresql.service &&
           ! sed -n "s/^Requires=//p" "$1" | tr " " "\n" | grep -qx postgresql.service' sh "$service"
check "crewd.service: no RuntimeDirectory= (it would remove the socket's folder on stop)" \
    sh -c '! grep -q "^RuntimeDirectory" "$1"' sh "$service"
check "crewd.service: no key appears twice (but SystemCallFilter, After, Wants)" \
    sh -c '! grep -o "^[A-Za-z]*=" "$1" | grep -v "^\(SystemCallFilter\|After\|Wants\)=" | sort | uniq -d | grep -q .' sh "$service"

# In step with crewd itself, when its sources are there.
conf_c=$srcdir/lib/conf.c
if [ -f "$conf_c" ]; then
    default_listen=$(sed -n 's/.*conf->listen, sizeof(conf->listen), "\([^"]*\)".*/\1/p' "$conf_c")
    check "the socket path with runstatedir=/run is crewd's default listen ($default_listen)" \
        test "$default_listen" = /run/crewd/crewd.sock
    grace=$(sed -n 's/.*conf->shutdown_timeout = \([0-9]*\);.*/\1/p' "$conf_c")
    stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$service")
    check "TimeoutStopSec ($stop s) leaves time after crewd's default shutdown_timeout (${grace:-?} s)" \
        test -n "$grace" -a -n "$stop" -a "${stop:-0}" -gt "${grace:-999}"
else
    note "lib/conf.c not found: defaults not compared"
fi

summary
[ "$failed" = 0 ]
