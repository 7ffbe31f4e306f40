/*
 * dbcli.h - `mxwarden db ...`: the administrator's view of the state
 * database. Changes are rows in the shared database, so a running
 * daemon sees them at its next lookup.
 */
#ifndef MXW_DBCLI_H
#define MXW_DBCLI_H

/*
 * dbcli_main - run one db command on the database at path. argv[0] is
 * the sub-command (list, block, unblock, whitelist, unwhitelist, stats,
 * prune, vacuum). Prints to stdout (--json for scripts), errors to
 * stderr. Exit status: 0, 1 (database error), 2 (usage).
 */
int	 dbcli_main(const char *path, int argc, char **argv);

#endif
