/* test_ctlproto.c - control socket directory and paths. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ctlproto.h"

static void test_sock_dir(void **state)
{
    char buf[256], want[64];
    (void)state;

    setenv("CKSHIM_DIR", "/run/x/ckshim-test/", 1);
    assert_int_equal(ck_sock_dir(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/x/ckshim-test");
    assert_int_equal(ck_sock_path(buf, sizeof(buf), 1234), 0);
    assert_string_equal(buf, "/run/x/ckshim-test/1234.sock");
    assert_int_equal(ck_sock_path(buf, 20, 1234), -ENAMETOOLONG);
    assert_int_equal(ck_sock_dir(buf, 5), -ENAMETOOLONG);

    setenv("CKSHIM_DIR", "", 1);
    setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
    assert_int_equal(ck_sock_dir(buf, sizeof(buf)), 0);
    assert_string_equal(buf, "/run/user/1000/ckshim");

    unsetenv("CKSHIM_DIR");
    unsetenv("XDG_RUNTIME_DIR");
    assert_int_equal(ck_sock_dir(buf, sizeof(buf)), 0);
    snprintf(want, sizeof(want), "/tmp/ckshim-%u", (unsigned)getuid());
    assert_string_equal(buf, want);
}

static void test_prepare(void **state)
{
    char base[] = "/tmp/ckctl-XXXXXX";
    char dir[128], file[160];
    struct stat st;
    (void)state;

    assert_non_null(mkdtemp(base));
    snprintf(dir, sizeof(dir), "%s/a/b", base);
    assert_int_equal(ck_sock_dir_prepare(dir), 0);      /* creates parents */
    assert_int_equal(stat(dir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 077, 0);
    assert_int_equal(ck_sock_dir_prepare(dir), 0);      /* exists: fine */

    assert_int_equal(chmod(dir, 0770), 0);
    assert_int_equal(ck_sock_dir_prepare(dir), -EPERM);
    assert_int_equal(chmod(dir, 0700), 0);

    snprintf(file, sizeof(file), "%s/file", base);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(ck_sock_dir_prepare(file), -ENOTDIR);
    assert_int_equal(ck_sock_dir_prepare(""), -EINVAL);

    unlink(file);
    rmdir(dir);
    snprintf(dir, sizeof(dir), "%s/a", base);
    rmdir(dir);
    rmdir(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sock_dir),
        cmocka_unit_test(test_prepare),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
