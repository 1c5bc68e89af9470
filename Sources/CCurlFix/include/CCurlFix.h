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

#endif
