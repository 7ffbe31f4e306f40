-- mxwarden state store, migration 1: the history table.
-- Migrations are applied in order by db/store.c at start-up (PRAGMA
-- user_version); a database whose version is newer than the binary knows
-- is refused.

CREATE TABLE IF NOT EXISTS meta (
	key	TEXT PRIMARY KEY,
	value	TEXT NOT NULL
);

-- One row per finished transaction: what was decided and why.
CREATE TABLE IF NOT EXISTS history (
	id		INTEGER PRIMARY KEY,
	ts		INTEGER NOT NULL,	-- unix seconds
	client_ip	TEXT NOT NULL,
	helo		TEXT,
	mail_from	TEXT,
	rcpt_count	INTEGER NOT NULL,
	action		TEXT NOT NULL,
	score		REAL NOT NULL,
	symbols		TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_ts ON history(ts);
CREATE INDEX IF NOT EXISTS history_ip ON history(client_ip, ts);
