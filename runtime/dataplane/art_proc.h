/* art_proc.h -- child processes (art_proc.c): spawn, kill, reap. */
#ifndef ART_PROC_H
#define ART_PROC_H

#include "art.h"

#pragma GCC visibility push(hidden)

/* asyncrt_process_spawn once its arguments are checked (cfg->argv[0] set). */
int art_process_spawn(const asyncrt_process_config *cfg, int *pid, int *pidfd);
/* asyncrt_process_kill once its arguments are checked. */
int art_process_kill(int pidfd, int signo);
#pragma GCC visibility pop

#endif
