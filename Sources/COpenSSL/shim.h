#ifndef COMFYQ_COPENSSL_SHIM_H
#define COMFYQ_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>

/* Macros Swift cannot import, as static inline functions. */

static inline long comfyq_ssl_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

static inline long comfyq_ssl_ctx_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}

static inline int comfyq_tls1_2_version(void) { return TLS1_2_VERSION; }

/* Writes may complete in parts and be retried from a different buffer position. */
static inline long comfyq_ssl_ctx_set_partial_write_modes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

#endif
