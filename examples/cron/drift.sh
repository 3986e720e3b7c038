#!/bin/sh
# Nightly drift check for cron: runs `reconciler drift` and sends an alert when it finds
# drift (exit 2) or fails (exit 1). Exits 0, 2 or 1 the same way, for cron and monitors.
# Arguments are passed on, e.g. `drift.sh --tenant acme/acme-norway`.
#
# Settings, from the environment or from the file named by RECONCILER_ENV_FILE (mode 0600):
#   RECONCILER_STORE, RECONCILER_PLAN_KEY   a read-only login and the plan key (docs/ci.md)
#   DRIFT_WEBHOOK_URL  POST the alert as JSON {"text": ...} (Slack, Teams, Mattermost, ...)
#   DRIFT_MAIL_TO      mail the alert to this address with mail(1)
# When no alert could be sent, it goes to stderr, which cron mails to MAILTO.
# Run it from the tenants checkout, with the tool's venv (reconciler, python3) on PATH.
set -u

if [ -n "${RECONCILER_ENV_FILE:-}" ]; then
    set -a
    . "$RECONCILER_ENV_FILE" || exit 1
    set +a
fi

report=$(mktemp) || exit 1
errors=$(mktemp) || { rm -f "$report"; exit 1; }
trap 'rm -f "$report" "$errors"' EXIT
trap 'exit 1' HUP INT TERM

reconciler drift --format markdown "$@" >"$report" 2>"$errors"
rc=$?

case $rc in
    0) exit 0 ;;
    2) subject="reconciler: drift on $(uname -n): the live portal differs from git"
       body=$report ;;
    *) subject="reconciler: drift check failed on $(uname -n) (exit $rc)"
       body=$errors
       rc=1 ;;
esac

sent=""
if [ -n "${DRIFT_WEBHOOK_URL:-}" ]; then
    # JSON-encode with the Python that runs reconciler; plain sh cannot do it safely.
    if payload=$(python3 -c 'import json, sys; print(json.dumps({"text": sys.argv[1] + "\n\n" + sys.stdin.read()}))' \
                     "$subject" <"$body") &&
        printf '%s\n' "$payload" |
            curl --fail --silent --show-error --max-time 30 \
                --header 'Content-Type: application/json' --data-binary @- "$DRIFT_WEBHOOK_URL" >/dev/null
    then
        sent=1
    else
        echo "drift.sh: the webhook alert failed" >&2
    fi
fi
if [ -n "${DRIFT_MAIL_TO:-}" ]; then
    if mail -s "$subject" "$DRIFT_MAIL_TO" <"$body"; then
        sent=1
    else
        echo "drift.sh: the mail alert failed" >&2
    fi
fi
if [ -z "$sent" ]; then
    printf '%s\n\n' "$subject" >&2
    cat "$body" >&2
fi
exit "$rc"
