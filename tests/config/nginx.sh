#!/bin/sh
# tests/config/nginx.sh: checks nginx/crewd.conf.template, nginx/render-conf
# and nginx/crewd_fastcgi_params.
#
#  1. render-conf refuses bad arguments;
#  2. the template renders for local development (localhost, 8443/8080,
#     127.0.0.1), for production (example.com, 443/80, all addresses) and
#     as a site part, each with its include files, and each result passes
#     "nginx -t";
#  3. the rendered files, includes expanded, say what the contract says
#     (slug regex, 421 default servers, /metrics on the loopback listener
#     only, the same limits, headers and error pages in every server, ...);
#  4. nginx really runs it on free high ports of 127.0.0.1, and curl
#     checks the answers with no application behind it (every error that
#     nginx makes itself is problem+json with the security headers), then
#     with a small FastCGI stand-in that echoes the parameters nginx sends
#     (python3).
#
# Automake test: exit 0 pass, 1 fail, 77 skip (no nginx or openssl; a
# failure instead when CREWD_REQUIRE_INTEGRATION=1).  The last line is
# "nginx: N passed, N failed".  CREWD_SRCDIR is the source tree (default:
# this script's ../..).  Everything it starts listens on 127.0.0.1 only,
# and "nginx -t" of the production configuration, which names all
# addresses, only runs inside a network namespace of its own.

set -u

