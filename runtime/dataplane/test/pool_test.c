/* pool_test.c -- the blocking pool (art_pool.c) on its own, without Go, under
 * AddressSanitizer and ThreadSanitizer: an epoll driver on a local core, a
 * C stand-in for the control plane's manager (a thread that reads the wake
 * eventfd and starts one pthread per runner asked for), many tasks
 * submitting BLOCKING ops with cancels racing the runners, threads that come
 * and go (1 ms idle), and a close whose running job is orphaned: the op
 * lives in heap memory freed as soon as the detach completes it, so a
 * runner touching it afterwards is a use-after-free ASan reports. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../art.h"
#include "../art_io.h"
#include "../art_pool.h"

#include "check.h"

/* ---- the control plane's part --------------------------------------------- */

static int wake_fd;
static _Atomic int manager_stop, runners_live;

static void *runner(void *arg) {
  art_pool_run(arg);
  atomic_fetch_sub(&runners_live, 1);
  return NULL;
}

static void *manager(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t n;
    if (read(wake_fd, &n, sizeof n) < 0 && errno != EINTR) CHECK(0, "read of the wake fd: %d", errno);
    if (atomic_load(&manager_stop)) return NULL;
    uint32_t starts;
    art_pool *p;
    while ((p = art_pool_take_request(&starts)) != NULL) {
      for (uint32_t i = 0; i < starts; i++) {
        pthread_t th;
        atomic_fetch_add(&runners_live, 1);
        if (pthread_create(&th, NULL, runner, p) != 0) {
          atomic_fetch_sub(&runners_live, 1);
          art_pool_start_failed(p);
          continue;
        }
        pthread_detach(th);
      }
    }
  }
}

/* ---- a driver on a local core ------------------------------------------------ */

typedef struct env {
  art_exec *e;
  art_io *io;
  int epfd;
} env;

static void env_open(env *v, uint32_t threads, uint32_t queue, uint64_t idle_ns) {
  int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  v->e = art_exec_new(NULL, 0, efd);
  CHECK(v->e, "art_exec_new: %s", art_last_error());
  v->io = art_io_new(v->e, ASYNCRT_IO_EPOLL, 1);
  CHECK(v->io, "art_io_new: %s", art_last_error());
  v->io->pool_threads = threads;
  v->io->pool_queue = queue;
  v->io->pool_idle_ns = idle_ns;
  v->epfd = epoll_create1(EPOLL_CLOEXEC);
  art_io_worker *w = art_io_epoll_worker_new(v->io, 0, v->epfd);
  CHECK(w, "art_io_epoll_worker_new: %s", art_last_error());
  CHECK(art_io_register_worker(v->io, 0, w, &art_io_epoll_vtable, 1) == 0, "register: %s", art_last_error());
}

static void env_close(env *v) {
  art_io_detach(v->io);
  close(v->epfd);
  CHECK(art_exec_acquire_driver(v->e), "driver busy at free");
  art_exec_shutdown(v->e);
  art_exec_release_driver(v->e);
  art_exec_close(v->e);
  art_io_free(v->io);
}

static void run_all(art_exec *e, art_task **tasks, int n) {
  CHECK(art_exec_acquire_driver(e), "driver busy");
  for (int i = 0, idle = 0; i < n;) {
    if (atomic_load(&tasks[i]->state) & ART_COMPLETE) {
      i++;
      continue;
    }
    if (art_exec_run(e, 1u << 20, 0, NULL)) {
      idle = 0;
      continue;
    }
    uint64_t t0 = art_now_ns();
    art_exec_park(e, 100000000);
    if (art_now_ns() - t0 >= 100000000) CHECK(++idle < 100, "no progress for 10 s: lost wakeup?");
  }
  art_exec_release_driver(e);
}

/* ---- jobs ------------------------------------------------------------------------ */

static _Atomic int jobs_run;

static int64_t job(void *arg) {
  atomic_fetch_add(&jobs_run, 1);
  for (int i = 0; i < 100; i++) sched_yield();
  return (int64_t)(uintptr_t)arg;
}

