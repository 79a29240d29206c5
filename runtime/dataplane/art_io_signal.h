/* art_io_signal.h -- what the control plane needs of the SIGNAL ops
 * (art_io_signal.c) beyond art_io.h's submit and cancel. */
#ifndef ART_IO_SIGNAL_H
#define ART_IO_SIGNAL_H

#include "art_io.h"

#pragma GCC visibility push(hidden)

#define ART_IO_NSIG 65 /* signals 1..64 */

/* 1 if a SIGNAL op may wait for signo: catchable, not one the runtime
 * reports crashes with, not one of glibc's own. */
int art_io_signal_valid(int signo);
/* Set by the control plane at load: starts catching signo (0, or -errno).
 * Called at a driver's first wait for signo, inside the submit callback. */
extern int (*art_io_signal_watch_hook)(int signo);
/* A delivery of signo (from the control plane's signal goroutine). */
void art_io_signal_deliver(int signo);
/* Stops io's watch of signo: its waiting ops complete with ECANCELLED.
 * Returns 1 if io was watching it (the control plane then drops its count
 * of watchers of signo), else 0. Any thread. */
int art_io_signal_release(art_io *io, int signo);
/* art_io_signal_release of every signal io watches, at its close; returns
 * them as a mask (bit s-1 for signal s). */
uint64_t art_io_signal_close(art_io *io);

#pragma GCC visibility pop

#endif