srcdir=${CREWD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
render=$srcdir/nginx/render-conf
template=$srcdir/nginx/crewd.conf.template
params=$srcdir/nginx/crewd_fastcgi_params

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
note() { printf '# %s\n' "$*"; }
summary() { printf 'nginx: %d passed, %d failed\n' "$passed" "$failed"; }

# check DESCRIPTION COMMAND...: one test, passed when COMMAND succeeds.
check() {
    desc=$1
    shift
    if "$@"; then ok "$desc"; else bad "$desc"; fi
}

unavailable() {
    if [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ]; then
        bad "$* (required: CREWD_REQUIRE_INTEGRATION=1)"
        summary
        exit 1
    fi
    note "SKIP: $*"
    summary
    exit 77
}

find_tool() {
    command -v "$1" 2>/dev/null && return 0
    for d in /usr/sbin /sbin /usr/local/sbin; do
        [ -x "$d/$1" ] && { printf '%s\n' "$d/$1"; return 0; }
    done
    return 1
}

NGINX=$(find_tool nginx) || unavailable "nginx is not installed (Debian package nginx-light)"
OPENSSL=$(find_tool openssl) || unavailable "openssl is not installed"
CURL=$(find_tool curl) || CURL=
PYTHON=$(find_tool python3) || PYTHON=
for f in "$render" "$template" "$params"; do
    [ -f "$f" ] || { bad "$f is missing"; summary; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/crewd-nginx-test.XXXXXX") || exit 1
# nginx's workers run as another user when this runs as root; they must
# reach the FastCGI socket below.
chmod 0755 "$tmp"
nginx_pid=
stub_pid=
cleanup() {
    if [ -n "${slow_pid:-}" ]; then
        kill "$slow_pid" 2>/dev/null
        wait "$slow_pid" 2>/dev/null
    fi
    if [ -n "$stub_pid" ]; then
        kill "$stub_pid" 2>/dev/null
        wait "$stub_pid" 2>/dev/null
    fi
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null
        wait "$nginx_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

if ! "$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 2 -subj /CN=localhost \
    -addext 'subjectAltName=DNS:localhost,DNS:*.localhost,DNS:example.com,DNS:*.example.com' \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl.out" 2>&1; then
    cat "$tmp/openssl.out"
    bad "openssl made a self-signed certificate"
    summary
    exit 1
fi
cert=$tmp/cert.pem
key=$tmp/key.pem
sock=$tmp/run/crewd.sock
mkdir -p "$tmp/run"
chmod 0755 "$tmp/run"

# The exact server_name regex of a tenant host, from the contract's slug
# grammar ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ (non-capturing inside).
slug_re='(?<tenant_slug>[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)'

# ---------------------------------------------------------------------
# 1. render-conf refuses what it must refuse.
# ---------------------------------------------------------------------
good_args() {
    printf '%s\n' --template "$template" --out "$tmp/bad/x.conf" \
        --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
}
refuses() {
    # refuses DESCRIPTION ARGS...: render-conf exits non-zero with a message.
    desc=$1
    shift
    if sh "$render" "$@" >"$tmp/refuse.out" 2>"$tmp/refuse.err"; then
        bad "render-conf refuses $desc (it succeeded)"
    elif [ ! -s "$tmp/refuse.err" ]; then
        bad "render-conf refuses $desc (but says nothing)"
    else
        ok "render-conf refuses $desc: $(head -n 1 "$tmp/refuse.err")"
    fi
}
refuses "a missing --base-domain" --template "$template" --out "$tmp/bad/x.conf" \
    --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "a missing --socket" --template "$template" --out "$tmp/bad/x.conf" \
    --base-domain example.com --cert "$cert" --key "$key" --prefix "$tmp/bad"
for d in '*.example.com' 'example.com:443' 'exa mple.com' '192.0.2.1' \
    '-bad.example.com' 'example..com' 'https://example.com' 'example.com.'; do
    refuses "the base domain \"$d\"" --template "$template" \
        --out "$tmp/bad/x.conf" --base-domain "$d" --socket "$sock" \
        --cert "$cert" --key "$key" --prefix "$tmp/bad"
done
refuses "the port 70000" --template "$template" --out "$tmp/bad/x.conf" \
    --base-domain example.com --https-port 70000 --socket "$sock" \
    --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "the login rate \"10/m\"" --template "$template" \
    --out "$tmp/bad/x.conf" --base-domain example.com --login-rate 10/m \
    --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "the sign-up rate \"5 r/m\"" --template "$template" \
    --out "$tmp/bad/x.conf" --base-domain example.com --signup-rate '5 r/m' \
    --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "the sign-up burst \"-1\"" --template "$template" \
    --out "$tmp/bad/x.conf" --base-domain example.com --signup-burst -1 \
    --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "--out - without --include-dir" --template "$template" \
    --out - --base-domain example.com \
    --socket "$sock" --cert "$cert" --key "$key" --prefix "$tmp/bad"
refuses "a socket path with a \";\"" --template "$template" \
    --out "$tmp/bad/x.conf" --base-domain example.com \
    --socket "$tmp/run/a;b" --cert "$cert" --key "$key" --prefix "$tmp/bad"
check "render-conf wrote nothing for refused arguments" \
    test ! -e "$tmp/bad/x.conf" -a ! -e "$tmp/bad/x.d"

# ---------------------------------------------------------------------
# 2. Three renderings.
# ---------------------------------------------------------------------
rendered() {
    # rendered NAME ARGS...: renders into $tmp/NAME/crewd.conf.
    name=$1
    shift
    if sh "$render" --template "$template" --out "$tmp/$name/crewd.conf" \
        --cert "$cert" --key "$key" --prefix "$tmp/$name" --params "$params" \
        "$@" >"$tmp/render.out" 2>&1; then
        ok "render-conf renders the $name configuration"
        return 0
    fi
    cat "$tmp/render.out"
    bad "render-conf renders the $name configuration"
    return 1
}

rendered dev --base-domain localhost --https-port 8443 --http-port 8080 \
    --metrics-port 9180 --listen-addr 127.0.0.1 --socket "$sock"
rendered prod --base-domain example.com --socket /run/crewd/crewd.sock
rendered site --site --base-domain example.com --https-port 8443 \
    --http-port 8080 --metrics-port 9180 --listen-addr 127.0.0.1 \
    --socket "$sock"

check "render-conf made the prefix's logs/ and tmp/" \
    test -d "$tmp/prod/logs" -a -d "$tmp/prod/tmp"
includes="tls.conf headers.conf fastcgi.conf server.conf"
for name in dev prod site; do
    check "$name: the include files are next to the configuration (crewd.d/)" \
        sh -c 'for f in $2; do test -s "$1/crewd.d/$f" || exit 1; done' \
        sh "$tmp/$name" "$includes"
done

# nginx -t opens (binds) the listening sockets.  For the production
# configuration, which listens on every address, that only happens in a
# network namespace of its own, which takes root (a user namespace would
# not do: nginx, root in there, chowns its temporary folders to a user
# that does not exist in it).
isolate=
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
    unshare -n true 2>/dev/null; then
    isolate='unshare -n'
fi

nginx_t() {
    # nginx_t DESCRIPTION ISOLATED(0/1) PREFIX CONF
    if [ "$2" = 1 ]; then
        $isolate sh -c 'ip link set lo up >/dev/null 2>&1; exec "$0" -t -p "$1" -c "$2"' \
            "$NGINX" "$3" "$4" >"$tmp/t.out" 2>&1
    else
        "$NGINX" -t -p "$3" -c "$4" >"$tmp/t.out" 2>&1
    fi
    rc=$?
    # As root without a "user" line nginx would still start (its workers
    # become nobody); a warning of any kind is a failure here.
    if [ "$rc" = 0 ] && ! grep -q '\[warn\]\|\[emerg\]\|\[alert\]' "$tmp/t.out"; then
        ok "$1"
    else
        sed 's/^/#   /' "$tmp/t.out"
        bad "$1"
    fi
}

if [ -f "$tmp/dev/crewd.conf" ]; then
    if [ -n "$isolate" ]; then iso=1; else iso=0; fi
    nginx_t "nginx -t accepts the development configuration" "$iso" \
        "$tmp/dev" "$tmp/dev/crewd.conf"
fi
if [ -f "$tmp/prod/crewd.conf" ]; then
    if [ -n "$isolate" ]; then
        nginx_t "nginx -t accepts the production configuration ($isolate)" 1 \
            "$tmp/prod" "$tmp/prod/crewd.conf"
    elif [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ]; then
        bad "nginx -t of the production configuration needs unshare -n"
    else
        note "nginx -t of the production configuration skipped: no network namespace (unshare -n) to bind *:443 in"
    fi
fi
if [ -f "$tmp/site/crewd.conf" ]; then
    # The site part inside an http block like Debian's stock nginx.conf,
    # so that a directive it repeats at http level would show.
    cat >"$tmp/site/nginx.conf" <<EOF
pid $tmp/site/nginx.pid;
error_log $tmp/site/logs/error.log;
events {
    worker_connections 64;
}
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log $tmp/site/logs/stock-access.log;
    gzip on;
    client_body_temp_path $tmp/site/tmp/client_body;
    fastcgi_temp_path $tmp/site/tmp/fastcgi;
    proxy_temp_path $tmp/site/tmp/proxy;
    uwsgi_temp_path $tmp/site/tmp/uwsgi;
    scgi_temp_path $tmp/site/tmp/scgi;
    include $tmp/site/crewd.conf;
}
EOF
    if [ -n "$isolate" ]; then iso=1; else iso=0; fi
    nginx_t "nginx -t accepts the site part inside a stock http block" "$iso" \
        "$tmp/site" "$tmp/site/nginx.conf"
    check "the site part and its include files have no events, http, pid or temp path line" \
        sh -c '! cat "$1" "$2"/* | grep -Eq "^[[:space:]]*(events|http|pid|user|worker_processes|[a-z_]*_temp_path)[[:space:]{]"' \
        sh "$tmp/site/crewd.conf" "$tmp/site/crewd.d"
fi

# ---------------------------------------------------------------------
# 3. What the rendered files say.
# ---------------------------------------------------------------------

# expand FILE: FILE with every "include PATH;" replaced by the lines of
# PATH (recursively), as nginx reads it.
expand() {
    awk '
    function emit(file,    line, t, p) {
        if (depth_ > 8) { print "expand: includes nested too deep" > "/dev/stderr"; exit 1 }
        depth_++
        while ((getline line < file) > 0) {
            t = line
            sub(/^[ \t]+/, "", t)
            if (t ~ /^include[ \t]+[^ \t;]+;$/) {
                p = t
                sub(/^include[ \t]+/, "", p)
                sub(/;$/, "", p)
                if (system("test -f \"" p "\"") != 0) {
                    print "expand: missing include " p > "/dev/stderr"
                    exit 1
                }
                emit(p)
            } else {
                print line
            }
        }
        close(file)
        depth_--
    }
    BEGIN { emit(ARGV[1]); exit }' "$1"
}

# One line per server block: its listen sockets and what it contains.
# Quoted strings (JSON bodies, the regex) are blanked before braces are
# counted.  Runs on an expanded configuration.
servers() {
    awk '
    function flag(name) { f[name] = 1 }
    function reset() {
        split("", f); split("", targets); split("", internal)
        listen = ""; names = ""; passes = 0; errors = ","
    }
    {
        raw = $0
        if (raw ~ /^[ \t]*#/) next
        s = raw
        gsub(/\047[^\047]*\047/, "Q", s)
        gsub(/"[^"]*"/, "Q", s)
        sub(/#.*/, "", s)
        t = raw
        sub(/^[ \t]+/, "", t)
        if (!inserver && s ~ /^[ \t]*server[ \t]*\{/) {
            inserver = 1; sdepth = depth + 1; reset()
        } else if (inserver) {
            top = (depth == sdepth)
            if (top && s ~ /^[ \t]*listen[ \t]/) {
                split(s, w, /[ \t;]+/)
                listen = listen (listen == "" ? "" : ",") w[3]
                if (s ~ /default_server/) flag("default")
            }
            if (top && t ~ /^server_name /) {
                sub(/;$/, "", t); sub(/^server_name /, "", t); names = t
            }
            if (s ~ /^[ \t]*return[ \t]+421[ \t]/) flag("return421")
            if (s ~ /^[ \t]*fastcgi_pass[ \t]/) passes++
            if (top && s ~ /^[ \t]*location[ \t]/) {
                loc = t; sub(/[ \t]*\{.*$/, "", loc); sub(/^location[ \t]+/, "", loc)
                ldepth = depth + 1
            }
            if (loc == "= /metrics" && s ~ /fastcgi_pass/) flag("metrics_pass")
            if (loc == "= /metrics" && s ~ /return[ \t]+404/) flag("metrics_404")
            if (loc == "= /api/v1/auth/login" && t ~ /^limit_req zone=crewd_login burst=[0-9]+ nodelay;$/) flag("login_limit")
            if (loc == "= /api/v1/tenants" && t ~ /^limit_req zone=crewd_signup burst=[0-9]+ nodelay;$/) flag("signup_limit")
            if (loc ~ /^= \/\.crewd-error\/[0-9]+$/ && t == "internal;") internal[substr(loc, 3)] = 1
            if (top && t ~ /^error_page /) {
                n = split(t, w, /[ \t;]+/)
                for (k = 2; k <= n; k++) {
                    if (w[k] ~ /^[0-9]+$/) errors = errors w[k] ","
                    else if (w[k] ~ /^\//) targets[w[k]] = 1
                }
            }
            if (top && t == "server_tokens off;") flag("tokens_off")
            if (top && t == "client_max_body_size        1m;") flag("body_1m")
            if (top && t == "client_body_buffer_size     1m;") flag("buffer_1m")
            if (top && t == "client_header_timeout 10s;") flag("header_timeout")
            if (top && t == "add_header Strict-Transport-Security $crewd_hsts always;") flag("hsts")
            if (top && t == "add_header X-Content-Type-Options \"nosniff\" always;") flag("nosniff")
            if (top && t == "add_header X-Frame-Options \"DENY\" always;") flag("xfo")
            if (top && t == "add_header Referrer-Policy \"no-referrer\" always;") flag("referrer")
            if (top && t == "add_header Content-Security-Policy \"default-src \047none\047; frame-ancestors \047none\047\" always;") flag("csp")
            if (top && t == "add_header X-Request-Id $request_id always;") flag("request_id")
            if (top && t == "default_type application/problem+json;") flag("problem_type")
            if (top && t == "fastcgi_param TENANT_SLUG $tenant_slug;") flag("slug_param")
            if (top && t == "fastcgi_param TENANT_SLUG \"\";") flag("empty_slug_param")
            if (top && t ~ /^ssl_certificate /) flag("ssl")
        }
        n = gsub(/\{/, "{", s)
        m = gsub(/\}/, "}", s)
        depth += n - m
        if (loc != "" && depth < ldepth) loc = ""
        if (inserver && depth < sdepth) {
            missing = 0
            for (x in targets) if (!(x in internal)) missing++
            if (missing == 0) flag("error_targets")
            out = "listen=" listen " passes=" passes
            for (k in f) out = out " " k
            print out " errors=" errors " names=" names
            inserver = 0
        }
    }' "$1"
}

# Every "return CODE 'TEXT'" is a problem+json body of that status.
bodies_match() {
    awk '
    /^[ \t]*return[ \t]+[0-9]+[ \t]+\047/ {
        n++
        line = $0
        sub(/^[ \t]*return[ \t]+/, "", line)
        code = line; sub(/[ \t].*$/, "", code)
        if (line !~ /^[0-9]+[ \t]+\047\{"type":"about:blank","title":"[^"]+","status":[0-9]+,"detail":"[^"]+"\}\047;$/ ||
            index(line, "\"status\":" code ",") == 0) {
            print "#   not problem+json of status " code ": " $0
            bad = 1
        }
    }
    END { exit bad || n == 0 }' "$1"
}

# The codes every server block must answer with problem+json.
nginx_error_codes="400 403 404 405 408 411 413 414 429 494 497 500 501 502 503 504 505"

conf_checks() {
    # conf_checks NAME BASE_REGEX HTTPS_PORT HTTP_PORT METRICS_PORT LOOPBACK_ONLY
    name=$1 base_re=$2 hp=$3 pp=$4 mp=$5 loopback=$6
    [ -f "$tmp/$name/crewd.conf" ] || return
    if ! expand "$tmp/$name/crewd.conf" >"$tmp/$name/expanded.conf"; then
        bad "$name: the includes can be expanded"
        return
    fi
    conf=$tmp/$name/expanded.conf
    servers "$conf" >"$tmp/$name/servers"
    sed 's/^/#   /' "$tmp/$name/servers"

    check "$name: no placeholder is left (includes too)" \
        sh -c '! grep -n "@[A-Z][A-Z_]*@" "$1" "$2"/*' sh "$tmp/$name/crewd.conf" "$tmp/$name/crewd.d"

    slug_line="server_name \"~^$slug_re\\.$base_re\$\";"
    want_regex=$(sed 's/^[[:space:]]*//' "$conf" | grep -c '^server_name .*~')
    exact=$(sed 's/^[[:space:]]*//' "$conf" | grep -Fxc "$slug_line")
    redirect_line="server_name $(printf '%s' "$base_re" | sed 's/\\//g') \"~^$slug_re\\.$base_re\$\";"
    exact_redirect=$(sed 's/^[[:space:]]*//' "$conf" | grep -Fxc "$redirect_line")
    check "$name: the tenant server_name is exactly the contract's slug regex" \
        test "$exact" = 1
    check "$name: the only other regex server_name (HTTP redirect) is the same" \
        test "$exact_redirect" = 1 -a "$want_regex" = 2

    n_default=$(grep -c ' default' "$tmp/$name/servers")
    n_default_421=$(grep ' default' "$tmp/$name/servers" | grep ' return421' | grep -c ' passes=0 ')
    check "$name: two default servers (HTTPS and HTTP), both return 421 and never pass to crewd" \
        test "$n_default" = 2 -a "$n_default_421" = 2
    check "$name: the HTTPS default server listens on the HTTPS port with the certificate" \
        sh -c 'grep " default" "$1" | grep " ssl" | grep -q ":$2\(,\| \)"' sh "$tmp/$name/servers" "$hp"

    metrics_lines=$(grep -c ' metrics_pass' "$tmp/$name/servers")
    check "$name: /metrics reaches crewd in exactly one server, listening on 127.0.0.1:$mp only" \
        sh -c 'test "$2" = 1 && grep " metrics_pass" "$1" | grep -q "^listen=127\.0\.0\.1:$3 "' \
        sh "$tmp/$name/servers" "$metrics_lines" "$mp"
    check "$name: the metrics server passes nothing but /metrics" \
        sh -c 'grep "^listen=127\.0\.0\.1:$2 " "$1" | grep -q " passes=1 "' \
        sh "$tmp/$name/servers" "$mp"
    check "$name: the apex server answers /metrics with 404" \
        sh -c 'grep " names=$2\$" "$1" | grep -q " metrics_404"' \
        sh "$tmp/$name/servers" "$(printf '%s' "$base_re" | sed 's/\\//g')"

    all=$(wc -l <"$tmp/$name/servers")
    check "$name: six server blocks" test "$all" = 6
    for fl in tokens_off body_1m buffer_1m header_timeout hsts nosniff xfo \
        referrer csp request_id problem_type error_targets; do
        n=$(grep -c " $fl" "$tmp/$name/servers")
        check "$name: every server block has $fl" test "$n" = "$all"
    done
    check "$name: Strict-Transport-Security is sent over HTTPS only (map \$https)" \
        sh -c 'tr -s " \t" "  " <"$1" | tr "\n" "\001" |
               grep -Fq "map \$https \$crewd_hsts {$(printf "\001") on \"max-age=31536000; includeSubDomains\";$(printf "\001") default \"\";$(printf "\001") }"' \
        sh "$conf"
    for code in $nginx_error_codes; do
        n=$(grep -c " errors=[0-9,]*,$code," "$tmp/$name/servers")
        check "$name: every server block has an error page for $code" test "$n" = "$all"
    done
    check "$name: every body nginx returns is problem+json of its own status" \
        bodies_match "$conf"
    check "$name: the 429 and 503 error pages have Retry-After and all the headers" \
        sh -c 'for c in 429 503; do
                   sed -n "/location = \/\.crewd-error\/$c {/,/^[[:space:]]*}/p" "$1" >"$1.$c"
                   grep -q "add_header Retry-After [0-9][0-9]* always;" "$1.$c" &&
                   test "$(grep -c "^[[:space:]]*add_header " "$1.$c")" -ge 7 || exit 1
               done' sh "$conf"
    check "$name: the tenant server passes the captured slug" \
        sh -c 'grep " names=\"~" "$1" | grep " ssl" | grep -q " slug_param"' sh "$tmp/$name/servers"
    check "$name: the apex and metrics servers pass TENANT_SLUG \"\"" \
        sh -c 'test "$(grep -c " empty_slug_param" "$1")" = 2' sh "$tmp/$name/servers"

    if [ "$loopback" = 1 ]; then
        check "$name: every listen socket is on 127.0.0.1" \
            sh -c '! grep -E "^[[:space:]]*listen " "$1" | grep -vq "listen 127\.0\.0\.1:"' sh "$conf"
    else
        check "$name: HTTPS on every IPv4 and IPv6 address, with http2" \
            sh -c 'grep -q "listen \*:$2 ssl http2;" "$1" && grep -q "listen \[::\]:$2 ssl http2;" "$1"' sh "$conf" "$hp"
        check "$name: HTTP on every IPv4 and IPv6 address" \
            sh -c 'grep -q "listen \*:$2;" "$1" && grep -q "listen \[::\]:$2;" "$1"' sh "$conf" "$pp"
        check "$name: the metrics listener is still 127.0.0.1 only" \
            sh -c 'test "$(grep -c "listen 127\.0\.0\.1:" "$1")" = 1' sh "$conf"
    fi
    if [ "$hp" = 443 ]; then suffix=; else suffix=":$hp"; fi
    check "$name: plain HTTP redirects with 308 to https://\$host$suffix\$request_uri" \
        grep -Fq "return 308 https://\$host$suffix\$request_uri;" "$conf"
    check "$name: login is rate limited with status 429" \
        sh -c 'grep -Eq "limit_req_zone \\\$binary_remote_addr zone=crewd_login:10m rate=[0-9]+r/[sm];" "$1" &&
               grep " names=\"~" "$2" | grep " ssl" | grep -q " login_limit" &&
               grep -q "limit_req_status 429;" "$1"' sh "$conf" "$tmp/$name/servers"
    check "$name: sign-up on the apex is rate limited with status 429" \
        sh -c 'grep -Eq "limit_req_zone \\\$binary_remote_addr zone=crewd_signup:10m rate=[0-9]+r/[sm];" "$1" &&
               grep " names=$3\$" "$2" | grep -q " signup_limit" &&
               test "$(grep -c " signup_limit" "$2")" = 1' \
        sh "$conf" "$tmp/$name/servers" "$(printf '%s' "$base_re" | sed 's/\\//g')"
    if [ "$(id -u)" = 0 ]; then
        check "$name: rendered as root, it names the workers' user" \
            grep -Eq '^user [a-z_][a-z0-9_-]* [a-z_][a-z0-9_-]*;$' "$conf"
    else
        check "$name: rendered as non-root, it has no user line" \
            sh -c '! grep -q "^user " "$1"' sh "$conf"
    fi
}

conf_checks dev 'localhost' 8443 8080 9180 1
conf_checks prod 'example\.com' 443 80 9180 0
if [ -f "$tmp/prod/crewd.conf" ]; then
    check "prod: production defaults for login (10r/m, burst 5)" \
        sh -c 'grep -q "zone=crewd_login:10m rate=10r/m;" "$1" && grep -q "zone=crewd_login burst=5 nodelay;" "$1"' sh "$tmp/prod/crewd.conf"
    check "prod: production defaults for sign-up (5r/m, burst 5)" \
        sh -c 'grep -q "zone=crewd_signup:10m rate=5r/m;" "$1" && grep -q "zone=crewd_signup burst=5 nodelay;" "$1"' sh "$tmp/prod/crewd.conf"
fi

# ---------------------------------------------------------------------
# 4. nginx for real, on free high ports of 127.0.0.1.
# ---------------------------------------------------------------------
if [ -z "$CURL" ]; then
    if [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ]; then
        bad "curl is not installed: the live checks cannot run"
    else
        note "curl is not installed: live checks skipped"
    fi
    summary
    [ "$failed" = 0 ] && exit 0 || exit 1
fi

# Below Linux's ephemeral range (32768-60999), where the machine's own
# outgoing connections take their local ports and would make bind() fail.
random_port() {
    n=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
    printf '%d\n' $((10000 + n % 22000))
}
port_busy() {
    command -v ss >/dev/null 2>&1 || return 1
    [ -n "$(ss -Hatn "sport = :$1" 2>/dev/null)" ]
}
pick_ports() {
    while :; do
        hp=$(random_port); pp=$(random_port); mp=$(random_port)
        [ "$hp" != "$pp" ] && [ "$hp" != "$mp" ] && [ "$pp" != "$mp" ] || continue
        port_busy "$hp" || port_busy "$pp" || port_busy "$mp" || break
    done
}

started=0
for attempt in 1 2 3; do
    pick_ports
    rm -rf "$tmp/live"
    sh "$render" --template "$template" --out "$tmp/live/crewd.conf" \
        --base-domain localhost --https-port "$hp" --http-port "$pp" \
        --metrics-port "$mp" --listen-addr 127.0.0.1 --socket "$sock" \
        --cert "$cert" --key "$key" --prefix "$tmp/live" --params "$params" \
        --login-rate 10r/m --login-burst 2 --signup-rate 10r/m \
        --signup-burst 2 >"$tmp/render.out" 2>&1 || {
        cat "$tmp/render.out"; break; }
    "$NGINX" -p "$tmp/live" -c "$tmp/live/crewd.conf" -g 'daemon off;' \
        </dev/null >"$tmp/live/nginx.out" 2>&1 &
    nginx_pid=$!
    i=0
    while [ "$i" -lt 100 ]; do
        if ! kill -0 "$nginx_pid" 2>/dev/null; then
            wait "$nginx_pid" 2>/dev/null
            nginx_pid=
            break
        fi
        if "$CURL" -s -o /dev/null --max-time 1 "http://127.0.0.1:$mp/"; then
            started=1
            break
        fi
        sleep 0.1
        i=$((i + 1))
    done
    [ "$started" = 1 ] && break
    sed 's/^/#   /' "$tmp/live/nginx.out"
    if [ -n "$nginx_pid" ]; then
        kill -TERM "$nginx_pid" 2>/dev/null
        wait "$nginx_pid" 2>/dev/null
        nginx_pid=
    fi
done
check "nginx runs the rendered configuration on 127.0.0.1:$hp/$pp/$mp" test "$started" = 1
if [ "$started" != 1 ]; then
    summary
    exit 1
fi

# Raw requests (what curl will not send) and a client that stops halfway
# through its headers, with python3.  raw.py PORT HEADFILE BODYFILE
# TIMEOUT: sends standard input to 127.0.0.1:PORT, reads until the
# server closes (or TIMEOUT seconds pass), writes the response's head and
# body to the two files and prints the status code (000: no answer).
slow_pid=
if [ -n "$PYTHON" ]; then
    cat >"$tmp/raw.py" <<'EOF'
import socket, sys
port, head_file, body_file, timeout = sys.argv[1:5]
data = b''
try:
    s = socket.create_connection(('127.0.0.1', int(port)), float(timeout))
    s.sendall(sys.stdin.buffer.read())
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
head, _, body = data.partition(b'\r\n\r\n')
open(head_file, 'wb').write(head + b'\r\n' if head else b'')
open(body_file, 'wb').write(body)
parts = head.split(b' ', 2)
print(parts[1].decode() if len(parts) > 1 else '000')
EOF
    # client_header_timeout is 10 s: then nginx closes the connection
    # without an answer (408 is logged, never sent).  This runs while the
    # other checks do.
    printf 'GET /api/v1/agents HTTP/1.1\r\nHost: acme.localhost\r\n' |
        "$PYTHON" "$tmp/raw.py" "$pp" "$tmp/slow.h" "$tmp/slow.b" 30 \
        >"$tmp/slow.code" 2>&1 &
    slow_pid=$!
fi
raw() {
    # raw PORT TEXT: like req, for a request written out in full
    # (TEXT is a printf format).
    rm -f "$tmp/h" "$tmp/b"
    # shellcheck disable=SC2059
    printf "$2" | "$PYTHON" "$tmp/raw.py" "$1" "$tmp/h" "$tmp/b" 10
}

resolve=
for h in localhost acme.localhost other.example ACME.localhost; do
    resolve="$resolve --resolve $h:$hp:127.0.0.1 --resolve $h:$pp:127.0.0.1"
done

# req ARGS...: one request; prints the status, keeps headers and body.
req() {
    rm -f "$tmp/h" "$tmp/b"
    : >"$tmp/h"
    : >"$tmp/b"
    # shellcheck disable=SC2086
    "$CURL" -sk --max-time 10 $resolve -D "$tmp/h" -o "$tmp/b" \
        -w '%{http_code}' "$@" 2>"$tmp/curl.err" || true
}
# hdr NAME: the value of a response header of the last request.
hdr() {
    tr -d '\r' <"$tmp/h" | grep -i "^$1:" | head -n 1 | sed 's/^[^:]*:[[:space:]]*//'
}
hdr_count() {
    tr -d '\r' <"$tmp/h" | grep -ic "^$1:"
}
status_is() {
    # status_is DESCRIPTION WANT GOT
    if [ "$3" = "$2" ]; then ok "$1 ($3)"; else bad "$1: want $2, got $3"; fi
}
is_problem() {
    [ "$(hdr Content-Type)" = application/problem+json ] &&
        grep -q "^{\"type\":\"about:blank\",\"title\":\"[^\"]*\",\"status\":$1,\"detail\":\"[^\"]*\"}\$" "$tmp/b"
}

T=https://acme.localhost:$hp
A=https://localhost:$hp

code=$(req "https://other.example:$hp/")
status_is "HTTPS, unknown host: 421" 421 "$code"
check "HTTPS, unknown host: problem+json body" is_problem 421
code=$(req --http1.1 -H 'Host: evil.example' "$A/healthz")
status_is "HTTPS, SNI of the apex but Host of another name: 421" 421 "$code"
for h in a.b.localhost -acme.localhost acme-.localhost a_b.localhost \
    "$(printf '%064d' 0).localhost" localhost.evil.example; do
    code=$(req --http1.1 -H "Host: $h" "$A/api/v1/agents")
    status_is "HTTPS, Host $h is no tenant: 421" 421 "$code"
done
code=$(req --http1.1 -H "Host: $(printf '%063d' 0).localhost" "$A/api/v1/agents")
status_is "HTTPS, a 63-character slug is a tenant (app down: 503)" 503 "$code"
code=$(req --http1.1 -H 'Host: ACME.LocalHost' "$A/api/v1/agents")
status_is "HTTPS, an upper-case tenant host is a tenant (app down: 503)" 503 "$code"

code=$(req "http://acme.localhost:$pp/api/v1/agents?x=1")
status_is "HTTP, tenant host: 308" 308 "$code"
check "HTTP, tenant host: Location https://acme.localhost:$hp/api/v1/agents?x=1" \
    test "$(hdr Location)" = "https://acme.localhost:$hp/api/v1/agents?x=1"
check "  ... with the security headers but no Strict-Transport-Security over HTTP" \
    test "$(hdr X-Frame-Options)" = DENY -a -z "$(hdr Strict-Transport-Security)"
code=$(req -X POST -H 'Content-Type: application/json' -d '{}' "http://localhost:$pp/api/v1/tenants")
status_is "HTTP, apex host, POST: 308 (a POST stays a POST)" 308 "$code"
check "HTTP, apex host: Location https://localhost:$hp/api/v1/tenants" \
    test "$(hdr Location)" = "https://localhost:$hp/api/v1/tenants"
code=$(req "http://other.example:$pp/")
status_is "HTTP, unknown host: 421" 421 "$code"
check "  ... as problem+json" is_problem 421

code=$(req "$T/api/v1/agents")
status_is "tenant /api/v1/agents without the application: 503" 503 "$code"
check "  ... as problem+json" is_problem 503
check "  ... with Retry-After" test -n "$(hdr Retry-After)"
check "  ... with Strict-Transport-Security" \
    test "$(hdr Strict-Transport-Security)" = "max-age=31536000; includeSubDomains"
check "  ... with X-Content-Type-Options" test "$(hdr X-Content-Type-Options)" = nosniff
check "  ... with X-Frame-Options" test "$(hdr X-Frame-Options)" = DENY
check "  ... with Referrer-Policy" test "$(hdr Referrer-Policy)" = no-referrer
check "  ... with Content-Security-Policy" \
    test "$(hdr Content-Security-Policy)" = "default-src 'none'; frame-ancestors 'none'"
check "  ... with an X-Request-Id of 32 hex digits" \
    sh -c 'printf "%s\n" "$1" | grep -Eqx "[0-9a-f]{32}"' sh "$(hdr X-Request-Id)"
check "  ... and a Server header without a version" test "$(hdr Server)" = nginx
if "$CURL" -V | grep -q HTTP2; then
    v=$("$CURL" -sk --max-time 10 $resolve -o /dev/null -w '%{http_version}' "$T/api/v1/agents")
    check "HTTP/2 is negotiated on the HTTPS port" test "$v" = 2
fi

head -c 1048577 /dev/zero >"$tmp/big"
code=$(req -H 'Content-Type: application/json' --data-binary @"$tmp/big" "$T/api/v1/agents")
status_is "a body of 1 MiB + 1 byte: 413" 413 "$code"
check "  ... as problem+json" is_problem 413
check "  ... with the security headers" \
    test "$(hdr X-Frame-Options)" = DENY -a -n "$(hdr X-Request-Id)"

for u in "$A/metrics" "$T/metrics"; do
    code=$(req "$u")
    check "GET $u on the public port is not 200 ($code)" test "$code" != 200
done
code=$(req "http://127.0.0.1:$mp/metrics")
status_is "GET /metrics on the metrics port reaches the application (down: 503)" 503 "$code"
code=$(req -X POST "http://127.0.0.1:$mp/metrics")
status_is "POST /metrics on the metrics port: 403" 403 "$code"
code=$(req "http://127.0.0.1:$mp/healthz")
status_is "GET /healthz on the metrics port: 404" 404 "$code"

code=$(req "$A/healthz")
status_is "apex /healthz reaches the application (down: 503)" 503 "$code"
code=$(req "$A/api/v1/agents")
status_is "apex /api/v1/agents is not served: 404" 404 "$code"
check "  ... as problem+json" is_problem 404
code=$(req "$T/healthz")
status_is "tenant /healthz is not served: 404" 404 "$code"
code=$(req "$T/")
status_is "tenant / is not served: 404" 404 "$code"

# Errors that nginx makes itself: problem+json of the status, with the
# security headers (Strict-Transport-Security over HTTPS only).
nginx_error() {
    # nginx_error DESCRIPTION WANT SCHEME CURL-ARGS...
    desc=$1 want=$2 scheme=$3
    shift 3
    got=$(req "$@")
    if [ "$got" != "$want" ]; then
        bad "$desc: want $want, got $got ($(head -c 200 "$tmp/b" | tr '\n' ' '))"
        return
    fi
    why=
    is_problem "$want" || why="$why, not problem+json ($(head -c 200 "$tmp/b" | tr '\n' ' '))"
    [ "$(hdr X-Content-Type-Options)" = nosniff ] || why="$why, no X-Content-Type-Options"
    [ "$(hdr X-Frame-Options)" = DENY ] || why="$why, no X-Frame-Options"
    [ "$(hdr Referrer-Policy)" = no-referrer ] || why="$why, no Referrer-Policy"
    [ "$(hdr Content-Security-Policy)" = "default-src 'none'; frame-ancestors 'none'" ] ||
        why="$why, no Content-Security-Policy"
    printf '%s\n' "$(hdr X-Request-Id)" | grep -Eqx '[0-9a-f]{32}' || why="$why, no X-Request-Id"
    if [ "$scheme" = https ]; then
        [ "$(hdr Strict-Transport-Security)" = "max-age=31536000; includeSubDomains" ] ||
            why="$why, no Strict-Transport-Security"
    else
        [ -z "$(hdr Strict-Transport-Security)" ] || why="$why, Strict-Transport-Security over HTTP"
    fi
    if [ -z "$why" ]; then ok "$desc ($got, problem+json)"; else bad "$desc:${why#,}"; fi
}
P=http://acme.localhost:$pp
long_uri=/api/v1/$(head -c 9000 /dev/zero | tr '\0' a)
big_header="X-Big: $(head -c 20000 /dev/zero | tr '\0' a)"

nginx_error "HTTPS, Host acme.localhost.. (bad host): 400" 400 https \
    --http1.1 -H 'Host: acme.localhost..' "$T/api/v1/agents"
nginx_error "HTTP, Host acme.localhost.. (bad host): 400" 400 http \
    -H 'Host: acme.localhost..' "$P/api/v1/agents"
nginx_error "HTTPS, duplicate Host header: 400" 400 https \
    --http1.1 -H "$(printf 'X-A: 1\r\nHost: localhost')" "$T/api/v1/agents"
nginx_error "HTTP, duplicate Host header: 400" 400 http \
    -H "$(printf 'X-A: 1\r\nHost: localhost')" "$P/api/v1/agents"
nginx_error "HTTP/1.1 without a Host header: 400" 400 http \
    -H 'Host:' "$P/api/v1/agents"
nginx_error "HTTP/2, %00 in the path: 400" 400 https \
    --path-as-is "$T/api/v1/%00"
nginx_error "HTTPS HTTP/1.1, %00 in the path: 400" 400 https \
    --http1.1 --path-as-is "$T/api/v1/%00"
nginx_error "HTTP, %00 in the path: 400" 400 http \
    --path-as-is "$P/api/v1/%00"
nginx_error "HTTP/2, TRACE: 405" 405 https -X TRACE "$T/api/v1/agents"
nginx_error "HTTP, TRACE: 405" 405 http -X TRACE "$P/api/v1/agents"
nginx_error "HTTPS, a URI of 9000 bytes: 414" 414 https --http1.1 "$T$long_uri"
nginx_error "HTTP, a URI of 9000 bytes: 414" 414 http "$P$long_uri"
nginx_error "HTTPS, a header of 20 KB: 431" 431 https --http1.1 -H "$big_header" "$T/api/v1/agents"
nginx_error "HTTP, a header of 20 KB: 431" 431 http -H "$big_header" "$P/api/v1/agents"
nginx_error "plain HTTP on the HTTPS port: 400" 400 http "http://localhost:$hp/healthz"
nginx_error "HTTPS, Transfer-Encoding: gzip: 501" 501 https --http1.1 \
    -H 'Transfer-Encoding: gzip' -H 'Content-Type: application/json' -d '{}' "$T/api/v1/agents"
nginx_error "POST /metrics on the metrics port: 403" 403 http -X POST "http://127.0.0.1:$mp/metrics"
nginx_error "an error page asked for by a client: 404" 404 https "$T/.crewd-error/400"
nginx_error "  ... on the HTTP redirect server too" 404 http "$P/.crewd-error/400"

if [ -n "$PYTHON" ]; then
    code=$(raw "$pp" 'GET /api/v1/agents HTTP/2.0\r\nHost: acme.localhost\r\n\r\n')
    status_is "HTTP, request line of HTTP/2.0: 505" 505 "$code"
    check "  ... as problem+json" is_problem 505
    code=$(raw "$pp" 'G@T /api/v1/agents HTTP/1.1\r\nHost: acme.localhost\r\n\r\n')
    status_is "HTTP, a broken request line: 400" 400 "$code"
    check "  ... as problem+json" is_problem 400
    check "  ... with the security headers" \
        test "$(hdr X-Frame-Options)" = DENY -a -n "$(hdr X-Request-Id)"
fi

# Over HTTP/2, headers over the limits end the connection (GOAWAY,
# ENHANCE_YOUR_CALM) before there is a request to answer: no HTML either.
if "$CURL" -V | grep -q HTTP2; then
    code=$(req --http2 -H "$big_header" "$T/api/v1/agents")
    check "HTTP/2, a header of 20 KB: the connection is refused, with no HTML page ($code)" \
        sh -c 'test "$1" = 000 -a ! -s "$2" || grep -q "^{\"type\"" "$2"' sh "$code" "$tmp/b"
fi

# Login: rate 10r/m with burst 2, so the first three pass (and find no
# application) and a fourth in the same second is refused.
codes=
for i in 1 2 3 4 5; do
    codes="$codes $(req -X POST -H 'Content-Type: application/json' -d '{}' "$T/api/v1/auth/login")"
done
case $codes in
" 503 503 503 429"*) ok "login is rate limited after the burst:$codes" ;;
*) bad "login is rate limited after the burst: want 503 503 503 429 ..., got$codes" ;;
esac
check "  ... the 429 is problem+json" is_problem 429
check "  ... with Retry-After: 60" test "$(hdr Retry-After)" = 60
check "  ... and the security headers" \
    test "$(hdr X-Frame-Options)" = DENY -a -n "$(hdr X-Request-Id)" -a -n "$(hdr Strict-Transport-Security)"

# Sign-up: the same, from another loopback address (its own count, so
# that the sign-up checks below still get through).
codes=
for i in 1 2 3 4 5; do
    codes="$codes $(req --interface 127.0.0.2 -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v1/tenants")"
done
case $codes in
" 503 503 503 429"*) ok "sign-up is rate limited after the burst:$codes" ;;
*) bad "sign-up is rate limited after the burst: want 503 503 503 429 ..., got$codes" ;;
esac
check "  ... the 429 is problem+json" is_problem 429
check "  ... with Retry-After: 60" test "$(hdr Retry-After)" = 60
code=$(req -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v1/tenants")
status_is "  ... counted per address: 127.0.0.1 still gets through (app down: 503)" 503 "$code"

if [ -n "$slow_pid" ]; then
    wait "$slow_pid"
    slow_pid=
    check "a client that stops in the middle of its headers is cut off without an answer (no HTML 408)" \
        sh -c 'test "$(cat "$1")" = 000 -a ! -s "$2"' sh "$tmp/slow.code" "$tmp/slow.b"
fi

# ---------------------------------------------------------------------
# 4b. A FastCGI stand-in that answers with the parameters it got.
# ---------------------------------------------------------------------
if [ -z "$PYTHON" ]; then
    if [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ]; then
        bad "python3 is not installed: the FastCGI parameter checks cannot run"
    else
        note "python3 is not installed: FastCGI parameter checks skipped"
    fi
else
    cat >"$tmp/stub.py" <<'EOF'
# A FastCGI responder for one connection at a time: answers 200 with
# text/plain lines NAME=VALUE for every parameter, and BODY_LENGTH=N.
# The path /api/v1/app-503 answers 503 with a body of its own.
import os, socket, struct, sys

def read_exact(conn, n):
    data = b''
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data

def record(rtype, rid, content):
    return struct.pack('>BBHHBx', 1, rtype, rid, len(content), 0) + content

def decode_len(b, i):
    if b[i] & 0x80:
        return struct.unpack('>I', b[i:i + 4])[0] & 0x7fffffff, i + 4
    return b[i], i + 1

def serve(conn):
    params, body, rid = b'', b'', 1
    while True:
        _, rtype, rid, clen, plen = struct.unpack('>BBHHBx', read_exact(conn, 8))
        content = read_exact(conn, clen)
        read_exact(conn, plen)
        if rtype == 4:
            params += content
        elif rtype == 5:
            if clen == 0:
                break
            body += content
    env, i = {}, 0
    while i < len(params):
        nlen, i = decode_len(params, i)
        vlen, i = decode_len(params, i)
        name = params[i:i + nlen].decode('latin-1')
        env[name] = params[i + nlen:i + nlen + vlen].decode('latin-1')
        i += nlen + vlen
    if env.get('DOCUMENT_URI') == '/api/v1/app-503':
        out = b'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nfrom the app\n'
    else:
        text = ''.join('%s=%s\n' % kv for kv in sorted(env.items()))
        text += 'BODY_LENGTH=%d\n' % len(body)
        out = (b'Status: 200 OK\r\nContent-Type: text/plain\r\n'
               b'X-Request-Id: from-the-app\r\n\r\n' + text.encode('latin-1'))
    for k in range(0, len(out), 32768):
        conn.sendall(record(6, rid, out[k:k + 32768]))
    conn.sendall(record(6, rid, b''))
    conn.sendall(record(3, rid, struct.pack('>IB3x', 0, 0)))

path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(16)
while True:
    c, _ = s.accept()
    try:
        serve(c)
    except (EOFError, OSError):
        pass
    finally:
        c.close()
EOF
    "$PYTHON" "$tmp/stub.py" "$sock" </dev/null >"$tmp/stub.out" 2>&1 &
    stub_pid=$!
    i=0
    while [ ! -S "$sock" ] && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
    check "the FastCGI stand-in listens on $sock" test -S "$sock"

    param() { grep -qx "$1" "$tmp/b"; }

    code=$(req -H 'Tenant-Slug: evil' -H 'Proxy: http://evil.example' "$T/api/v1/agents?limit=5")
    status_is "tenant request reaches the application" 200 "$code"
    check "  ... TENANT_SLUG=acme" param 'TENANT_SLUG=acme'
    check "  ... REQUEST_METHOD=GET" param 'REQUEST_METHOD=GET'
    check "  ... DOCUMENT_URI=/api/v1/agents" param 'DOCUMENT_URI=/api/v1/agents'
    check "  ... REQUEST_URI=/api/v1/agents?limit=5" param 'REQUEST_URI=/api/v1/agents?limit=5'
    check "  ... QUERY_STRING=limit=5" param 'QUERY_STRING=limit=5'
    check "  ... REMOTE_ADDR=127.0.0.1" param 'REMOTE_ADDR=127.0.0.1'
    check "  ... HTTPS=on" param 'HTTPS=on'
    check "  ... a client's Proxy header never arrives as HTTP_PROXY (httpoxy)" \
        sh -c '! grep -q "^HTTP_PROXY=." "$1"' sh "$tmp/b"
    check "  ... a client's Tenant-Slug header does not change TENANT_SLUG" \
        sh -c 'test "$(grep -c "^TENANT_SLUG=" "$1")" = 1' sh "$tmp/b"
    check "  ... no SCRIPT_FILENAME" sh -c '! grep -q "^SCRIPT_FILENAME=" "$1"' sh "$tmp/b"
    rid=$(hdr X-Request-Id)
    check "  ... REQUEST_ID is the X-Request-Id the client got" param "REQUEST_ID=$rid"
    check "  ... and the application's own X-Request-Id is dropped" \
        test "$(hdr_count X-Request-Id)" = 1
    check "  ... the security headers are added to the application's answer" \
        test "$(hdr X-Frame-Options)" = DENY -a -n "$(hdr Strict-Transport-Security)"

    code=$(req --http1.1 -H 'Host: ACME.LocalHost' "$A/api/v1/agents")
    status_is "upper-case tenant host reaches the application" 200 "$code"
    check "  ... with TENANT_SLUG=acme (lower case)" param 'TENANT_SLUG=acme'

    code=$(req "$A/healthz")
    status_is "apex /healthz reaches the application" 200 "$code"
    check "  ... with TENANT_SLUG empty" param 'TENANT_SLUG='
    code=$(req -X POST -H 'Content-Type: application/json' -d '{}' "$A/api/v1/tenants")
    status_is "apex POST /api/v1/tenants reaches the application" 200 "$code"
    check "  ... with TENANT_SLUG empty" param 'TENANT_SLUG='
    code=$(req "http://127.0.0.1:$mp/metrics")
    status_is "GET /metrics on the metrics port reaches the application" 200 "$code"
    check "  ... with TENANT_SLUG empty" param 'TENANT_SLUG='

    head -c 1048576 /dev/zero >"$tmp/max"
    code=$(req -H 'Content-Type: application/json' --data-binary @"$tmp/max" "$T/api/v1/agents")
    status_is "a body of exactly 1 MiB reaches the application" 200 "$code"
    check "  ... whole (CONTENT_LENGTH and BODY_LENGTH 1048576)" \
        sh -c 'grep -qx CONTENT_LENGTH=1048576 "$1" && grep -qx BODY_LENGTH=1048576 "$1"' sh "$tmp/b"

    # crewd reads exactly CONTENT_LENGTH bytes: a body sent without a
    # length (chunked in HTTP/1.1, a stream in HTTP/2) must arrive with one.
    head -c 1000 /dev/zero >"$tmp/small"
    for proto in --http1.1 --http2; do
        code=$(req "$proto" -X POST -H 'Content-Type: application/json' \
            -H 'Transfer-Encoding: chunked' -T - "$T/api/v1/agents" <"$tmp/small")
        status_is "a body without Content-Length ($proto) reaches the application" 200 "$code"
        check "  ... with CONTENT_LENGTH=1000 and all of it" \
            sh -c 'grep -qx CONTENT_LENGTH=1000 "$1" && grep -qx BODY_LENGTH=1000 "$1"' sh "$tmp/b"
    done
    head -c 1048577 /dev/zero >"$tmp/big"
    code=$(req --http1.1 -X POST -H 'Transfer-Encoding: chunked' -T - "$T/api/v1/agents" <"$tmp/big")
    status_is "a chunked body of 1 MiB + 1 byte: 413" 413 "$code"
    check "  ... as problem+json" is_problem 413
    head -c 1048577 /dev/zero >"$tmp/big"
    code=$(req --http2 -X POST -H 'Content-Type: application/json' -T - "$T/api/v1/agents" <"$tmp/big")
    status_is "an HTTP/2 body of 1 MiB + 1 byte without a length: 413" 413 "$code"
    check "  ... as problem+json" is_problem 413

    code=$(req "$T/api/v1/app-503")
    status_is "the application's own 503 passes through" 503 "$code"
    check "  ... untouched (its body, not nginx's)" grep -qx 'from the app' "$tmp/b"

    kill "$stub_pid" 2>/dev/null
    wait "$stub_pid" 2>/dev/null
    stub_pid=
fi

kill -TERM "$nginx_pid" 2>/dev/null
wait "$nginx_pid" 2>/dev/null
nginx_pid=
if grep -q '\[emerg\]\|\[alert\]' "$tmp/live/logs/error.log" "$tmp/live/nginx.out" 2>/dev/null; then
    grep '\[emerg\]\|\[alert\]' "$tmp/live/logs/error.log" "$tmp/live/nginx.out" | sed 's/^/#   /'
    bad "nginx logged no emerg or alert"
else
    ok "nginx logged no emerg or alert"
fi

summary
[ "$failed" = 0 ]
