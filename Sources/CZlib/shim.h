#ifndef COMFYQ_CZLIB_SHIM_H
#define COMFYQ_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit/deflateInit are macros Swift cannot import. */
static inline int comfyq_inflate_init(z_stream *stream) { return inflateInit(stream); }
static inline int comfyq_deflate_init(z_stream *stream, int level) { return deflateInit(stream, level); }

#endif
