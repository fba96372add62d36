#!/bin/bash
# The seed's release-tasks.sh (shared/seeds/), commands replaced by a no-op process: TASK_FIRST
# and TASK (/usr/bin/true, or the benchmark's stamp for the first one). bash's own `true` is a
# builtin and would spawn nothing, so the external one is named.

echo "Running Release Tasks"

if [ "$RUN_MIGRATIONS_DURING_RELEASE" == "true" ]; then
  echo "Running Migrations"
  $TASK_FIRST    # was: bundle exec rails db:migrate
fi

if [ "$SEED_DB_DURING_RELEASE" == "true" ]; then
  echo "Seeding DB"
  $TASK          # was: bundle exec rails db:seed
fi

if [ "$CLEAR_CACHE_DURING_RELEASE" == "true" ]; then
  echo "Clearing Rails Cache"
  $TASK          # was: bundle exec rails r "Rails.cache.clear"
fi

echo "Done running release-tasks.sh"
