#!/bin/sh
# Nightly drift check for cron: runs `reconciler drift` and sends an alert when it finds
# drift (exit 2) or fails (exit 1); with DRIFT_PR_BRANCH, it also accepts the portal's changes
# into one pull request (`reconciler drift --write`). Exits 0, 2 or 1 the same way, for cron and monitors.
# Arguments are passed on, e.g. `drift.sh --tenant acme/acme-norway`.
#
# Settings, from the environment or from the file named by RECONCILER_ENV_FILE (mode 0600):
#   RECONCILER_STORE, RECONCILER_PLAN_KEY   a read-only login and the plan key (docs/ci.md)
#   DRIFT_WEBHOOK_URL  POST the alert as JSON {"text": ...} (Slack, Teams, Mattermost, ...)
#   DRIFT_MAIL_TO      mail the alert to this address with mail(1)
#   DRIFT_PR_BRANCH    accept the portal's changes with `reconciler drift --write`, commit them
#                      on this branch (e.g. reconciler/accept-drift), push it to origin and
#                      open (or update) one pull request with gh(1) when gh is on PATH;
#                      the alert then says so. Unset: alert only.
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

accept() {
    # drift --write edits the tenant files in place; conflicts and passwords are listed, not written.
    accepted=$(mktemp) || return 1
    wrc=0
    reconciler drift --write "$@" >"$accepted" 2>>"$errors" || wrc=$?
    if [ "$wrc" -eq 2 ]; then
        # Commit on the branch, then back to where the checkout was: the next night's
        # `git pull --ff-only` must run on the tenants' own branch, not this one.
        branch=$(git symbolic-ref --quiet --short HEAD) || branch=""
        [ -n "$branch" ] || commit=$(git rev-parse HEAD)
        if { git switch --quiet -C "$DRIFT_PR_BRANCH" &&
               git add tenants &&
               git commit --quiet -m "Accept the portal's hand changes (reconciler drift --write)" &&
               git push --quiet --force origin "$DRIFT_PR_BRANCH"; }; then
            pushed=1
        else
            pushed=""
        fi
        if [ -n "$branch" ]; then
            git switch --quiet --discard-changes "$branch" || pushed=""
        elif [ -n "${commit:-}" ]; then
            git switch --quiet --discard-changes --detach "$commit" || pushed=""
        fi
        if [ -z "$pushed" ]; then
            rm -f "$accepted"
            return 1
        fi
        how="pushed; no gh on PATH: open the pull request by hand"
        if command -v gh >/dev/null 2>&1; then
            pr=$(gh pr list --head "$DRIFT_PR_BRANCH" --state open --json number --jq '.[].number')
            if [ -n "$pr" ]; then
                gh pr edit "$pr" --body-file "$accepted" >/dev/null
            else
                gh pr create --head "$DRIFT_PR_BRANCH" --body-file "$accepted" \
                    --title "Accept the portal's hand changes into git" >/dev/null
            fi
            how="pull request opened or updated"
        fi
        printf '\n\nAccepted into branch %s (%s):\n' "$DRIFT_PR_BRANCH" "$how" >>"$report"
    fi
    cat "$accepted" >>"$report"
    rm -f "$accepted"
    [ "$wrc" -eq 0 ] || [ "$wrc" -eq 2 ]
}

if [ "$rc" -eq 2 ] && [ -n "${DRIFT_PR_BRANCH:-}" ]; then
    accept "$@" || rc=1
fi

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
