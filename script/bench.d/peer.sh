#!/bin/bash
# The peer: what a PaaS of the Heroku era runs instead of releasectl. inotifywait watches the
# drop folder; a bash loop runs release-tasks.sh for one request at a time, in the app
# directory, with the request's variables (a KEY=value file, since bash reads no JSON), output
# into logs/<id>.log; then it moves the request to done/ and writes done/<id>.done holding the
# exit status: its "final record". Nothing is fsynced.
#   peer.sh SPOOL
cd "$1" || exit 1
inotifywait -m -e moved_to --format '%f' incoming 2>inotifywait.err | while read -r f; do
  case $f in *.env) ;; *) continue ;; esac
  id=${f%.env}
  (
    set -a; . "incoming/$f"; set +a
    export RELEASE_ID=$id
    cd "$APP_DIR" && exec bash ./release-tasks.sh
  ) > "logs/$id.log" 2>&1
  status=$?
  mv "incoming/$f" "done/$f"
  echo "$status" > "done/$id.done"
done
