/*
 * A worker: one process, one persistent database connection, one request
 * at a time.  It accepts FastCGI connections on the socket the master
 * bound, walks each request through the tenant reset, the route table and
 * one handler, and sends exactly one response.
 */
#ifndef CREWD_WORKER_H
#define CREWD_WORKER_H

#include "conf.h"
#include "token.h"

/* Never returns: the worker exits 0 after SIGTERM, non-zero on a fault. */
void worker_run(const struct crewd_conf *conf,
    const struct token_secret *secret, int listen_fd)
    __attribute__((noreturn));

#endif
