#ifndef COMFYQ_CLUA_SHIM_PUBLIC_H
#define COMFYQ_CLUA_SHIM_PUBLIC_H
#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

/* Lua's function-like macros and variadic functions are invisible to Swift: these wrap them. */

int comfyq_lua_pcall(lua_State *L, int nargs, int nresults, int msgh);
void comfyq_lua_pop(lua_State *L, int n);
const char *comfyq_lua_tostring(lua_State *L, int index);
int comfyq_lua_isfunction(lua_State *L, int index);
void comfyq_lua_newtable(lua_State *L);
int comfyq_lua_registryindex(void);

/* Pushes the message handler that appends a traceback to an error (for lua_pcall's msgh). */
void comfyq_lua_push_traceback_handler(lua_State *L);

/* Loads a chunk from a file, in text mode only ("t": precompiled bytecode is refused). */
int comfyq_lua_loadfile(lua_State *L, const char *path);
int comfyq_lua_loadstring(lua_State *L, const char *source, size_t length, const char *chunkname);

#endif

/* Limits for one Lua state: memory through our allocator, time through a count hook. */
typedef struct comfyq_lua_limits {
    size_t used;          /* bytes allocated now */
    size_t memory_limit;  /* 0: none */
    double deadline;      /* CLOCK_MONOTONIC seconds; 0: none */
    double time_limit;    /* for the message */
} comfyq_lua_limits;

/* A new state whose allocations are counted against `limits`, with the time hook installed.
   `limits` must outlive the state. */
lua_State *comfyq_lua_newstate(comfyq_lua_limits *limits);

/* Puts the time hook back to its normal interval (before each call). */
void comfyq_lua_arm(lua_State *L);

/* Seconds on the monotonic clock. */
double comfyq_lua_now(void);
