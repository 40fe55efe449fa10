/*
 * The master process: binds (or inherits) the FastCGI socket, forks the
 * workers, re-forks any that dies, and owns the signals:
 *
 *   SIGTERM, SIGINT  stop accepting, let requests in flight finish, exit
 *   SIGHUP           re-read the configuration, start a new generation of
 *                    workers on the same socket, then retire the old one
 *                    gracefully: no request is dropped
 */
#ifndef CREWD_MASTER_H
#define CREWD_MASTER_H

#include <stdbool.h>

#include "conf.h"
#include "error.h"

/*
 * Returns the listening socket: the one systemd passed (LISTEN_FDS) or a
 * new unix socket at conf->listen.  *owned tells whether we made the
 * socket file (and so remove it at exit).
 */
int master_listen(const struct crewd_conf *conf, bool *owned,
    struct crewd_error *err);

/*
 * In a child of the master (a worker, the shipper): on_stop handles
 * SIGTERM and SIGINT without SA_RESTART, so a blocked accept() or poll()
 * returns; SIGPIPE and SIGHUP are ignored (a client gone mid-response
 * costs its request only; reloads are the master's); every signal is
 * unblocked; and the child follows the master if the master dies.
 */
void master_child_signals(void (*on_stop)(int));

/* Runs until stopped; returns the process exit status. */
int master_run(const char *conf_path, struct crewd_conf *conf,
    int listen_fd, bool socket_owned);

#endif
