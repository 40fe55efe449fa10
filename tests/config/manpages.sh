#!/bin/sh
# tests/config/manpages.sh: checks man/crewd.8.in and man/crewctl.8.in.
#
# Each page renders without a warning (groff -ww), and every command that
# "crewctl -h" lists is described in crewctl(8), every option that
# "crewd -h" lists in crewd(8): a command added without its page fails
# here.  Automake test: exit 0 pass, 1 fail, 77 skip without groff.  The
# last line is "manpages: N passed, N failed".  CREWD_SRCDIR is the source
# tree, CREWD_BUILDDIR the build tree (defaults: this script's ../..).

set -u

srcdir=${CREWD_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${CREWD_BUILDDIR:-$srcdir}

passed=0
failed=0
ok() { passed=$((passed + 1)); printf 'ok - %s\n' "$*"; }
bad() { failed=$((failed + 1)); printf 'FAIL - %s\n' "$*"; }
summary() { printf 'manpages: %d passed, %d failed\n' "$passed" "$failed"; }

if ! command -v groff >/dev/null 2>&1; then
    echo "groff is not installed"
    [ "${CREWD_REQUIRE_INTEGRATION:-0}" = 1 ] && exit 1
    exit 77
fi

for page in crewd crewctl; do
    in=$srcdir/man/$page.8.in
    out=$(groff -man -Tutf8 -ww -z "$in" 2>&1)
    if [ -z "$out" ]; then
        ok "$page(8) renders without warnings"
    else
        bad "$page(8) renders with warnings: $out"
    fi
done

# The page as text, hyphens and spacing made plain, to search in.
text() {
    groff -man -Tascii -P-c -P-b -P-u "$srcdir/man/$1.8.in" 2>/dev/null |
        tr -s ' \n' '  '
}
crewctl_text=$(text crewctl)
crewd_text=$(text crewd)

# "  migrate status ..." lines of the usage: their first two words.
"$builddir/crewctl/crewctl" -h 2>&1 |
    sed -n 's/^  \([a-z][a-z-]*\)\( [a-z][a-z-]*\)\{0,1\}.*/\1\2/p' |
    sort -u > "${TMPDIR:-/tmp}/crewctl-commands.$$"
count=0
while read -r command; do
    count=$((count + 1))
    case " $crewctl_text " in
    *" $command"*) ok "crewctl(8) describes \"$command\"" ;;
    *) bad "crewctl(8) does not describe \"$command\"" ;;
    esac
done < "${TMPDIR:-/tmp}/crewctl-commands.$$"
rm -f "${TMPDIR:-/tmp}/crewctl-commands.$$"
[ "$count" -ge 10 ] && ok "crewctl -h lists $count commands" ||
    bad "crewctl -h lists only $count commands"

for option in $("$builddir/fcgi/crewd" -h 2>&1 |
                sed -n 's/^usage: crewd //p' | grep -o -- '-[a-zA-Z]'); do
    case " $crewd_text " in
    *" $option "*) ok "crewd(8) describes $option" ;;
    *) bad "crewd(8) does not describe $option" ;;
    esac
done

summary
[ "$failed" -eq 0 ]
