/*
 * What crewctl.c shares with the files of its other commands.
 */
#ifndef CREWD_CREWCTL_H
#define CREWD_CREWCTL_H

#include "conf.h"
#include "db.h"
#include "error.h"

/*
 * Connects as the owner role (owner_database_url): crewctl is the
 * operator.  Returns 0, or -1 with err saying which key to look at.
 */
int crewctl_connect(const struct crewd_conf *conf, struct db *db,
    struct crewd_error *err);

/* Prints err for the operator; returns 1, the failure exit status. */
int crewctl_fail(const struct crewd_error *err);

/* Prints the usage to standard error; returns the usage exit status. */
int crewctl_usage_error(void);

/* mongo.c: "crewctl mongo ..."; argv[0] is the word after "mongo". */
int crewctl_mongo(const struct crewd_conf *conf, int argc, char **argv);

/* migrate.c: "crewctl migrate ..."; argv[0] is "migrate". */
int crewctl_migrate(const struct crewd_conf *conf, int argc, char **argv);

/*
 * backup.c and restore.c: "crewctl tenant backup SLUG FILE" and
 * "crewctl tenant restore FILE ..."; argv[0] is "backup" or "restore".
 */
int crewctl_tenant_backup(const struct crewd_conf *conf, int argc,
    char **argv);
int crewctl_tenant_restore(const struct crewd_conf *conf, int argc,
    char **argv);

#endif
