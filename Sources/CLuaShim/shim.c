#include "CLuaShim.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* MARK: Buffers */

int comfyq_buffer_reserve(comfyq_buffer *buffer, size_t extra) {
    if (buffer->capacity - buffer->length >= extra) return 1;
    size_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity - buffer->length < extra) capacity *= 2;
    char *data = realloc(buffer->data, capacity);
    if (data == NULL) return 0;
    buffer->data = data;
    buffer->capacity = capacity;
    return 1;
}

void comfyq_buffer_free(comfyq_buffer *buffer) {
    free(buffer->data);
    buffer->data = NULL;
    buffer->length = buffer->capacity = 0;
}

static void put(lua_State *L, comfyq_buffer *buffer, const void *bytes, size_t count) {
    if (!comfyq_buffer_reserve(buffer, count)) luaL_error(L, "not enough memory");
    memcpy(buffer->data + buffer->length, bytes, count);
    buffer->length += count;
}

static void put_tag(lua_State *L, comfyq_buffer *buffer, char tag) { put(L, buffer, &tag, 1); }

static void put_u32(lua_State *L, comfyq_buffer *buffer, uint32_t value) {
    unsigned char bytes[4] = {value & 0xff, (value >> 8) & 0xff, (value >> 16) & 0xff, value >> 24};
    put(L, buffer, bytes, 4);
}

static void put_u64(lua_State *L, comfyq_buffer *buffer, uint64_t value) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++) bytes[i] = (value >> (8 * i)) & 0xff;
    put(L, buffer, bytes, 8);
}

static void put_string(lua_State *L, comfyq_buffer *buffer, char tag, const char *text, size_t length) {
    put_tag(L, buffer, tag);
    put_u32(L, buffer, (uint32_t)length);
    put(L, buffer, text, length);
}

/* MARK: Encoding Lua values */

#define MAX_DEPTH 100

/* Encodes the value at `index` (absolute). Tables that are sequences 1..n become lists, others
   objects with string keys (integer keys are written in decimal). Raw access only: no
   metamethod runs. Values that have no encoding become 'x' with the reason. */
static void encode(lua_State *L, int index, comfyq_buffer *buffer, int depth) {
    switch (lua_type(L, index)) {
    case LUA_TNIL: put_tag(L, buffer, 'n'); return;
    case LUA_TBOOLEAN: put_tag(L, buffer, lua_toboolean(L, index) ? 't' : 'f'); return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, index)) {
            put_tag(L, buffer, 'i');
            put_u64(L, buffer, (uint64_t)lua_tointeger(L, index));
        } else {
            double number = lua_tonumber(L, index);
            uint64_t bits;
            memcpy(&bits, &number, 8);
            put_tag(L, buffer, 'd');
            put_u64(L, buffer, bits);
        }
        return;
    case LUA_TSTRING: {
        size_t length;
        const char *text = lua_tolstring(L, index, &length);
        put_string(L, buffer, 's', text, length);
        return;
    }
    case LUA_TTABLE: break;
    default: {
        const char *name = luaL_typename(L, index);
        char reason[64];
        snprintf(reason, sizeof reason, "a %s cannot be converted", name);
        put_string(L, buffer, 'x', reason, strlen(reason));
        return;
    }
    }
    if (depth >= MAX_DEPTH) {
        const char *reason = "tables nested too deeply (a cycle?)";
        put_string(L, buffer, 'x', reason, strlen(reason));
        return;
    }
    luaL_checkstack(L, 4, "tables nested too deeply");
    lua_Integer length = (lua_Integer)lua_rawlen(L, index);
    lua_Integer count = 0;
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        count++;
        lua_pop(L, 1);
    }
    if (length > 0 && count == length) {
        put_tag(L, buffer, 'a');
        put_u32(L, buffer, (uint32_t)length);
        for (lua_Integer i = 1; i <= length; i++) {
            lua_rawgeti(L, index, i);
            encode(L, lua_gettop(L), buffer, depth + 1);
            lua_pop(L, 1);
        }
        return;
    }
    put_tag(L, buffer, 'o');
    put_u32(L, buffer, (uint32_t)count);
    lua_pushnil(L);
    while (lua_next(L, index) != 0) {
        int key = lua_gettop(L) - 1;
        if (lua_type(L, key) == LUA_TSTRING) {
            size_t size;
            const char *text = lua_tolstring(L, key, &size);
            put_string(L, buffer, 's', text, size);
        } else if (lua_type(L, key) == LUA_TNUMBER && lua_isinteger(L, key)) {
            char text[32];
            int size = snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(L, key));
            put_string(L, buffer, 's', text, (size_t)size);
        } else {
            /* lua_tolstring would change the key in place and break lua_next: describe it instead. */
            char text[64];
            int size = snprintf(text, sizeof text, "<%s key>", luaL_typename(L, key));
            put_string(L, buffer, 's', text, (size_t)size);
        }
        encode(L, lua_gettop(L), buffer, depth + 1);
        lua_pop(L, 1);
    }
}

