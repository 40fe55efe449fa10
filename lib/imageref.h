/*
 * Container image references (a tool's docker_image), checked against
 * the grammar of the OCI distribution reference:
 *
 *   reference := name [":" tag] ["@" digest]
 *   name      := [registry "/"] path
 *   registry  := host [":" port]
 *   host      := domain-name | IPv4 address | "[" IPv6 address "]"
 *   path      := component ("/" component)*
 *   component := [a-z0-9]+ (separator [a-z0-9]+)*
 *   separator := "." | "_" | "__" | "-"+
 *   tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest    := "sha256:" and exactly 64 lower-case hex digits
 *
 * A domain name is dot-separated labels of letters, digits and inner
 * hyphens; a port is a number from 1 to 65535.  The whole reference is
 * at most IMAGEREF_MAX bytes.  Names are taken as written: nothing is
 * normalised (no implicit docker.io/library/ or :latest).
 */
#ifndef CREWD_IMAGEREF_H
#define CREWD_IMAGEREF_H

#include <stdbool.h>

#define IMAGEREF_MAX 255

/* True when ref (NUL-terminated) is a valid image reference. */
bool imageref_valid(const char *ref);

#endif
