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
