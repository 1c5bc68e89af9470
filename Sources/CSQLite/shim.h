#ifndef COMFYQ_CSQLITE_SHIM_H
#define COMFYQ_CSQLITE_SHIM_H
#include <sqlite3.h>
#endif
