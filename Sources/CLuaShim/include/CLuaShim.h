#ifndef COMFYQ_CLUA_SHIM_PUBLIC_H
#define COMFYQ_CLUA_SHIM_PUBLIC_H
#include <stddef.h>
#include <stdint.h>

/* The whole Swift <-> Lua interface. Swift never calls a Lua API function that can raise an
   error: every operation that allocates or runs Lua code happens here, in C, under lua_pcall.
   Values cross the boundary in a small tagged byte encoding (see "Value encoding" below), so a
   Lua error (out of memory, a runaway script, a bad table) only ever unwinds C and Lua frames. */

typedef struct lua_State lua_State;

/* Limits for one Lua state: memory through our allocator, time through a count hook. */
typedef struct comfyq_lua_limits {
    size_t used;          /* bytes allocated now */
    size_t memory_limit;  /* 0: none */
    double deadline;      /* CLOCK_MONOTONIC seconds; 0: none */
    double time_limit;    /* for the message */
} comfyq_lua_limits;

/* A growable byte buffer (malloc'd; owned by whoever made it). */
typedef struct comfyq_buffer {
    char *data;
    size_t length;
    size_t capacity;
} comfyq_buffer;

/* Makes room for `extra` more bytes; 0 when memory is exhausted. */
int comfyq_buffer_reserve(comfyq_buffer *buffer, size_t extra);
void comfyq_buffer_free(comfyq_buffer *buffer);

/* Value encoding: one value is a tag byte and a payload.
     'n' nil   'f' false   't' true   'i' int64 (8 bytes, little-endian)   'd' double (8 bytes)
     's' u32 length + bytes   'a' u32 count + values (a list)   'o' u32 count + (string key, value) pairs
     'x' u32 length + bytes: a value that cannot be encoded (a function, a cycle); the text says why. */

/* A host function: called with the encoded arguments, writes encoded results into `results`
   (any number of values). It must not touch the Lua state. */
typedef void (*comfyq_host_callback)(void *context, int function, const char *arguments, size_t length, comfyq_buffer *results);

/* A new state whose allocations are counted against `limits` (which must outlive the state),
   with the standard libraries open and the time hook installed. NULL when out of memory. */
lua_State *comfyq_lua_open(comfyq_lua_limits *limits);
void comfyq_lua_close(lua_State *L);

/* Loads and runs a chunk from a file (text only: bytecode is refused), or from memory. On
   success the chunk's first result is encoded into `result`. Returns 0, or a Lua status with the
   message (with a traceback for run-time errors) encoded as one 's' value in `result`. */
int comfyq_lua_run_file(lua_State *L, const char *path, comfyq_buffer *result);
int comfyq_lua_run_string(lua_State *L, const char *source, size_t length, const char *chunkname, comfyq_buffer *result);

/* Calls global `function` with the encoded `arguments` (a sequence of values). 0 and the first
   result encoded in `result`; or a Lua status and the message with a traceback. */
int comfyq_lua_invoke(lua_State *L, const char *function, const char *arguments, size_t length, comfyq_buffer *result);

/* Sets a global, or a field of a global table ("comfyq.options"), to an encoded value. */
int comfyq_lua_set(lua_State *L, const char *path, const char *value, size_t length, comfyq_buffer *error);

/* Names of the global functions, encoded as a list of strings. */
int comfyq_lua_global_functions(lua_State *L, comfyq_buffer *result);

/* Installs host functions: names like "log" or "json.encode" (fields of global table `library`),
   each calling `callback(context, index, …)` with its index in `names`. */
int comfyq_lua_install(lua_State *L, const char *library, const char *const *names, int count, comfyq_host_callback callback,
                       void *context, comfyq_buffer *error);

/* Seconds on the monotonic clock. */
double comfyq_lua_now(void);

/* "Lua 5.4.4": the Lua this was built against. */
const char *comfyq_lua_release(void);

#endif
