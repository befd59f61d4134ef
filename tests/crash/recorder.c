/* An LD_PRELOAD recorder of what a process writes under one directory, for
 * the power-loss crash-state tests (tests/crash/explorer.cpp). It logs, in
 * the order they return, every call that changes a file or a directory
 * there, with its data: write and writev at the descriptor's offset (LMDB
 * flushes runs of pages with lseek + writev), pwrite, pwrite64, pwritev,
 * ftruncate, fallocate, and writes through descriptors opened with O_DSYNC
 * or O_SYNC (durable when they return); open with O_CREAT, mkdir, rename,
 * unlink and rmdir; fsync and fdatasync of files and of directories.
 * Writes through O_DIRECT descriptors (LMDB's copy) are recorded like any
 * other: they bypass the page cache, not the disk's own, so they are
 * durable only at a sync. A
 * write to the descriptor LH_RECORD_MARK_FD is not passed on: its bytes are
 * logged as a mark (the workload's acknowledgements).
 *
 * LH_RECORD_DIR   the directory whose contents are recorded (absolute)
 * LH_RECORD_LOG   where the log goes
 * LH_RECORD_MARK_FD  the descriptor number of marks
 *
 * The log is a sequence of records, little-endian:
 *   u8 op, u32 path length, path (relative to LH_RECORD_DIR), then
 *   WRITE/DSYNC_WRITE: u64 offset, u32 length, data
 *   TRUNCATE: u64 size        FALLOCATE: u64 offset, u64 length
 *   RENAME: u32 length, the new path        MARK: u32 length, bytes (no path)
 * lock.mdb is not recorded: LMDB rebuilds it when a process opens a store. */
#undef _FILE_OFFSET_BITS
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "support/real_symbol.h"

enum { OP_WRITE = 1, OP_DSYNC_WRITE, OP_TRUNCATE, OP_FALLOCATE, OP_SYNC, OP_CREATE, OP_MKDIR, OP_RENAME,
       OP_UNLINK, OP_RMDIR, OP_MARK };

DEFINE_REAL(write)
DEFINE_REAL(writev)
DEFINE_REAL(pwritev)
DEFINE_REAL(ftruncate)
DEFINE_REAL(fallocate)
DEFINE_REAL(fsync)
DEFINE_REAL(fdatasync)
DEFINE_REAL(open)
DEFINE_REAL(open64)
DEFINE_REAL(openat)
DEFINE_REAL(close)
DEFINE_REAL(mkdir)
DEFINE_REAL(rename)
DEFINE_REAL(renameat)
DEFINE_REAL(unlink)
DEFINE_REAL(unlinkat)
DEFINE_REAL(rmdir)
DEFINE_REAL(remove)
DEFINE_REAL(lseek)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -2; /* -2: not yet opened; -1: not recording */
static char root[PATH_MAX];
static size_t root_len;
static int mark_fd = -1;
#define MAX_FDS 4096
static char *fd_path[MAX_FDS]; /* relative path of a recorded descriptor */
static int fd_dsync[MAX_FDS];

static void log_bytes(const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t w = REAL(write)(log_fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) abort(); /* a lost record would make every state a lie */
    c += w;
    n -= (size_t)w;
  }
}
static void log_u8(uint8_t v) { log_bytes(&v, 1); }
static void log_u32(uint32_t v) { log_bytes(&v, 4); }
static void log_u64(uint64_t v) { log_bytes(&v, 8); }
static void log_str(const char *s) {
  log_u32((uint32_t)strlen(s));
  log_bytes(s, strlen(s));
}

/* Caller holds `lock`. */
static int recording(void) {
  if (log_fd == -2) {
    const char *dir = getenv("LH_RECORD_DIR"), *path = getenv("LH_RECORD_LOG"), *mark = getenv("LH_RECORD_MARK_FD");
    log_fd = -1;
    if (dir == NULL || path == NULL) return 0;
    snprintf(root, sizeof root, "%s", dir);
    root_len = strlen(root);
    while (root_len > 1 && root[root_len - 1] == '/') root[--root_len] = '\0';
    if (mark != NULL) mark_fd = atoi(mark);
    log_fd = REAL(open)(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
  }
  return log_fd >= 0;
}

/* The path below the recorded directory, or NULL (also for lock.mdb). */
static const char *relative(const char *path, char *buf, size_t size) {
  if (path == NULL) return NULL;
  char full[PATH_MAX];
  if (path[0] == '/') {
    snprintf(full, sizeof full, "%s", path);
  } else {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd) == NULL) return NULL;
    size_t c = strlen(cwd), p = strlen(path);
    if (c + 1 + p >= sizeof full) return NULL; /* too long to be under the directory */
    memcpy(full, cwd, c);
    full[c] = '/';
    memcpy(full + c + 1, path, p + 1);
  }
  if (strncmp(full, root, root_len) != 0 || (full[root_len] != '/' && full[root_len] != '\0')) return NULL;
  const char *rel = full + root_len;
  while (*rel == '/') ++rel;
  size_t n = strlen(rel);
  while (n > 0 && rel[n - 1] == '/') --n;
  if (n >= size) return NULL;
  memcpy(buf, rel, n);
  buf[n] = '\0';
  const char *base = strrchr(buf, '/');
  if (strcmp(base ? base + 1 : buf, "lock.mdb") == 0) return NULL;
  return buf;
}

