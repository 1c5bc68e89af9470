#ifndef COMFYQ_CLUA_SHIM_H
#define COMFYQ_CLUA_SHIM_H
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>
#include <string.h>
#endif
