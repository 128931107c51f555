/* tmp_mapped - a small file of the user's under a temporary directory,
 * mapped MAP_SHARED (as a JVM maps /tmp/hsperfdata_USER/PID), comes back
 * from the image if it is gone at restore.
 *
 * The file ($CK_TMPMAP_DIR or $TMPDIR or /tmp, "ckshim-tmpmap-PID", mode
 * 0640, 3 pages of a pattern, "before" written through the mapping) is
 * closed after mmap. Its path is printed ("info: file PATH") so that a
 * test can delete it between checkpoint and restore. After restore: the
 * mapping still holds the pattern and "before"; a write through the
 * mapping reaches the file now at that path (msync, then open + pread);
 * the file has mode 0640. The file is removed at the end.
 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "testlib.h"

#define LEN (3 * 4096)

int main(void)
{
    static unsigned char buf[LEN];
    const char *dir = getenv("CK_TMPMAP_DIR");
    if (!dir)
        dir = getenv("TMPDIR");
    if (!dir)
        dir = "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/ckshim-tmpmap-%d", dir, (int)getpid());
    unlink(path);
    mode_t old = umask(0);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0640);
    umask(old);
    check(fd >= 0, "open %s: %s", path, strerror(errno));
    test_fill(buf, LEN, 7);
    check(write(fd, buf, LEN) == LEN, "write %s", path);
    unsigned char *m = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    check(m != MAP_FAILED, "mmap: %s", strerror(errno));
    close(fd);
    memcpy(m + 100, "before", 6);
    memcpy(buf + 100, "before", 6);
    test_msg("file %s", path);
    test_ready();
    test_wait_go();

    check(memcmp(m, buf, LEN) == 0, "the mapping lost its contents");
    memcpy(m + 200, "after restore", 13);
    check_sys(msync(m, LEN, MS_SYNC));
    fd = open(path, O_RDONLY);
    check(fd >= 0, "%s is gone after restore: %s", path, strerror(errno));
    char got[16] = "";
    check(pread(fd, got, 13, 200) == 13, "pread");
    check(memcmp(got, "after restore", 13) == 0, "a write through the mapping did not reach %s",
          path);
    struct stat st;
    check_sys(fstat(fd, &st));
    check((st.st_mode & 07777) == 0640, "%s has mode %o, not 640", path, st.st_mode & 07777);
    close(fd);
    unlink(path);
    pass();
}
