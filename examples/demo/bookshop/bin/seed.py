#!/usr/bin/env python3
"""Seeds the catalogue with a few books (idempotent)."""
import os, sqlite3

db = sqlite3.connect(os.path.join(os.environ["BOOKSHOP_DATA"], "bookshop.sqlite3"))
books = [("The Pragmatic Programmer", 1999), ("Release It!", 2007), ("Site Reliability Engineering", 2016)]
for title, year in books:
    db.execute("INSERT OR IGNORE INTO books (title, year) VALUES (?, ?)", (title, year))
db.commit()
count = db.execute("SELECT COUNT(*) FROM books").fetchone()[0]
print(f"catalogue has {count} books")
