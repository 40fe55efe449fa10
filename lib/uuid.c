#include "config.h"

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

void
uuid_generate(char out[UUID_TEXT_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char bytes[16];
    size_t pos = 0;

    randombytes_buf(bytes, sizeof(bytes));
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40);  /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80);  /* RFC 4122 */

    for (size_t i = 0; i < sizeof(bytes); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[pos++] = '-';
        out[pos++] = digits[bytes[i] >> 4];
        out[pos++] = digits[bytes[i] & 0x0f];
    }
    out[pos] = '\0';
}
