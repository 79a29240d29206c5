/*
 * file_copy.c -- copies a file with asyncrt IO ops: open, read, write,
 * fsync, close.
 *
 *   file_copy [--backend auto|epoll|io_uring] [--depth N] SOURCE DEST
 *
 * One task copies the file in 64 KiB blocks with up to N (default 4) blocks
 * in flight at once, each block a read at its offset followed by a write at
 * the same offset (pread/pwrite: no file position is shared, so the blocks
 * need no order). On io_uring the reads and writes are ring operations; on
 * epoll, which cannot wait for regular files, they run on the driver's
 * blocking pool -- the code is the same. DEST is created or truncated, then
 * fsync'ed before it is closed. Prints "file_copy: N bytes copied" and exits
 * 0; on a failure prints the errno's message and exits 1; exits 77 when the
 * backend asked for is refused by the kernel.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "asyncrt.h"
#include "asyncrt_coro.h"

#define EXIT_SKIP 77
#define BLOCK (64 * 1024)
#define MAX_DEPTH 32

static void io_start(asyncrt_context *cx, asyncrt_io *io, asyncrt_op *op) {
  int rc = asyncrt_io_submit(cx, io, op);
  if (rc != ASYNCRT_OK) {
    op->status = rc;
    op->result = 0;
  }
}

/* One block in flight: read at `offset`, then write what was read. */
typedef struct block {
  asyncrt_op op;
  int64_t offset;
  size_t len;     /* bytes read; written so far in `written` */
  size_t written;
  int busy;       /* 1: reading, 2: writing, 0: idle */
  char data[BLOCK];
} block;

typedef struct copy {
  arc_state co;
  asyncrt_io *io;
  const char *src_path, *dst_path;
  int src, dst, depth, i;
  int64_t next_offset; /* the next block to read */
  int eof;             /* a read returned 0 */
  uint64_t copied;
  asyncrt_op op;       /* open, fsync, close */
  const char *failed;  /* what failed, NULL while all is well */
  int64_t error;       /* its -errno or -status */
  block *blocks;
} copy;

static void fail_with(copy *c, const char *what, const asyncrt_op *op) {
  if (c->failed == NULL) {
    c->failed = what;
    c->error = op->status == ASYNCRT_EOS ? op->result : -(int64_t)op->status;
  }
}

/* Starts the next read in an idle block; 0 when there is nothing to read. */
static int start_read(copy *c, block *b, asyncrt_context *cx) {
  if (c->eof || c->failed) {
    return 0;
  }
  b->offset = c->next_offset;
  c->next_offset += BLOCK;
  b->busy = 1;
  asyncrt_io_prep_read(&b->op, c->src, b->data, BLOCK, b->offset);
  io_start(cx, c->io, &b->op);
  return 1;
}

/* Moves every block on as far as it goes without waiting: a block whose op
 * is done starts its next op (the write of what it read, the rest of a
 * partial write, or the next read). Returns the number of blocks still
 * busy; called at every poll of the copy loop. */
static int step(copy *c, asyncrt_context *cx) {
  int i, busy = 0;
  for (i = 0; i < c->depth; i++) {
    block *b = &c->blocks[i];
    for (;;) {
      if (b->busy == 0 && !start_read(c, b, cx)) {
        break; /* nothing left to read */
      }
      if (asyncrt_op_poll(&b->op, cx) == ASYNCRT_POLL_PENDING) {
        busy++;
        break;
      }
      if (b->op.status != ASYNCRT_OK) {
        fail_with(c, b->busy == 1 ? "read" : "write", &b->op);
        b->busy = 0;
      } else if (b->busy == 1 && b->op.result == 0) {
        c->eof = 1; /* read past the end */
        b->busy = 0;
      } else if (b->busy == 1) { /* write what was read */
        b->len = (size_t)b->op.result;
        b->written = 0;
        b->busy = 2;
        asyncrt_io_prep_write(&b->op, c->dst, b->data, b->len, b->offset);
        io_start(cx, c->io, &b->op);
      } else {
        b->written += (size_t)b->op.result;
        c->copied += (uint64_t)b->op.result;
        if (b->written < b->len) { /* a partial write: the rest */
          asyncrt_io_prep_write(&b->op, c->dst, b->data + b->written, b->len - b->written,
                                b->offset + (int64_t)b->written);
          io_start(cx, c->io, &b->op);
        } else {
          if (b->len < BLOCK) {
            c->eof = 1; /* a short read: the end of the file */
          }
          b->busy = 0;
        }
      }
    }
  }
  return busy;
}

