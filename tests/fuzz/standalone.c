/*
 * A main() for a fuzz target without libFuzzer: runs the target once on
 * each file named on the command line, as libFuzzer does when given
 * files, so a gcc build and make check run the same targets over their
 * corpus.  A crash or sanitizer report ends the run (non-zero); the
 * input being run is printed first.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

/* Larger than any seed; libFuzzer's -max_len for the long runs. */
#define INPUT_MAX (1024 * 1024)

int
main(int argc, char **argv)
{
    unsigned char *data = malloc(INPUT_MAX);
    int ran = 0;

    if (data == NULL)
        return 1;
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        unsigned char *exact;
        size_t n;

        if (f == NULL) {
            perror(argv[i]);
            free(data);
            return 1;
        }
        n = fread(data, 1, INPUT_MAX, f);
        fclose(f);
        fprintf(stderr, "Running: %s (%zu bytes)\n", argv[i], n);

        /* A buffer of exactly n bytes: reading past it is a report. */
        exact = malloc(n > 0 ? n : 1);
        if (exact == NULL) {
            free(data);
            return 1;
        }
        memcpy(exact, data, n);
        LLVMFuzzerTestOneInput(exact, n);
        free(exact);
        fprintf(stderr, "Executed %s\n", argv[i]);
        ran++;
    }
    fprintf(stderr, "%d inputs, no finding\n", ran);
    free(data);
    return 0;
}
