#!/usr/bin/env python3
"""Applies db/migrations/*.sql in order to the app's SQLite database, once each."""
import os, sqlite3, sys, time, urllib.parse

url = os.environ.get("DATABASE_URL", "")
print(f"connecting to {url}")  # releasectl masks the password in every log
path = os.path.join(os.environ["BOOKSHOP_DATA"], "bookshop.sqlite3")
db = sqlite3.connect(path)
db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)")
done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
folder = os.path.join(os.path.dirname(__file__), "..", "db", "migrations")
pending = sorted(f for f in os.listdir(folder) if f.endswith(".sql") and f[:-4] not in done)
if not pending:
    print("schema up to date")
for name in pending:
    version = name[:-4]
    print(f"== {version}: migrating", flush=True)
    started = time.time()
    try:
        db.executescript(open(os.path.join(folder, name)).read())
    except sqlite3.Error as e:
        print(f"== {version}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    db.execute("INSERT INTO schema_migrations VALUES (?)", (version,))
    db.commit()
    time.sleep(0.3)  # so the demo shows output streaming as it happens
    print(f"== {version}: migrated ({time.time() - started:.2f}s)", flush=True)