static int copy_poll(void *self, asyncrt_context *cx, void *out) {
  copy *c = self;
  (void)out;
  ARC_BEGIN(c->co);
  asyncrt_io_prep_openat(&c->op, AT_FDCWD, c->src_path, O_RDONLY, 0);
  io_start(cx, c->io, &c->op);
  ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
  if (c->op.status != ASYNCRT_OK) {
    fail_with(c, "open the source", &c->op);
    ARC_FINISH(c->co, ASYNCRT_POLL_READY);
  }
  c->src = (int)c->op.result;
  asyncrt_io_prep_openat(&c->op, AT_FDCWD, c->dst_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  io_start(cx, c->io, &c->op);
  ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
  if (c->op.status != ASYNCRT_OK) {
    fail_with(c, "open the destination", &c->op);
  } else {
    c->dst = (int)c->op.result;
    /* the copy loop: every poll moves the blocks on; pending while any is busy */
    ARC_AWAIT_POLL(c->co, step(c, cx) > 0 ? ASYNCRT_POLL_PENDING : ASYNCRT_POLL_READY);
    if (c->failed == NULL) {
      asyncrt_io_prep_fsync(&c->op, c->dst, 0);
      io_start(cx, c->io, &c->op);
      ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
      if (c->op.status != ASYNCRT_OK) {
        fail_with(c, "fsync", &c->op);
      }
    }
    asyncrt_io_prep_close(&c->op, c->dst);
    io_start(cx, c->io, &c->op);
    ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
    if (c->op.status != ASYNCRT_OK) {
      fail_with(c, "close the destination", &c->op); /* where a delayed write error shows */
    }
  }
  asyncrt_io_prep_close(&c->op, c->src);
  io_start(cx, c->io, &c->op);
  ARC_AWAIT_POLL(c->co, asyncrt_op_poll(&c->op, cx));
  ARC_END(c->co);
}

static const asyncrt_future_vtable copy_vtable = {sizeof(asyncrt_future_vtable), 0, copy_poll, NULL, NULL};

static int fail(const char *what, int status) {
  fprintf(stderr, "file_copy: %s failed: %s (%s)\n", what, asyncrt_status_str(status), asyncrt_last_error());
  return 1;
}

int main(int argc, char **argv) {
  asyncrt_io_config cfg;
  asyncrt_executor *ex = NULL;
  asyncrt_io *io = NULL;
  copy c;
  asyncrt_future fut = {&c, &copy_vtable};
  int i, rc, depth = 4;
  unsigned b;
  const char *paths[2] = {NULL, NULL};
  int npaths = 0;

  asyncrt_io_config_init(&cfg);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
      for (b = ASYNCRT_IO_AUTO; b <= ASYNCRT_IO_URING && strcmp(argv[i + 1], asyncrt_io_backend_name(b)) != 0; b++) {
      }
      cfg.backend = b;
      i++;
    } else if (strcmp(argv[i], "--depth") == 0 && i + 1 < argc) {
      depth = atoi(argv[++i]);
    } else if (npaths < 2) {
      paths[npaths++] = argv[i];
    } else {
      npaths = 3;
    }
  }
  if (npaths != 2 || cfg.backend > ASYNCRT_IO_URING || depth < 1 || depth > MAX_DEPTH) {
    fprintf(stderr, "usage: %s [--backend auto|epoll|io_uring] [--depth 1..%d] SOURCE DEST\n", argv[0], MAX_DEPTH);
    return 2;
  }

  if ((rc = asyncrt_executor_new(NULL, &ex)) != ASYNCRT_OK) {
    return fail("asyncrt_executor_new", rc);
  }
  rc = asyncrt_io_open(ex, &cfg, &io);
  if (rc == ASYNCRT_ENOTSUP) {
    printf("file_copy: backend %s refused by this kernel: skipped\n", asyncrt_io_backend_name(cfg.backend));
    return EXIT_SKIP;
  }
  if (rc != ASYNCRT_OK) {
    return fail("asyncrt_io_open", rc);
  }
  memset(&c, 0, sizeof c);
  c.io = io;
  c.src_path = paths[0];
  c.dst_path = paths[1];
  c.src = c.dst = -1;
  c.depth = depth;
  c.blocks = calloc((size_t)depth, sizeof *c.blocks);
  if (c.blocks == NULL) {
    return fail("calloc", ASYNCRT_ENOMEM);
  }
  rc = asyncrt_block_on(ex, &fut, NULL, 120LL * 1000 * 1000 * 1000);
  if (rc != ASYNCRT_OK) {
    return fail("the copy", rc);
  }
  printf("file_copy: %s backend\n", asyncrt_io_backend_name((unsigned)asyncrt_io_backend(io)));
  asyncrt_io_close(io);
  asyncrt_executor_free(ex);
  free(c.blocks);
  if (c.failed != NULL) {
    fprintf(stderr, "file_copy: %s: %s\n", c.failed,
            c.error < 0 && c.error > -4096 && c.error != -ASYNCRT_ECANCELLED ? strerror((int)-c.error) : "failed");
    return 1;
  }
  printf("file_copy: %llu bytes copied\n", (unsigned long long)c.copied);
  return 0;
}
