#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "unit.h"

static const char *const names[] = { "first.txt", "second.bin", NULL };

/* A private folder for one test; removed by clean_folder. */
static char *
new_folder(void)
{
    char *dir = strdup("/tmp/crewd-unit-archive-XXXXXX");

    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    return dir;
}

static void
clean_folder(char *dir)
{
    char *command;

    if (asprintf(&command, "rm -rf '%s'", dir) > 0) {
        CU_ASSERT_EQUAL(system(command), 0);
        free(command);
    }
    free(dir);
}

static char *
path_in(const char *dir, const char *name)
{
    char *path;

    CU_ASSERT_FATAL(asprintf(&path, "%s/%s", dir, name) > 0);
    return path;
}

/* Writes an archive of first.txt ("hello") and second.bin (n bytes). */
static void
write_archive(const char *path, size_t n, struct archive_member out[2])
{
    struct archive_writer w;
    struct crewd_error err;
    unsigned char *data = malloc(n + 1);

    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 7);
    error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(archive_create(&w, path, &err), 0);
    CU_ASSERT_EQUAL(archive_begin(&w, "first.txt", &err), 0);
    CU_ASSERT_EQUAL(archive_write(&w, "hel", 3, &err), 0);
    CU_ASSERT_EQUAL(archive_write(&w, "lo", 2, &err), 0);
    CU_ASSERT_EQUAL(archive_end(&w, &out[0], &err), 0);
    CU_ASSERT_EQUAL(archive_begin(&w, "second.bin", &err), 0);
    CU_ASSERT_EQUAL(archive_write(&w, data, n, &err), 0);
    CU_ASSERT_EQUAL(archive_end(&w, &out[1], &err), 0);
    CU_ASSERT_EQUAL(archive_finish(&w, &err), 0);
    free(w.path);
    free(data);
}

static int
extract(const char *path, const char *dir, struct archive_member *members,
    int *count, struct crewd_error *err)
{
    error_clear(err);
    return archive_extract(path, dir, names, members, count, err);
}

static void
test_round_trip(void)
{
    char *dir = new_folder(), *out = new_folder();
    char *path = path_in(dir, "a.tar"), *first = path_in(out, "first.txt");
    struct archive_member written[2], read[ARCHIVE_MEMBERS_MAX];
    struct crewd_error err;
    struct stat st;
    char text[8] = "";
    FILE *f;
    int count;

    /* 70000 bytes: more than the writer's buffer, not a block multiple. */
    write_archive(path, 70000, written);
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0600);
    CU_ASSERT_EQUAL(st.st_size % 10240, 0);
    CU_ASSERT_STRING_EQUAL(written[0].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e2"
        "9e1b161e5c1fa7425e73043362938b9824");
    CU_ASSERT_EQUAL(written[1].size, 70000);

    CU_ASSERT_EQUAL(extract(path, out, read, &count, &err), 0);
    CU_ASSERT_EQUAL_FATAL(count, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_STRING_EQUAL(read[i].name, written[i].name);
        CU_ASSERT_EQUAL(read[i].size, written[i].size);
        CU_ASSERT_STRING_EQUAL(read[i].sha256, written[i].sha256);
    }
    f = fopen(first, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fread(text, 1, sizeof(text) - 1, f), 5);
    fclose(f);
    CU_ASSERT_STRING_EQUAL(text, "hello");

    free(path);
    free(first);
    clean_folder(dir);
    clean_folder(out);
}

/* Copies the first size bytes of path to copy, with byte at flipped. */
static void
copy_changed(const char *path, const char *copy, long size, long at)
{
    FILE *in = fopen(path, "rb"), *out = fopen(copy, "wb");
    int c;

    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    for (long i = 0; i < size && (c = fgetc(in)) != EOF; i++)
        fputc(i == at ? c ^ 0x20 : c, out);
    fclose(in);
    fclose(out);
}

