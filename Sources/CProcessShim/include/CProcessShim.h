#ifndef COMFYQ_PROCESS_SHIM_H
#define COMFYQ_PROCESS_SHIM_H

#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np (glibc 2.29+, macOS 10.15+), which Swift's Glibc module
/// does not show: the child changes to `path` before it runs the program.
int comfyq_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

#endif
