/* copies.c -- one libasyncrt per process.
 *
 * Every copy of the library carries its own Go runtime, and Go does not
 * support two runtimes in one process (golang/go#65050, #18976): they share
 * the signal handlers, and the second one's handler swallows the first one's
 * preemption signals. Loading the same file again is harmless (the dynamic
 * linker hands back the library already loaded), but a copy -- another path,
 * another version bundled by another package -- is a second runtime. So at
 * load each copy looks for another one already in the process, and if it
 * finds one it refuses every call: ASYNCRT_EVERSION naming the other copy
 * (through the data plane's refusal flag, as a forked child refuses). The
 * copy loaded first goes on serving.
 *
 * Another copy is an object that defines asyncrt_version at an address
 * other than ours. The library is linked -Bsymbolic (Go's c-shared mode), so
 * our own reference to asyncrt_version is ours whatever else is loaded.
 */
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <string.h>

#include "../runtime/dataplane/art.h"

typedef struct other_copy {
  const char *path; /* the other copy's file name as the loader knows it */
} other_copy;

static int look_for_other_copy(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  other_copy *found = data;
  /* The main program (""), and names dlopen cannot reopen (the vDSO). */
  if (!info->dlpi_name || !info->dlpi_name[0]) return 0;
  void *h = dlopen(info->dlpi_name, RTLD_LAZY | RTLD_NOLOAD);
  if (!h) return 0;
  /* dlsym also searches the object's dependencies: a program's library that
   * needs libasyncrt answers with the copy it was bound to -- still a copy. */
  void *sym = dlsym(h, "asyncrt_version");
  dlclose(h);
  if (!sym || sym == (void *)asyncrt_version) return 0;
  Dl_info where;
  found->path = dladdr(sym, &where) && where.dli_fname ? where.dli_fname : info->dlpi_name;
  return 1;
}

/* Before main() for a program linked with the library, inside dlopen
 * otherwise; no asyncrt call can run before it. */
__attribute__((constructor)) static void refuse_if_second_copy(void) {
  other_copy found = {0};
  if (!dl_iterate_phdr(look_for_other_copy, &found)) return;
  Dl_info self;
  const char *me = dladdr((void *)asyncrt_version, &self) && self.dli_fname ? self.dli_fname : "?";
  snprintf(art_copy_refusal, sizeof art_copy_refusal,
           "this copy of libasyncrt (%s) was loaded into a process that already has another (%s); "
           "a process can run one: this copy refuses every call, the other one serves",
           me, found.path);
  atomic_store(&art_forked, ART_REFUSE_COPY);
}