static void prep_blocking(asyncrt_op *op, int64_t (*fn)(void *), void *arg) {
  memset(op, 0, sizeof *op);
  op->opcode = ASYNCRT_IO_OP_BLOCKING;
  op->args[0] = (uint64_t)(uintptr_t)fn;
  op->args[1] = (uint64_t)(uintptr_t)arg;
}

/* A task that submits K jobs and finishes once all are complete; a thread
 * of the test cancels every third meanwhile. */
enum { K = 8 };
typedef struct batch {
  art_io *io;
  asyncrt_op ops[K];
  int submitted;
  _Atomic int published; /* the ops are in flight: the canceller may look */
} batch;

static int batch_poll(void *self, asyncrt_context *cx, void *out) {
  batch *b = self;
  (void)out;
  if (!b->submitted) {
    art_subsys *s = art_io_sub_for(b->io, cx);
    CHECK(s, "art_io_sub_for: %s", art_last_error());
    for (int i = 0; i < K; i++) {
      prep_blocking(&b->ops[i], job, (void *)(uintptr_t)(i + 1));
      CHECK(art_op_submit(cx, s, &b->ops[i]) == 0, "submit: %s", art_last_error());
    }
    b->submitted = 1;
    atomic_store(&b->published, 1);
  }
  for (int i = 0; i < K; i++)
    if (!art_op_done(&b->ops[i])) return ASYNCRT_POLL_PENDING; /* its completion wakes us */
  return ASYNCRT_POLL_READY;
}

static void batch_drop(void *self) { (void)self; }

static const asyncrt_future_vtable batch_vt = {sizeof(asyncrt_future_vtable), 0, batch_poll, batch_drop, NULL};

enum { T = 64 };
static batch bs[T];

/* Cancels every third op of every batch as soon as it is in flight, while
 * the runners take and finish them: the cancel callback (on the worker) and
 * the runners race for each one. */
static void *canceller(void *arg) {
  (void)arg;
  for (int t = 0; t < T; t++) {
    for (uint64_t t0 = art_now_ns(); !atomic_load(&bs[t].published);) {
      CHECK(art_now_ns() - t0 < 5000000000ull, "batch %d not submitted within 5 s", t);
      sched_yield();
    }
    for (int i = 0; i < K; i += 3) art_op_cancel(&bs[t].ops[i]);
  }
  return NULL;
}

static void test_many_jobs_with_cancels(void) {
  art_task *tasks[T];
  pthread_t th;
  env v;
  env_open(&v, 4, 256, 1000000); /* 1 ms idle: threads come and go */
  atomic_store(&jobs_run, 0);
  for (int t = 0; t < T; t++) {
    bs[t] = (batch){.io = v.io};
    asyncrt_future f = {&bs[t], &batch_vt};
    CHECK(art_exec_spawn(v.e, &f, 0, NULL, &tasks[t]) == 0, "spawn: %s", art_last_error());
  }
  CHECK(pthread_create(&th, NULL, canceller, NULL) == 0, "canceller thread");
  run_all(v.e, tasks, T);
  pthread_join(th, NULL);
  int ok = 0, cancelled = 0, refused = 0;
  for (int t = 0; t < T; t++) {
    for (int i = 0; i < K; i++) {
      asyncrt_op *op = &bs[t].ops[i];
      if (op->status == ASYNCRT_OK) {
        CHECK(op->result == i + 1, "result %lld, want %d", (long long)op->result, i + 1);
        ok++;
      } else if (op->status == ASYNCRT_ECANCELLED) {
        CHECK(i % 3 == 0 && op->result == -ECANCELED, "op %d cancelled (result %lld)", i, (long long)op->result);
        cancelled++;
      } else {
        CHECK(op->status == ASYNCRT_ELIMIT, "op %d status %d", i, op->status);
        refused++;
      }
    }
    art_task_unref(tasks[t]);
  }
  CHECK(ok == atomic_load(&jobs_run), "%d ops ok, %d jobs ran", ok, atomic_load(&jobs_run));
  asyncrt_io_stats st;
  memset(&st, 0, sizeof st);
  art_pool_stats(v.io, &st);
  CHECK(st.pool_jobs == (uint64_t)ok && st.pool_rejected == (uint64_t)refused && st.pool_queued == 0,
        "jobs %llu rejected %llu queued %llu", (unsigned long long)st.pool_jobs,
        (unsigned long long)st.pool_rejected, (unsigned long long)st.pool_queued);
  CHECK(art_pool_close(v.io, 5000000000ull) == 0, "a job still running at the close");
  env_close(&v);
  printf("PASS many_jobs_with_cancels (%d ok, %d cancelled, %d refused)\n", ok, cancelled, refused);
}