static void record_path_op(uint8_t op, const char *rel) {
  log_u8(op);
  log_str(rel);
}

static void record_write(int fd, uint64_t offset, const struct iovec *iov, int n, size_t written) {
  log_u8(fd_dsync[fd] ? OP_DSYNC_WRITE : OP_WRITE);
  log_str(fd_path[fd]);
  log_u64(offset);
  log_u32((uint32_t)written);
  for (int i = 0; i < n && written > 0; ++i) {
    size_t k = iov[i].iov_len < written ? iov[i].iov_len : written;
    log_bytes(iov[i].iov_base, k);
    written -= k;
  }
}

static int tracked(int fd) { return fd >= 0 && fd < MAX_FDS && fd_path[fd] != NULL; }

static void track(int fd, const char *path, int flags, int created) {
  if (fd < 0 || fd >= MAX_FDS) return;
  char buf[PATH_MAX];
  const char *rel = relative(path, buf, sizeof buf);
  free(fd_path[fd]);
  fd_path[fd] = NULL;
  if (rel == NULL) return;
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    fd_path[fd] = strdup(rel); /* a directory: only its syncs matter */
    fd_dsync[fd] = 0;
    return;
  }
  fd_path[fd] = strdup(rel);
  fd_dsync[fd] = (flags & (O_DSYNC | O_SYNC)) != 0;
  if (created) record_path_op(OP_CREATE, rel);
  if ((flags & O_TRUNC) != 0) {
    record_path_op(OP_TRUNCATE, rel);
    log_u64(0);
  }
}

static int open_common(int fd_or_err, const char *path, int flags, int existed) {
  if (fd_or_err < 0) return fd_or_err;
  pthread_mutex_lock(&lock);
  if (recording()) track(fd_or_err, path, flags, (flags & O_CREAT) != 0 && !existed);
  pthread_mutex_unlock(&lock);
  return fd_or_err;
}

int open(const char *path, int flags, ...) {
  OPEN_MODE(flags, mode)
  struct stat st;
  int existed = stat(path, &st) == 0;
  return open_common(REAL(open)(path, flags, mode), path, flags, existed);
}
int open64(const char *path, int flags, ...) {
  OPEN_MODE(flags, mode)
  struct stat st;
  int existed = stat(path, &st) == 0;
  return open_common(REAL(open64)(path, flags, mode), path, flags, existed);
}
int openat(int dirfd, const char *path, int flags, ...) {
  OPEN_MODE(flags, mode)
  if (dirfd != AT_FDCWD && path[0] != '/') return REAL(openat)(dirfd, path, flags, mode); /* not used under the directory */
  struct stat st;
  int existed = stat(path, &st) == 0;
  return open_common(REAL(openat)(dirfd, path, flags, mode), path, flags, existed);
}

int close(int fd) {
  pthread_mutex_lock(&lock);
  if (fd >= 0 && fd < MAX_FDS) {
    free(fd_path[fd]);
    fd_path[fd] = NULL;
  }
  int rc = REAL(close)(fd);
  pthread_mutex_unlock(&lock);
  return rc;
}

static ssize_t vector_write(int fd, const struct iovec *iov, int n, int64_t offset, int positioned) {
  pthread_mutex_lock(&lock);
  if (!recording() || !tracked(fd)) {
    pthread_mutex_unlock(&lock);
    if (positioned) return REAL(pwritev)(fd, iov, n, (off_t)offset);
    return REAL(writev)(fd, iov, n);
  }
  int64_t at = positioned ? offset : (int64_t)REAL(lseek)(fd, 0, SEEK_CUR);
  if ((fcntl(fd, F_GETFL) & O_APPEND) != 0 && !positioned) at = (int64_t)REAL(lseek)(fd, 0, SEEK_END), REAL(lseek)(fd, at, SEEK_SET);
  ssize_t rc = positioned ? REAL(pwritev)(fd, iov, n, (off_t)offset) : REAL(writev)(fd, iov, n);
  if (rc > 0) record_write(fd, (uint64_t)at, iov, n, (size_t)rc);
  pthread_mutex_unlock(&lock);
  return rc;
}

