#ifndef COMFYQ_CZLIB_SHIM_H
#define COMFYQ_CZLIB_SHIM_H
#include <zlib.h>

/* inflateInit/deflateInit are macros Swift cannot import. */
static inline int comfyq_inflate_init(z_stream *stream) { return inflateInit(stream); }
static inline int comfyq_deflate_init(z_stream *stream, int level) { return deflateInit(stream, level); }
static inline int comfyq_deflate_init2(z_stream *stream, int level, int window_bits, int mem_level) {
    return deflateInit2(stream, level, Z_DEFLATED, window_bits, mem_level, Z_DEFAULT_STRATEGY);
}

#endif
