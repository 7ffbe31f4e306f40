-- mxwarden state store, migration 2: counters and entries with expiry.
--
-- counters: "increment and read in a window". A row counts events of
-- one kind for one key since start; when start + window has passed, the
-- next increment starts a new window. kind: "rate:NAME", "harvest", ...
CREATE TABLE IF NOT EXISTS counters (
	kind	TEXT NOT NULL,
	key	TEXT NOT NULL,
	start	INTEGER NOT NULL,	-- unix seconds, start of the window
	count	INTEGER NOT NULL,
	expires	INTEGER NOT NULL,	-- start + window: prunable after
	PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS counters_expires ON counters(expires);

-- entries: "set with expiry, lookup". kind: "block" (harvest or admin
-- block of an IP or CIDR), "whitelist", "grey" (greylist triplets),
-- "awl" (auto-whitelisted clients). expires 0 = never.
CREATE TABLE IF NOT EXISTS entries (
	kind	TEXT NOT NULL,
	key	TEXT NOT NULL,
	value	TEXT NOT NULL,
	created	INTEGER NOT NULL,
	expires	INTEGER NOT NULL,
	PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_expires ON entries(expires);