/* MARK: Decoding into Lua values */

typedef struct reader {
    const unsigned char *at;
    const unsigned char *end;
} reader;

static uint32_t get_u32(lua_State *L, reader *r) {
    if (r->end - r->at < 4) luaL_error(L, "comfyq: truncated value");
    uint32_t value = r->at[0] | (r->at[1] << 8) | (r->at[2] << 16) | ((uint32_t)r->at[3] << 24);
    r->at += 4;
    return value;
}

static uint64_t get_u64(lua_State *L, reader *r) {
    if (r->end - r->at < 8) luaL_error(L, "comfyq: truncated value");
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--) value = (value << 8) | r->at[i];
    r->at += 8;
    return value;
}

/* Pushes one value. Nil entries of objects are left out (a Lua table cannot hold nil). */
static void decode(lua_State *L, reader *r, int depth) {
    if (r->at >= r->end) luaL_error(L, "comfyq: truncated value");
    if (depth > MAX_DEPTH + 1) luaL_error(L, "comfyq: value nested too deeply");
    luaL_checkstack(L, 3, "value nested too deeply");
    char tag = (char)*r->at++;
    switch (tag) {
    case 'n': lua_pushnil(L); return;
    case 'f': lua_pushboolean(L, 0); return;
    case 't': lua_pushboolean(L, 1); return;
    case 'i': lua_pushinteger(L, (lua_Integer)get_u64(L, r)); return;
    case 'd': {
        uint64_t bits = get_u64(L, r);
        double number;
        memcpy(&number, &bits, 8);
        lua_pushnumber(L, number);
        return;
    }
    case 's':
    case 'x': {
        uint32_t length = get_u32(L, r);
        if ((size_t)(r->end - r->at) < length) luaL_error(L, "comfyq: truncated value");
        lua_pushlstring(L, (const char *)r->at, length);
        r->at += length;
        return;
    }
    case 'a': {
        uint32_t count = get_u32(L, r);
        lua_createtable(L, count > 1024 ? 1024 : (int)count, 0);
        for (uint32_t i = 1; i <= count; i++) {
            decode(L, r, depth + 1);
            lua_rawseti(L, -2, i);
        }
        return;
    }
    case 'o': {
        uint32_t count = get_u32(L, r);
        lua_createtable(L, 0, count > 1024 ? 1024 : (int)count);
        for (uint32_t i = 0; i < count; i++) {
            decode(L, r, depth + 1);
            decode(L, r, depth + 1);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 2);
            } else {
                lua_rawset(L, -3);
            }
        }
        return;
    }
    default: luaL_error(L, "comfyq: bad value tag %d", (int)tag);
    }
}

static int decode_all(lua_State *L, const char *bytes, size_t length) {
    reader r = {(const unsigned char *)bytes, (const unsigned char *)bytes + length};
    int count = 0;
    while (r.at < r.end) {
        decode(L, &r, 0);
        count++;
    }
    return count;
}

/* MARK: Limits */

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
   with pcall meets it again on its very next instruction, outside the pcall. */
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

/* Before each call: the hook back to its normal interval, the deadline set. */
static void arm(lua_State *L) {
    comfyq_lua_limits *limits = *(comfyq_lua_limits **)lua_getextraspace(L);
    limits->deadline = limits->time_limit > 0 ? comfyq_lua_now() + limits->time_limit : 0;
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 10000);
}

static void disarm(lua_State *L) {
    comfyq_lua_limits *limits = *(comfyq_lua_limits **)lua_getextraspace(L);
    limits->deadline = 0;
}

