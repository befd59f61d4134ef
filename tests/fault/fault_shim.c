/* An LD_PRELOAD shim that makes chosen system calls fail, for fault tests.
 *
 * LH_FAULT_CALL   which call fails: fdatasync, fsync, write, pwrite, writev,
 *                 pwritev, open, mmap (a comma-separated list is allowed)
 * LH_FAULT_AFTER  how many matching calls succeed first (default 0)
 * LH_FAULT_ERRNO  the errno of a failure (default EIO)
 * LH_FAULT_TIMES  how many calls fail, then calls succeed again (default: all)
 * LH_FAULT_PATH   only descriptors/paths whose name contains this (default: any)
 * LH_FAULT_DSYNC  when 1, only descriptors opened with O_DSYNC or O_SYNC (the
 *                 one LMDB writes its meta page through)
 * LH_COUNT_FILE   when set, the process writes there at exit how many calls of
 *                 fdatasync, fsync and pwrite on an O_DSYNC descriptor it made
 *                 on descriptors matching LH_FAULT_PATH (with or without faults):
 *                 "fdatasync N\nfsync N\ndsync_pwrite N\n"
 */
/* Both the 32- and 64-bit offset entry points are wrapped, so neither may
 * be an alias of the other. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "support/real_symbol.h"

static atomic_long calls;
static atomic_long failures;
static atomic_long fdatasync_calls, fsync_calls, dsync_pwrite_calls;

__attribute__((destructor)) static void write_counts(void) {
  const char *path = getenv("LH_COUNT_FILE");
  if (path == NULL || *path == '\0') return;
  FILE *f = fopen(path, "w");
  if (f == NULL) return;
  fprintf(f, "fdatasync %ld\nfsync %ld\ndsync_pwrite %ld\n", atomic_load(&fdatasync_calls),
          atomic_load(&fsync_calls), atomic_load(&dsync_pwrite_calls));
  fclose(f);
}

static int counting(void) {
  const char *path = getenv("LH_COUNT_FILE");
  return path != NULL && *path != '\0';
}

static int configured(const char *name) {
  const char *list = getenv("LH_FAULT_CALL");
  if (list == NULL) return 0;
  size_t n = strlen(name);
  for (const char *p = list; (p = strstr(p, name)) != NULL; p += n) {
    if ((p == list || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
  }
  return 0;
}

static int sync_flag_matches(int fd) {
  const char *want = getenv("LH_FAULT_DSYNC");
  if (want == NULL || strcmp(want, "1") != 0) return 1;
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && (flags & O_DSYNC) != 0; /* O_SYNC includes O_DSYNC's bit */
}

static int path_matches_fd(int fd) {
  if (!sync_flag_matches(fd)) return 0;
  const char *want = getenv("LH_FAULT_PATH");
  if (want == NULL || *want == '\0') return 1;
  char link[64], target[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, target, sizeof target - 1);
  if (n < 0) return 0;
  target[n] = '\0';
  return strstr(target, want) != NULL;
}

static int path_matches(const char *path) {
  const char *want = getenv("LH_FAULT_PATH");
  if (want == NULL || *want == '\0') return 1;
  return path != NULL && strstr(path, want) != NULL;
}

/* Returns 1 iff this call must fail (and sets errno). */
static int should_fail(const char *name, int matches) {
  if (!matches || !configured(name)) return 0;
  const char *after = getenv("LH_FAULT_AFTER");
  const char *times = getenv("LH_FAULT_TIMES");
  long n = atomic_fetch_add(&calls, 1);
  if (n < (after ? atol(after) : 0)) return 0;
  if (times != NULL && atomic_fetch_add(&failures, 1) >= atol(times)) return 0;
  const char *err = getenv("LH_FAULT_ERRNO");
  errno = err ? atoi(err) : EIO;
  return 1;
}

DEFINE_REAL(fdatasync)
DEFINE_REAL(fsync)
DEFINE_REAL(write)
DEFINE_REAL(pwrite)
DEFINE_REAL(pwrite64)
DEFINE_REAL(writev)
DEFINE_REAL(pwritev)
DEFINE_REAL(open)
DEFINE_REAL(open64)
DEFINE_REAL(mmap)

int fdatasync(int fd) {
  if (counting() && path_matches_fd(fd)) atomic_fetch_add(&fdatasync_calls, 1);
  if (should_fail("fdatasync", path_matches_fd(fd))) return -1;
  return REAL(fdatasync)(fd);
}

int fsync(int fd) {
  if (counting() && path_matches_fd(fd)) atomic_fetch_add(&fsync_calls, 1);
  if (should_fail("fsync", path_matches_fd(fd))) return -1;
  return REAL(fsync)(fd);
}

static void count_pwrite(int fd) {
  if (!counting() || !path_matches_fd(fd)) return;
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_DSYNC) != 0) atomic_fetch_add(&dsync_pwrite_calls, 1);
}

ssize_t write(int fd, const void *buf, size_t count) {
  if (fd > 2 && should_fail("write", path_matches_fd(fd))) return -1;
  return REAL(write)(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  count_pwrite(fd);
  if (should_fail("pwrite", path_matches_fd(fd))) return -1;
  return REAL(pwrite)(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  count_pwrite(fd);
  if (should_fail("pwrite", path_matches_fd(fd))) return -1;
  return REAL(pwrite64)(fd, buf, count, offset);
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
  if (should_fail("writev", path_matches_fd(fd))) return -1;
  return REAL(writev)(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
  if (should_fail("pwritev", path_matches_fd(fd))) return -1;
  return REAL(pwritev)(fd, iov, iovcnt, offset);
}

#define DEFINE_OPEN(name)                                       \
  int name(const char *path, int flags, ...) {                  \
    OPEN_MODE(flags, mode)                                      \
    if (should_fail("open", path_matches(path))) return -1;     \
    return REAL(name)(path, flags, mode);                       \
  }

DEFINE_OPEN(open)
DEFINE_OPEN(open64)

void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset) {
  if (fd >= 0 && should_fail("mmap", path_matches_fd(fd))) return MAP_FAILED;
  return REAL(mmap)(addr, length, prot, flags, fd, offset);
}
