#ifndef COMFYQ_CLIBPQ_SHIM_H
#define COMFYQ_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
