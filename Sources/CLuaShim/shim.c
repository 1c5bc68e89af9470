#include "CLuaShim.h"

int comfyq_lua_pcall(lua_State *L, int nargs, int nresults, int msgh) {
    return lua_pcall(L, nargs, nresults, msgh);
}

void comfyq_lua_pop(lua_State *L, int n) { lua_pop(L, n); }

const char *comfyq_lua_tostring(lua_State *L, int index) { return lua_tostring(L, index); }

int comfyq_lua_isfunction(lua_State *L, int index) { return lua_isfunction(L, index); }

void comfyq_lua_newtable(lua_State *L) { lua_newtable(L); }

int comfyq_lua_registryindex(void) { return LUA_REGISTRYINDEX; }

static int traceback_handler(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (message == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
            return 1;
        }
        message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

void comfyq_lua_push_traceback_handler(lua_State *L) { lua_pushcfunction(L, traceback_handler); }

int comfyq_lua_loadfile(lua_State *L, const char *path) { return luaL_loadfilex(L, path, "t"); }

int comfyq_lua_loadstring(lua_State *L, const char *source, size_t length, const char *chunkname) {
    return luaL_loadbufferx(L, source, length, chunkname, "t");
}

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void *limited_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    comfyq_lua_limits *limits = (comfyq_lua_limits *)ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        limits->used -= old;
        return NULL;
    }
    if (limits->memory_limit && nsize > old && limits->used - old + nsize > limits->memory_limit) {
        return NULL; /* Lua raises "not enough memory" */
    }
    void *block = realloc(ptr, nsize);
    if (block == NULL) return NULL;
    limits->used = limits->used - old + nsize;
    return block;
}

double comfyq_lua_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Runs every 10,000 instructions, in every coroutine (they inherit the hook). Once the deadline
   has passed it re-arms itself for every instruction and raises: a script that catches the error
   with pcall meets it again on its very next instruction, outside the pcall. The error unwinds C
   and Lua frames only: lua_pcall is below. */
static void deadline_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    comfyq_lua_limits *limits = *(comfyq_lua_limits **)lua_getextraspace(L);
    if (limits && limits->deadline > 0 && comfyq_lua_now() > limits->deadline) {
        char message[64];
        snprintf(message, sizeof message, "time limit of %.1f s exceeded", limits->time_limit);
        lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "%s", message); /* lua_pushfstring has no %.1f */
    }
}

void comfyq_lua_arm(lua_State *L) { lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 10000); }

lua_State *comfyq_lua_newstate(comfyq_lua_limits *limits) {
    lua_State *L = lua_newstate(limited_alloc, limits);
    if (L == NULL) return NULL;
    *(comfyq_lua_limits **)lua_getextraspace(L) = limits;
    comfyq_lua_arm(L);
    return L;
}