static void
test_damage_is_refused(void)
{
    char *dir = new_folder();
    char *path = path_in(dir, "a.tar"), *bad = path_in(dir, "bad.tar");
    struct archive_member written[2], read[ARCHIVE_MEMBERS_MAX];
    struct crewd_error err;
    struct stat st;
    int count;

    write_archive(path, 1000, written);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);

    /* Cut in the data, in a header, and before the end blocks. */
    {
        const long sizes[] = { 700, 512 + 512 + 100, 512 * 5 };

        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            char *out = new_folder();

            copy_changed(path, bad, sizes[i], -1);
            CU_ASSERT_EQUAL(extract(bad, out, read, &count, &err), -1);
            CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "truncated"));
            clean_folder(out);
        }
    }

    /* A header byte changed: its checksum no longer holds. */
    {
        char *out = new_folder();

        copy_changed(path, bad, st.st_size, 3);
        CU_ASSERT_EQUAL(extract(bad, out, read, &count, &err), -1);
        CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "does not check"));
        clean_folder(out);
    }

    /* A data byte changed: read, but its digest differs. */
    {
        char *out = new_folder();

        copy_changed(path, bad, st.st_size, 512 + 1);
        CU_ASSERT_EQUAL(extract(bad, out, read, &count, &err), 0);
        CU_ASSERT_STRING_NOT_EQUAL(read[0].sha256, written[0].sha256);
        clean_folder(out);
    }

    free(path);
    free(bad);
    clean_folder(dir);
}

static void
test_unexpected_members_are_refused(void)
{
    static const char *const only_first[] = { "first.txt", NULL };
    char *dir = new_folder(), *out = new_folder();
    char *path = path_in(dir, "a.tar");
    struct archive_member written[2], read[ARCHIVE_MEMBERS_MAX];
    struct crewd_error err;
    int count;

    write_archive(path, 10, written);
    error_clear(&err);
    CU_ASSERT_EQUAL(archive_extract(path, out, only_first, read, &count,
        &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.detail, "unexpected member"));

    free(path);
    clean_folder(dir);
    clean_folder(out);
}

/* A header as GNU tar writes it for a size past 8 GiB: base-256. */
static void
test_base_256_sizes_are_read(void)
{
    char *dir = new_folder(), *out = new_folder();
    char *path = path_in(dir, "a.tar");
    unsigned char archive[512 * 4];
    struct archive_member read[ARCHIVE_MEMBERS_MAX];
    struct crewd_error err;
    unsigned sum = 0;
    FILE *f;
    int count;

    memset(archive, 0, sizeof(archive));
    memcpy(archive, "first.txt", 9);
    memcpy(archive + 100, "0000600", 7);
    archive[124] = 0x80;
    archive[124 + 11] = 5;
    memcpy(archive + 136, "00000000000", 11);
    archive[156] = '0';
    memcpy(archive + 257, "ustar", 6);
    memcpy(archive + 263, "00", 2);
    for (int i = 0; i < 512; i++)
        sum += i >= 148 && i < 156 ? ' ' : archive[i];
    snprintf((char *)archive + 148, 8, "%06o", sum);
    memcpy(archive + 512, "hello", 5);

    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(archive, 1, sizeof(archive), f),
        sizeof(archive));
    fclose(f);

    CU_ASSERT_EQUAL(extract(path, out, read, &count, &err), 0);
    CU_ASSERT_EQUAL_FATAL(count, 1);
    CU_ASSERT_EQUAL(read[0].size, 5);
    CU_ASSERT_STRING_EQUAL(read[0].sha256, "2cf24dba5fb0a30e26e83b2ac5b9e2"
        "9e1b161e5c1fa7425e73043362938b9824");

    free(path);
    clean_folder(dir);
    clean_folder(out);
}

void
register_archive_tests(void)
{
    CU_pSuite s = unit_suite("archive");

    unit_test(s, "round trip", test_round_trip);
    unit_test(s, "damage is refused", test_damage_is_refused);
    unit_test(s, "unexpected members are refused",
        test_unexpected_members_are_refused);
    unit_test(s, "base-256 sizes are read", test_base_256_sizes_are_read);
}