/* MARK: Protected operations */

static int traceback_handler(lua_State *L) {
    const char *message = lua_tostring(L, 1);
    if (message == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        message = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, message, 1);
    return 1;
}

typedef struct request {
    const char *name;      /* a function, a path, a library */
    const char *bytes;     /* encoded values */
    size_t length;
    const char *const *names;
    int count;
    comfyq_host_callback callback;
    void *context;
    int kind;              /* what `body` does */
    comfyq_buffer *result;
} request;

enum { RUN_FILE, RUN_STRING, INVOKE, SET, FUNCTIONS, INSTALL };

static int host_trampoline(lua_State *L);

static void push_library(lua_State *L, const char *library) {
    if (lua_getglobal(L, library) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setglobal(L, library);
    }
}

/* Walks "a.b.c": leaves the table holding the last part on the stack, returns that part. */
static const char *walk(lua_State *L, const char *path, char *part, size_t size) {
    const char *dot = strchr(path, '.');
    if (dot == NULL) {
        lua_pushglobaltable(L);
        snprintf(part, size, "%s", path);
        return part;
    }
    snprintf(part, size, "%.*s", (int)(dot - path), path);
    push_library(L, part);
    path = dot + 1;
    while ((dot = strchr(path, '.')) != NULL) {
        lua_pushlstring(L, path, (size_t)(dot - path));
        if (lua_rawget(L, -2) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushlstring(L, path, (size_t)(dot - path));
            lua_pushvalue(L, -2);
            lua_rawset(L, -4);
        }
        lua_remove(L, -2);
        path = dot + 1;
    }
    snprintf(part, size, "%s", path);
    return part;
}

static int body(lua_State *L) {
    request *r = (request *)lua_touserdata(L, 1);
    lua_settop(L, 0);
    switch (r->kind) {
    case RUN_FILE:
    case RUN_STRING: {
        int status = r->kind == RUN_FILE ? luaL_loadfilex(L, r->name, "t")
                                         : luaL_loadbufferx(L, r->bytes, r->length, r->name, "t");
        if (status != LUA_OK) return lua_error(L); /* the message names file:line */
        arm(L);
        lua_call(L, 0, 1);
        disarm(L);
        encode(L, 1, r->result, 0);
        return 0;
    }
    case INVOKE: {
        lua_getglobal(L, r->name);
        if (!lua_isfunction(L, -1)) return luaL_error(L, "no function '%s'", r->name);
        int count = decode_all(L, r->bytes, r->length);
        arm(L);
        lua_call(L, count, 1);
        disarm(L);
        encode(L, 1, r->result, 0);
        return 0;
    }
    case SET: {
        char part[256];
        walk(L, r->name, part, sizeof part);
        lua_pushstring(L, part);
        decode_all(L, r->bytes, r->length);
        lua_rawset(L, -3);
        return 0;
    }
    case FUNCTIONS: {
        int count = 0;
        lua_pushglobaltable(L);
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) count++;
            lua_pop(L, 1);
        }
        put_tag(L, r->result, 'a');
        put_u32(L, r->result, (uint32_t)count);
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
                size_t size;
                const char *name = lua_tolstring(L, -2, &size);
                put_string(L, r->result, 's', name, size);
            }
            lua_pop(L, 1);
        }
        return 0;
    }
    case INSTALL: {
        for (int i = 0; i < r->count; i++) {
            char part[256];
            char path[300];
            snprintf(path, sizeof path, "%s.%s", r->name, r->names[i]);
            walk(L, path, part, sizeof part);
            lua_pushstring(L, part);
            lua_pushlightuserdata(L, (void *)r->callback);
            lua_pushlightuserdata(L, r->context);
            lua_pushinteger(L, i);
            lua_pushstring(L, path);
            lua_pushcclosure(L, host_trampoline, 4);
            lua_rawset(L, -3);
            lua_pop(L, 1);
        }
        return 0;
    }
    }
    return 0;
}

/* Runs `body` under lua_pcall with the traceback handler. On error the message goes into
   `result` as one 's' value. The stack is left as it was. */
