#include "config.h"

#include <stdint.h>
#include <time.h>

#include <sodium.h>

#include "uuid.h"

int
hex_digit_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool
uuid_parse(const char *s, size_t len, char out[UUID_TEXT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";

    if (len != UUID_TEXT_LEN)
        return false;

    for (size_t i = 0; i < UUID_TEXT_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
            out[i] = '-';
            continue;
        }
        int v = hex_digit_value(s[i]);
        if (v < 0)
            return false;
        out[i] = digits[v];
    }
    out[UUID_TEXT_LEN] = '\0';
    return true;
}

static void
uuid_format(const unsigned char bytes[16], char out[UUID_TEXT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t pos = 0;

    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[pos++] = '-';
        out[pos++] = digits[bytes[i] >> 4];
        out[pos++] = digits[bytes[i] & 0x0f];
    }
    out[pos] = '\0';
}

void
uuid_generate(char out[UUID_TEXT_LEN + 1])
{
    unsigned char bytes[16];

    randombytes_buf(bytes, sizeof(bytes));
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);  /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);  /* RFC 4122 */
    uuid_format(bytes, out);
}

void
uuid_generate_v7(char out[UUID_TEXT_LEN + 1])
{
    /* The last stamp made here: ms << 12 | fraction in 4096ths. */
    static uint64_t last;
    unsigned char bytes[16];
    struct timespec now;
    uint64_t stamp;

    clock_gettime(CLOCK_REALTIME, &now);
    stamp = (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
    stamp = stamp << 12 |
        (uint64_t)(now.tv_nsec % 1000000) * 4096 / 1000000;

    /* Never the same or an older stamp twice in one process. */
    if (stamp <= last)
        stamp = last + 1;
    last = stamp;

    randombytes_buf(bytes, sizeof(bytes));
    for (int i = 0; i < 6; i++)
        bytes[i] = (unsigned char)(stamp >> (12 + 8 * (5 - i)));
    bytes[6] = (unsigned char)(0x70 | ((stamp >> 8) & 0x0f));  /* v7 */
    bytes[7] = (unsigned char)(stamp & 0xff);
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);  /* RFC 4122 */
    uuid_format(bytes, out);
}