ssize_t write(int fd, const void *buf, size_t count) {
  if (fd == mark_fd && fd >= 0) {
    pthread_mutex_lock(&lock);
    if (recording()) {
      log_u8(OP_MARK);
      log_u32((uint32_t)count);
      log_bytes(buf, count);
    }
    pthread_mutex_unlock(&lock);
    return (ssize_t)count;
  }
  struct iovec v = {(void *)buf, count};
  return vector_write(fd, &v, 1, 0, 0);
}
ssize_t writev(int fd, const struct iovec *iov, int n) { return vector_write(fd, iov, n, 0, 0); }
ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
  struct iovec v = {(void *)buf, count};
  return vector_write(fd, &v, 1, offset, 1);
}
ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
  struct iovec v = {(void *)buf, count};
  return vector_write(fd, &v, 1, offset, 1);
}
ssize_t pwritev(int fd, const struct iovec *iov, int n, off_t offset) { return vector_write(fd, iov, n, offset, 1); }

int ftruncate(int fd, off_t size) {
  pthread_mutex_lock(&lock);
  int rc = REAL(ftruncate)(fd, size);
  if (rc == 0 && recording() && tracked(fd)) {
    record_path_op(OP_TRUNCATE, fd_path[fd]);
    log_u64((uint64_t)size);
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
  pthread_mutex_lock(&lock);
  int rc = REAL(fallocate)(fd, mode, offset, len);
  if (rc == 0 && recording() && tracked(fd)) {
    record_path_op(OP_FALLOCATE, fd_path[fd]);
    log_u64((uint64_t)offset);
    log_u64((uint64_t)len);
  }
  pthread_mutex_unlock(&lock);
  return rc;
}

static int sync_common(int fd, int (*real)(int)) {
  pthread_mutex_lock(&lock);
  int rc = real(fd);
  if (rc == 0 && recording() && tracked(fd)) record_path_op(OP_SYNC, fd_path[fd]);
  pthread_mutex_unlock(&lock);
  return rc;
}
int fsync(int fd) { return sync_common(fd, REAL(fsync)); }
int fdatasync(int fd) { return sync_common(fd, REAL(fdatasync)); }

static int path_op(uint8_t op, const char *path, int rc) {
  if (rc != 0) return rc;
  char buf[PATH_MAX];
  if (recording()) {
    const char *rel = relative(path, buf, sizeof buf);
    if (rel != NULL) record_path_op(op, rel);
  }
  return rc;
}

int mkdir(const char *path, mode_t mode) {
  pthread_mutex_lock(&lock);
  int rc = path_op(OP_MKDIR, path, REAL(mkdir)(path, mode));
  pthread_mutex_unlock(&lock);
  return rc;
}
int unlink(const char *path) {
  pthread_mutex_lock(&lock);
  int rc = path_op(OP_UNLINK, path, REAL(unlink)(path));
  pthread_mutex_unlock(&lock);
  return rc;
}
int rmdir(const char *path) {
  pthread_mutex_lock(&lock);
  int rc = path_op(OP_RMDIR, path, REAL(rmdir)(path));
  pthread_mutex_unlock(&lock);
  return rc;
}
/* std::filesystem::remove calls remove(), whose unlink and rmdir inside
 * glibc do not go through these wrappers. */
int remove(const char *path) {
  struct stat st;
  int directory = lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
  pthread_mutex_lock(&lock);
  int rc = path_op(directory ? OP_RMDIR : OP_UNLINK, path, REAL(remove)(path));
  pthread_mutex_unlock(&lock);
  return rc;
}

int unlinkat(int dirfd, const char *path, int flags) {
  if (dirfd != AT_FDCWD && path[0] != '/') return REAL(unlinkat)(dirfd, path, flags);
  pthread_mutex_lock(&lock);
  int rc = path_op((flags & AT_REMOVEDIR) ? OP_RMDIR : OP_UNLINK, path, REAL(unlinkat)(dirfd, path, flags));
  pthread_mutex_unlock(&lock);
  return rc;
}

static int rename_common(const char *from, const char *to, int rc) {
  if (rc != 0 || !recording()) return rc;
  char a[PATH_MAX], b[PATH_MAX];
  const char *ra = relative(from, a, sizeof a), *rb = relative(to, b, sizeof b);
  if (ra != NULL && rb != NULL) {
    record_path_op(OP_RENAME, ra);
    log_str(rb);
  }
  return rc;
}
int rename(const char *from, const char *to) {
  pthread_mutex_lock(&lock);
  int rc = rename_common(from, to, REAL(rename)(from, to));
  pthread_mutex_unlock(&lock);
  return rc;
}
int renameat(int fromfd, const char *from, int tofd, const char *to) {
  if ((fromfd != AT_FDCWD && from[0] != '/') || (tofd != AT_FDCWD && to[0] != '/')) {
    return REAL(renameat)(fromfd, from, tofd, to);
  }
  pthread_mutex_lock(&lock);
  int rc = rename_common(from, to, REAL(renameat)(fromfd, from, tofd, to));
  pthread_mutex_unlock(&lock);
  return rc;
}
