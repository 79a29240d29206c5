// Package dataplane is asyncrt's C data plane: everything the runtime touches
// per task, written in C (art_*.c) and worked by C, with dataplane.go as the
// one Go file that reaches into it.
//
// # Why C
//
// A Go→C call costs 35–55 ns here and a C→Go call 50–100 ns, against 2 ns for
// a C indirect call. A runtime that crossed once per poll would be slower than
// tokio; so spawn, poll dispatch, wakes, run queues, completion and joins are
// C. Go enters a driver's loop once -- block_on's, or a worker's whole life --
// and the loop parks in C (see Threads below). The C files build on their
// own (test/Makefile) for sanitizers and fuzzing.
//
// # Objects and who owns them
//
//   - art_exec, a core: one thread's share of an executor. A local executor
//     is one core; a thread-per-core executor is a group of cores (art_group,
//     one per worker, with an injector for Send tasks); a foreign executor is
//     a core whose queue is the host's schedule callback. A core has a local
//     run queue (a ring of task pointers, driver only), a remote queue (a
//     Treiber stack any thread pushes and the driver takes whole), a Send
//     ring (group cores), a futex word its driver parks on, an eventfd for
//     hosts that poll, the task memory (art_mem) and the live list of the
//     tasks spawned on it. The control plane holds it until
//     asyncrt_executor_free; after that it lives until its last task header
//     is given back (counted in `headers` under the lock), so a waker held
//     anywhere stays safe to call.
//   - art_task, a task header: 96 bytes in a slab slot (or 112 in caller
//     storage), then the output. Its first 32 bytes are the only ones a poll
//     touches. exec is the core whose queues it uses (a stolen Send task's
//     changes), home the core it was spawned on (its memory and live list).
//     refs counts the executor (until completion), a handle, a join future,
//     each waker clone and each runnable a foreign executor holds; the
//     header is freed at zero.
//   - handles (art_handle.c): generation-tagged slots in chunks that are never
//     freed, so a stale or made-up handle is rejected without reading freed
//     memory.
//
// # Task state (art_task.state)
//
//	OWNED      the executor holds the poll right: queued or being polled.
//	           Set by whoever queues the task; cleared by the driver when a
//	           poll returns pending and no wake arrived.
//	NOTIFIED   a wake arrived while OWNED; the driver requeues after the poll.
//	COMPLETE   final; status and output are published with it (release).
//	CANCEL     cancellation requested; the driver drops the future at its
//	           next turn instead of polling.
//	JOIN_LOCK  a spin bit guarding join_waker between completion and a join
//	           poll on another thread.
//	JOINED     a join future exists; there is at most one per task.
//	SHIELD     inside a shield section: a cancel only records itself.
//	CLEANUP    its cleanup runs: its ops are not cancelled.
//
// Local wakes. A task that only its core's driver ever polls (every task of
// a local core, a non-Send task of a worker; never a foreign core's) keeps
// OWNED for its whole life, and its queued/parked state in a driver-private
// field (its status word, which holds the status only once COMPLETE): its
// driver wakes and parks it with plain stores. Any other thread sets
// NOTIFIED with one fetch-or and, if that was news, pushes the task (with a
// reference) on the core's remote stack, where it is at most once; the
// driver clears NOTIFIED when it takes it. A ping-pong between two tasks of
// one thread thus costs no atomic operation for its wakes and parks, only
// its channels' locks. What follows describes every other task.
//
// A wake of a parked task wins the OWNED bit with one CAS and queues the task:
// on the local queue (or Send ring) when the waker runs on the core's driver
// thread, otherwise on the remote stack (or the group injector, for a Send
// task), signalling the core's futex only if no driver is running (running
// and remote_head form a Dekker pair, both seq-cst). A task waking itself
// inside its own poll (the yield loop) sets a plain flag in the poll context
// and costs no atomic at all; a detached task that completes with the
// executor's as its only reference is freed without one either.
//
// # Threads
//
// Exactly one thread drives a core at a time (driver token, CAS). Poll, drop
// and completion run on it. Wakes, spawns, cancels and joins may come from
// any thread. Task memory and the live list are guarded by a short spin
// lock, taken once at spawn and once at completion (a worker finishing
// tasks spawned elsewhere, or Send tasks of its own group, gives them back
// in batches of 64; a local-wake task is never batched, because a cancel
// walking the live list may push it on the remote stack through the same
// link). A worker that spawns a Send task without a handle or scope queues
// a spawn request instead of writing a header (art_group.c): the future and
// an untouched slot of its memory, on a ring thieves take from in batches;
// the taker writes the header, in memory its own cache last held, and puts
// the batch on the spawner's live list in one lock hold. A driver's run
// and park loop -- block_on on a local executor, a worker's whole life -- is
// one call from Go: Go's sysmon treats a Go loop of cgo calls as a goroutine
// that never yields and hands its P to a new thread at every park.
//
// # Timers and subsystems (art_time.c, art_subsys.c)
//
// Each core has a hierarchical timing wheel (art_timer.c: 1.024 us ticks,
// nine 64-slot levels, never early) and a list of subsystem instances, one
// per registration that covers the core's worker. Both are worked by the
// core's driver in a tick: at the start of every run, at least every
// budget_polls polls (a run's turn ends on the poll a tick falls due) or
// budget_ns of a busy run, only while something waits, and whenever the
// queues run dry. A tick reads the clock once, fires the due timers (their
// tasks queue in deadline order), sends pending op cancellations, polls the
// subsystems whose fd epoll reported (each edge is seen once), and then one
// subsystem by smooth weighted round robin over priority x min(waiters,
// cap). Nothing is polled, and the clock is not read, while nothing waits.
//
// Why the wheel is locked: a Send task can be stolen while its timer is
// armed on the core it left, and its drop (or next poll) must disarm it
// from wherever it now runs. Arming and disarming take the owning core's
// timer_lock for a few instructions; firing takes it per batch of 128 and
// wakes the batch after releasing it, so no waker code runs under it.
//
// Per-tick work is C, not Go: a Go callback per tick would cost a C->Go call
// (50-100 ns) where the whole tick costs less, and the driver loops are C
// for the reasons above. Go owns what is not per tick: creating the cores'
// clocks, budgets and timerfds (executor.New), detaching subsystems and
// disarming leftover timers at free, and the test clock's configuration.
//
// Ops. An asyncrt_op lives in the submitter's memory; its private words link
// it into its instance's in-flight list and hold the submitter's waker. A
// task counts its ops in flight in the upper bits of its state word; when
// a cancelled task still has some, poll_task asks every core that may hold
// them to send their cancellations at its next tick and parks the task, and
// the completion of its last op (which lowers the count before waking)
// brings it back to be dropped. So a future's buffers outlive its ops.
//
// Sleeping. An idle driver sleeps on its futex word, bounded by the next
// timer; if a subsystem with an fd has waiters, it sleeps in epoll_pwait2 on
// the core's epoll set instead (the fd is watched edge-triggered; wakes then
// also write the core's eventfd); if a subsystem without an fd has waiters,
// it ticks for its spin time and then sleeps 50 us, doubling to 1 ms.
//
// # Scopes: the task tree (art_scope.c)
//
// A task that needs more than its 96-byte header -- it owns a scope, is a
// scope's child, has a name, a rich error or a cleanup deadline -- gets an
// ext record (art_task_ext, a 128-byte slot of its home core's task
// memory). The header's id word holds either id<<1 or the ext's address|1,
// published with a release store (a child's before it is linked anywhere,
// another task's lazily by CAS), and the ext is freed with the header. So
// plain tasks keep their layout and their cost, and whoever may read a
// header may read its ext.
//
//	scope S ── children ──> child ext <-> child ext <-> ...   (under S.lock)
//	   │   <── ext.scope ──  (each child holds a reference on S)
//	   └── owner ──> task T ── ext.scopes ──> S, S2, ...       (under T's ext lock)
//	             (S holds a reference on T; T's ext counts in `busy` its
//	              scopes that have live children)
//
// Locks nest core -> ext -> scope; no user code, waker or schedule runs
// under any of them.
//
// The guarantee. A task whose future returns while busy is not finished: its
// live scopes are cancelled, it is marked completing (its status kept, ESCOPE
// if it returned READY from a scope nobody had cancelled) and parks with
// CANCEL set. The last child of a scope lowers busy and, if the owner has
// CANCEL, schedules it (busy and CANCEL are a seq-cst Dekker pair). The
// owner finishes -- its one drop -- only once busy is 0 and every scope of
// it is closed under the scope's lock, so no child can be added to, or
// outlive, a finished parent.
//
// Cancellation across threads. Cancelling a scope sets CANCELLED under its
// lock (once: later cancels return), then walks the children 256 at a time
// from a cursor (a finishing child moves the cursor past itself): each child
// gets CANCEL with one fetch-or and, if that was news, a reference; after
// the lock is dropped each is scheduled on its own core (its ring, the
// remote stack of another worker, the injector, or a foreign host) and
// unreferenced. Each task then handles its own cancel on its own driver, in
// art_task_cancel_slow: it cancels the scopes it owns (one level down),
// parks until their children are gone, runs its cleanup (vtable->cleanup,
// with a timer at the cleanup deadline) if the cancel offered time, waits
// out its ops, and is dropped. So leaves go first, every drop happens on
// the thread that owns the task, each hop goes through the run queues (a
// chain of any depth uses no stack), and cancelling 100,000 descendants is
// 100,000 fetch-or-and-push operations spread over their cores.
//
// Deadlines are a timer on the scope's core whose waker cancels the scope;
// a scope arms one only if its own deadline is earlier than the one it
// inherits through its owner (the enclosing scope's cancel reaches it
// anyway). Errors are refcounted records (status, message, user value)
// shared by the task and its scope; the first error under FIRST_ERROR
// cancels the siblings. The dump (art_dump.c) copies at most 256 records
// per lock hold from per-core cursors that unlinking moves along.
package dataplane
