/* Files on both backends: OPENAT, positioned WRITE/WRITEV/READ/READV,
 * FSYNC (and fdatasync), CLOSE, and their errors. io_uring does them in
 * the kernel; epoll hands them to the blocking pool (counted there). */
#include "io_batch.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

static int64_t run(asyncrt_executor *ex, asyncrt_io *io, asyncrt_op *op) {
  int rc = io_run_op(ex, io, op);
  if (rc != ASYNCRT_OK && rc != op->status) return -100000 - rc; /* the future itself failed */
  return op->result;
}

static void test_write_fsync_read_back(void) {
  size_t b;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    asyncrt_op op;
    char path[128], buf[64];
    struct iovec iov[2];
    int fd;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[b], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    snprintf(path, sizeof path, "/tmp/asyncrt_test_io_file_%d_%u", (int)getpid(), io_backends[b]);

    memset(&op, 0, sizeof op);
    asyncrt_io_prep_openat(&op, AT_FDCWD, path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    fd = (int)run(ex, io, &op);
    CHECK(fd >= 0);
    if (fd < 0) {
      asyncrt_io_close(io);
      asyncrt_executor_free(ex);
      return;
    }
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);

    memset(&op, 0, sizeof op);
    asyncrt_io_prep_write(&op, fd, "hello ", 6, 0);
    CHECK_INT(run(ex, io, &op), 6);
    iov[0].iov_base = (void *)"async";
    iov[0].iov_len = 5;
    iov[1].iov_base = (void *)"rt";
    iov[1].iov_len = 2;
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_writev(&op, fd, iov, 2, 6);
    CHECK_INT(run(ex, io, &op), 7);
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_fsync(&op, fd, 0);
    CHECK_INT(run(ex, io, &op), 0);
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_fsync(&op, fd, ASYNCRT_IO_FSYNC_DATASYNC);
    CHECK_INT(run(ex, io, &op), 0);

    /* Read back through the driver ... */
    memset(buf, 0, sizeof buf);
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_read(&op, fd, buf, sizeof buf, 0);
    CHECK_INT(run(ex, io, &op), 13);
    CHECK(memcmp(buf, "hello asyncrt", 13) == 0);
    memset(buf, 0, sizeof buf);
    iov[0].iov_base = buf;
    iov[0].iov_len = 5;
    iov[1].iov_base = buf + 10;
    iov[1].iov_len = 2;
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_readv(&op, fd, iov, 2, 6);
    CHECK_INT(run(ex, io, &op), 7);
    CHECK(memcmp(buf, "async", 5) == 0 && memcmp(buf + 10, "rt", 2) == 0);
    /* ... at the end of the file: 0 */
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_read(&op, fd, buf, sizeof buf, 13);
    CHECK_INT(run(ex, io, &op), 0);
    /* ... and without the driver */
    memset(buf, 0, sizeof buf);
    CHECK_INT(pread(fd, buf, sizeof buf, 0), 13);
    CHECK(memcmp(buf, "hello asyncrt", 13) == 0);

    memset(&op, 0, sizeof op);
    asyncrt_io_prep_close(&op, fd);
    CHECK_INT(run(ex, io, &op), 0);
    CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF);

    if (io_backends[b] == ASYNCRT_IO_EPOLL) {
      /* openat, write, writev, 2 fsyncs, 3 reads: the pool's. */
      CHECK(io_stats(io).pool_jobs >= 8);
    }
    CHECK_INT(unlink(path), 0);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

/* A file larger than one call moves: partial results are results, the
 * caller loops. */
static void test_large_file(void) {
  enum { SIZE = 1 << 20 };
  size_t b;
  static unsigned char out[SIZE], in[SIZE];
  size_t i;
  for (i = 0; i < SIZE; i++) out[i] = (unsigned char)(i * 7 + i / 251);
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    asyncrt_op op;
    char path[128];
    int64_t done, r;
    int fd;
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[b], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    snprintf(path, sizeof path, "/tmp/asyncrt_test_io_large_%d_%u", (int)getpid(), io_backends[b]);
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_openat(&op, AT_FDCWD, path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    fd = (int)run(ex, io, &op);
    CHECK(fd >= 0);
    for (done = 0; fd >= 0 && done < SIZE; done += r) {
      memset(&op, 0, sizeof op);
      asyncrt_io_prep_write(&op, fd, out + done, (size_t)(SIZE - done), done);
      r = run(ex, io, &op);
      if (r <= 0) {
        CHECK(r > 0);
        break;
      }
    }
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_fsync(&op, fd, 0);
    CHECK_INT(run(ex, io, &op), 0);
    memset(in, 0, sizeof in);
    for (done = 0; fd >= 0 && done < SIZE; done += r) {
      memset(&op, 0, sizeof op);
      asyncrt_io_prep_read(&op, fd, in + done, (size_t)(SIZE - done), done);
      r = run(ex, io, &op);
      if (r <= 0) {
        CHECK(r > 0);
        break;
      }
    }
    CHECK(memcmp(in, out, SIZE) == 0);
    if (fd >= 0) close(fd);
    unlink(path);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

enum { BAD_FD = 1 << 30 };

static void test_errors(void) {
  size_t b;
  for (b = 0; b < IO_NBACKENDS; b++) {
    asyncrt_executor *ex = tf_executor();
    asyncrt_io *io;
    asyncrt_op op;
    char buf[8];
    if (!ex) return;
    if (!io_open_backend(ex, io_backends[b], NULL, &io)) {
      CHECK_OK(asyncrt_executor_free(ex));
      continue;
    }
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_openat(&op, AT_FDCWD, "/nonexistent-asyncrt-dir/file", O_RDONLY, 0);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.status, ASYNCRT_EOS);
    CHECK_INT(op.result, -ENOENT);

    /* An fd that is not open (above any open file limit). */
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_fsync(&op, BAD_FD, 0);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.result, -EBADF);
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_read(&op, BAD_FD, buf, sizeof buf, 0);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.result, -EBADF);

    /* A directory cannot be written. */
    memset(&op, 0, sizeof op);
    asyncrt_io_prep_openat(&op, AT_FDCWD, "/tmp", O_WRONLY, 0);
    CHECK_STATUS(io_run_op(ex, io, &op), ASYNCRT_EOS);
    CHECK_INT(op.result, -EISDIR);
    CHECK_OK(asyncrt_io_close(io));
    CHECK_OK(asyncrt_executor_free(ex));
  }
}

int main(void) {
  CHECK_BEGIN();
  RUN(test_write_fsync_read_back);
  RUN(test_large_file);
  RUN(test_errors);
  return CHECK_END("io_file");
}