static int protected(lua_State *L, request *r) {
    int base = lua_gettop(L);
    if (r->result != NULL) r->result->length = 0;
    if (!lua_checkstack(L, 4)) return LUA_ERRMEM;
    lua_pushcfunction(L, traceback_handler);
    lua_pushcfunction(L, body);
    lua_pushlightuserdata(L, r);
    int status = lua_pcall(L, 1, 0, base + 1);
    disarm(L);
    if (status != LUA_OK && r->result != NULL) {
        size_t length = 0;
        const char *message = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &length) : "unknown Lua error";
        if (message == NULL) message = "unknown Lua error";
        if (length == 0) length = strlen(message);
        r->result->length = 0;
        if (comfyq_buffer_reserve(r->result, length + 5)) {
            r->result->data[0] = 's';
            uint32_t size = (uint32_t)length;
            for (int i = 0; i < 4; i++) r->result->data[1 + i] = (char)((size >> (8 * i)) & 0xff);
            memcpy(r->result->data + 5, message, length);
            r->result->length = length + 5;
        }
    }
    lua_settop(L, base);
    return status;
}

/* A host function: arguments encoded (C, may raise: only C and Lua frames are unwound), the Swift
   callback run with plain bytes, its results decoded and pushed. The buffers belong to the thread
   and are reused, so an error at any point leaks nothing. */
static _Thread_local comfyq_buffer host_arguments;
static _Thread_local comfyq_buffer host_results;

static int host_trampoline(lua_State *L) {
    comfyq_host_callback callback = (comfyq_host_callback)lua_touserdata(L, lua_upvalueindex(1));
    void *context = lua_touserdata(L, lua_upvalueindex(2));
    int function = (int)lua_tointeger(L, lua_upvalueindex(3));
    int count = lua_gettop(L);
    host_arguments.length = 0;
    for (int i = 1; i <= count; i++) encode(L, i, &host_arguments, 0);
    host_results.length = 0;
    callback(context, function, host_arguments.data, host_arguments.length, &host_results);
    if (host_arguments.capacity > (1u << 20)) comfyq_buffer_free(&host_arguments);
    int pushed = decode_all(L, host_results.data, host_results.length);
    if (host_results.capacity > (1u << 20)) comfyq_buffer_free(&host_results);
    return pushed;
}

/* MARK: Public entry points */

lua_State *comfyq_lua_open(comfyq_lua_limits *limits) {
    lua_State *L = lua_newstate(limited_alloc, limits);
    if (L == NULL) return NULL;
    *(comfyq_lua_limits **)lua_getextraspace(L) = limits;
    luaL_openlibs(L); /* cannot fail for lack of memory in a new state below our limits */
    /* Hook calls make short-lived tables (each event); the generational collector suits them. */
    lua_gc(L, LUA_GCGEN, 0, 0);
    lua_sethook(L, deadline_hook, LUA_MASKCOUNT, 10000);
    return L;
}

void comfyq_lua_close(lua_State *L) { lua_close(L); }

int comfyq_lua_run_file(lua_State *L, const char *path, comfyq_buffer *result) {
    request r = {.name = path, .kind = RUN_FILE, .result = result};
    return protected(L, &r);
}

int comfyq_lua_run_string(lua_State *L, const char *source, size_t length, const char *chunkname, comfyq_buffer *result) {
    request r = {.name = chunkname, .bytes = source, .length = length, .kind = RUN_STRING, .result = result};
    return protected(L, &r);
}

int comfyq_lua_invoke(lua_State *L, const char *function, const char *arguments, size_t length, comfyq_buffer *result) {
    request r = {.name = function, .bytes = arguments, .length = length, .kind = INVOKE, .result = result};
    return protected(L, &r);
}

int comfyq_lua_set(lua_State *L, const char *path, const char *value, size_t length, comfyq_buffer *error) {
    request r = {.name = path, .bytes = value, .length = length, .kind = SET, .result = error};
    return protected(L, &r);
}

int comfyq_lua_global_functions(lua_State *L, comfyq_buffer *result) {
    request r = {.kind = FUNCTIONS, .result = result};
    return protected(L, &r);
}

int comfyq_lua_install(lua_State *L, const char *library, const char *const *names, int count, comfyq_host_callback callback,
                       void *context, comfyq_buffer *error) {
    request r = {.name = library, .names = names, .count = count, .callback = callback, .context = context, .kind = INSTALL, .result = error};
    return protected(L, &r);
}

const char *comfyq_lua_release(void) { return LUA_RELEASE; }
