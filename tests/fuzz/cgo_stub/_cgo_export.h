/* _cgo_export.h -- what capi/api.c needs from cgo's generated header when
 * the library is built without Go (the fuzzer): the control plane's entry
 * points, which tests/fuzz/control_plane.c implements in C. The signatures
 * are those cgo derives from capi/exports.go. */
#ifndef ART_FUZZ_CGO_EXPORT_H
#define ART_FUZZ_CGO_EXPORT_H
#include <stdint.h>

#include "../../../include/asyncrt.h"

int art_go_executor_new(asyncrt_executor_config *c, uintptr_t *out);
int art_go_executor_new_foreign(asyncrt_foreign_vtable *vtable, void *user, uintptr_t *out);
int art_go_executor_shutdown(uintptr_t ex, int mode, int64_t timeout_ns);
int art_go_executor_free(uintptr_t ex);
int art_go_block_on(uintptr_t ex, asyncrt_future *fut, void *out, int64_t timeout_ns);
int art_go_run(uintptr_t ex, uint64_t max_polls, uint64_t max_ns, uint64_t *polls);
int art_go_executor_watch(uintptr_t ex, uint64_t period_ns);

#endif
