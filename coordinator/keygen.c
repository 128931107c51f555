/* keygen.c - coord keygen FILE: a new random key for authenticated images. */
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "coord.h"

int cmd_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return ck_usage_error("keygen", argc < 2 ? "missing FILE" : "expected exactly one FILE");
    char err[512];
    if (ck_auth_init() < 0) {
        ck_msg("keygen: libsodium could not be initialised");
        return CK_EXIT_FAIL;
    }
    if (ck_key_generate(argv[1], err, sizeof err) < 0) {
        ck_msg("keygen: %s", err);
        return CK_EXIT_FAIL;
    }
    ck_msg("keygen: wrote a new 256-bit key to %s (keep it private: it authenticates your images)",
           argv[1]);
    return CK_EXIT_OK;
}
