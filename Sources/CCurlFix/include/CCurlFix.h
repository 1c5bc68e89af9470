#ifndef CCURLFIX_H
#define CCURLFIX_H

#include <stdint.h>

/// Counters of the URL handles this fix tracks (see curlfix.c): made, released through
/// `curl_free` (the leak it fixes) and still alive. All zero where the fix is not built (macOS).
typedef struct {
    uint64_t made;
    uint64_t releasedByFree;
    uint64_t alive;
} comfyq_curl_url_counts;

comfyq_curl_url_counts comfyq_curl_url_counts_now(void);

/// libcurl's version line (`libcurl/7.88.1 OpenSSL/3.0.17 …`), from the libcurl in use; NULL
/// where it cannot be found.
const char *comfyq_curl_version(void);

#endif
