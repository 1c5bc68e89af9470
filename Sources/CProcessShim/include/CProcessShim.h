#ifndef COMFYQ_PROCESS_SHIM_H
#define COMFYQ_PROCESS_SHIM_H

#include <spawn.h>

/// posix_spawn_file_actions_addchdir_np (glibc 2.29+, macOS 10.15+), which Swift's Glibc module
/// does not show: the child changes to `path` before it runs the program.
int comfyq_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path);

/// Closes every descriptor from `lowest` up in the child (posix_spawn_file_actions_addclosefrom_np,
/// glibc 2.34+), so it inherits nothing of comfyq's but what it is given: not its sockets, not
/// its database, not the pipe a parent watches for comfyq's own exit. Returns ENOSYS where the
/// C library has no such call.
int comfyq_spawn_addclosefrom(posix_spawn_file_actions_t *actions, int lowest);

#endif