/* A close that gives up on a running job: the detach completes its op
 * (ESHUTDOWN) and the test frees it at once; the job returns later and its
 * thread must not touch the op. */
static _Atomic int gate_entered, gate_open;

static int64_t gated(void *arg) {
  (void)arg;
  atomic_store(&gate_entered, 1);
  while (!atomic_load(&gate_open)) sched_yield();
  return 1;
}

typedef struct lone {
  art_io *io;
  asyncrt_op *op;
  int submitted;
} lone;

static int lone_poll(void *self, asyncrt_context *cx, void *out) {
  lone *l = self;
  (void)out;
  if (!l->submitted) {
    art_subsys *s = art_io_sub_for(l->io, cx);
    CHECK(s, "art_io_sub_for: %s", art_last_error());
    CHECK(art_op_submit(cx, s, l->op) == 0, "submit: %s", art_last_error());
    l->submitted = 1;
  }
  return art_op_done(l->op) ? ASYNCRT_POLL_READY : ASYNCRT_POLL_PENDING;
}

static const asyncrt_future_vtable lone_vt = {sizeof(asyncrt_future_vtable), 0, lone_poll, batch_drop, NULL};

static void test_orphaned_job(void) {
  env v;
  art_task *task;
  lone l;
  env_open(&v, 1, 4, 10000000000ull);
  l = (lone){.io = v.io, .op = malloc(sizeof(asyncrt_op))};
  prep_blocking(l.op, gated, NULL);
  asyncrt_future f = {&l, &lone_vt};
  CHECK(art_exec_spawn(v.e, &f, 0, NULL, &task) == 0, "spawn: %s", art_last_error());
  CHECK(art_exec_acquire_driver(v.e), "driver");
  art_exec_run(v.e, 16, 0, NULL); /* submits */
  art_exec_release_driver(v.e);
  for (uint64_t t0 = art_now_ns(); !atomic_load(&gate_entered);) {
    CHECK(art_now_ns() - t0 < 5000000000ull, "the job did not start within 5 s");
    sched_yield();
  }
  CHECK(art_pool_close(v.io, 1000000) == 1, "the running job was not orphaned");
  art_io_detach(v.io); /* completes the orphan's op: ESHUTDOWN */
  CHECK(art_op_done(l.op) && l.op->status == ASYNCRT_ESHUTDOWN, "orphan's op status %d", l.op->status);
  run_all(v.e, &task, 1);
  art_task_unref(task);
  free(l.op);
  atomic_store(&gate_open, 1); /* the job returns now, into freed memory if the runner touched the op */
  close(v.epfd);
  CHECK(art_exec_acquire_driver(v.e), "driver busy at free");
  art_exec_shutdown(v.e);
  art_exec_release_driver(v.e);
  art_exec_close(v.e);
  art_io_free(v.io); /* the runner may still hold the pool: it frees it */
  puts("PASS orphaned_job");
}

int main(void) {
  pthread_t mgr;
  wake_fd = eventfd(0, EFD_CLOEXEC);
  art_pool_set_wake_fd(wake_fd);
  CHECK(pthread_create(&mgr, NULL, manager, NULL) == 0, "manager thread");
  test_many_jobs_with_cancels();
  test_orphaned_job();
  /* Every runner leaves (the pools closed): then nothing is left to leak. */
  for (uint64_t t0 = art_now_ns(); atomic_load(&runners_live);) {
    CHECK(art_now_ns() - t0 < 5000000000ull, "%d runners still alive after 5 s", atomic_load(&runners_live));
    usleep(1000);
  }
  atomic_store(&manager_stop, 1);
  uint64_t one = 1;
  CHECK(write(wake_fd, &one, sizeof one) == sizeof one, "wake the manager");
  pthread_join(mgr, NULL);
  close(wake_fd);
  puts("PASS all pool tests");
  return 0;
}
