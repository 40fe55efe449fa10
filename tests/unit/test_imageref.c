#include "config.h"

#include <stdio.h>
#include <string.h>

#include "imageref.h"
#include "unit.h"

#define HEX64 "0123456789abcdef0123456789abcdef" \
    "0123456789abcdef0123456789abcdef"

/* Asserts each reference of a NULL-terminated list, naming a failure. */
static void
check_all(const char *const *refs, bool expected)
{
    for (size_t i = 0; refs[i] != NULL; i++) {
        bool got = imageref_valid(refs[i]);

        if (got != expected)
            fprintf(stderr, "\n    imageref_valid(\"%s\") is %s\n",
                refs[i], got ? "true" : "false");
        CU_ASSERT_EQUAL(got, expected);
    }
}

static void
test_names_and_paths(void)
{
    static const char *const good[] = {
        "ubuntu", "a", "0", "library/ubuntu", "org/team/tool",
        "my-tool", "my--tool", "my.tool", "my_tool", "my__tool",
        "a1/b2/c3", "x-y.z_w__v", NULL
    };
    static const char *const bad[] = {
        "", "Ubuntu", "library/Ubuntu", "-tool", "tool-", ".tool",
        "tool.", "_tool", "tool_", "my___tool", "my._tool", "my.-tool",
        "my..tool", "/tool", "tool/", "org//tool", "my tool", "tool\t",
        "caf\xc3\xa9", "tool!", "tool@", NULL
    };

    check_all(good, true);
    check_all(bad, false);
}

static void
test_registries(void)
{
    static const char *const good[] = {
        "docker.io/library/ubuntu", "ghcr.io/org/tool",
        "registry.example.com/a/b/c", "localhost/tool",
        "localhost:5000/tool", "registry.example.com:443/tool",
        "Registry.Example.COM/tool", "my-registry.local/tool",
        "192.168.1.10:5000/tool", "10.0.0.1/tool", "[::1]/tool",
        "[::1]:5000/tool", "[2001:db8::1]:443/org/tool", NULL
    };
    static const char *const bad[] = {
        "-registry.com/tool", "registry-.com/tool", "registry..com/tool",
        ".registry.com/tool", "registry.com:/tool", "registry.com:0/tool",
        "registry.com:65536/tool", "registry.com:123456/tool",
        "registry.com:abc/tool", "registry.com:5000:1/tool",
        "[::1/tool", "[zz::1]/tool", "[]/tool", "[::1]x/tool",
        "[::1]:/tool", "reg_istry.com:5000/tool", "registry.com/Tool",
        "Registry.com", NULL
    };

    check_all(good, true);
    check_all(bad, false);
}

static void
test_tags(void)
{
    static const char *const good[] = {
        "ubuntu:22.04", "ubuntu:latest", "ubuntu:Latest", "tool:_x",
        "tool:v1.2.3-rc.1", "tool:A_b-C.d", "localhost:5000",
        "localhost:5000/tool:1", "[::1]:5000/tool:v2", NULL
    };
    static const char *const bad[] = {
        "ubuntu:", ":latest", "ubuntu:-x", "ubuntu:.x", "ubuntu:a/b",
        "ubuntu:a:b", "ubuntu:a b", "ubuntu:a+b", "[::1]:5000", NULL
    };
    char longest[160];
    char too_long[160];

    check_all(good, true);
    check_all(bad, false);

    strcpy(longest, "tool:");
    memset(longest + 5, 't', 128);
    longest[5 + 128] = '\0';
    CU_ASSERT_TRUE(imageref_valid(longest));

    strcpy(too_long, "tool:");
    memset(too_long + 5, 't', 129);
    too_long[5 + 129] = '\0';
    CU_ASSERT_FALSE(imageref_valid(too_long));
}

static void
test_digests(void)
{
    static const char *const good[] = {
        "tool@sha256:" HEX64, "tool:1.0@sha256:" HEX64,
        "registry.example.com:5000/org/tool:v1@sha256:" HEX64, NULL
    };
    static const char *const bad[] = {
        "tool@", "tool@sha256:", "tool@sha256:" HEX64 "0",
        "tool@sha256:" "0123456789abcdef0123456789abcdef"
            "0123456789abcdef0123456789abcde",
        "tool@sha256:" "0123456789ABCDEF0123456789abcdef"
            "0123456789abcdef0123456789abcdef",
        "tool@sha256:" "0123456789abcdeg0123456789abcdef"
            "0123456789abcdef0123456789abcdef",
        "tool@sha512:" HEX64, "tool@SHA256:" HEX64, "tool@" HEX64,
        "tool@sha256:" HEX64 "@sha256:" HEX64, "@sha256:" HEX64,
        "tool:@sha256:" HEX64, NULL
    };

    check_all(good, true);
    check_all(bad, false);
}

static void
test_total_length(void)
{
    char ref[300];

    /* 255 bytes: "a/" repeated, ending in a one-letter component. */
    for (size_t i = 0; i < 254; i += 2)
        memcpy(ref + i, "a/", 2);
    ref[254] = 'a';
    ref[255] = '\0';
    CU_ASSERT_EQUAL(strlen(ref), IMAGEREF_MAX);
    CU_ASSERT_TRUE(imageref_valid(ref));

    ref[255] = 'a';
    ref[256] = '\0';
    CU_ASSERT_FALSE(imageref_valid(ref));
}

void
register_imageref_tests(void)
{
    CU_pSuite s = unit_suite("image references");

    unit_test(s, "names and paths", test_names_and_paths);
    unit_test(s, "registries, hosts and ports", test_registries);
    unit_test(s, "tags", test_tags);
    unit_test(s, "sha256 digests", test_digests);
    unit_test(s, "at most 255 bytes in all", test_total_length);
}
