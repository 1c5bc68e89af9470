// A fix for a leak in swift-corelibs-foundation's URLSession on Linux: before every request,
// `CFURLSessionCurlHostIsEqual` (Sources/_CFURLSessionInterface/CFURLSessionInterface.c) parses
// the URL with `curl_url()` and releases the handle with `curl_free(h)` instead of
// `curl_url_cleanup(h)`. `curl_free` frees the handle's struct but not the URL's parts it holds
// (scheme, host, path, port: four small allocations, ~150 bytes of resident memory per request,
// unbounded over a run of weeks).
//
// The fix interposes the libcurl functions that make and release URL handles. The executable's
// definitions come before libcurl's for calls from shared libraries (the dynamic linker searches
// the executable first), so FoundationNetworking's calls land here. Every handle made through
// `curl_url`/`curl_url_dup` is remembered; `curl_free` of a remembered handle becomes
// `curl_url_cleanup`; everything else goes to libcurl unchanged. The real functions are found
// with `dlsym(RTLD_NEXT, …)`.
#if defined(__linux__)
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include "CCurlFix.h"

typedef void *(*url_fn)(void);
typedef void *(*url_dup_fn)(void *);
typedef void (*release_fn)(void *);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
// The handles alive now: only a few at once (one per request being set up), so a plain array.
static void **alive = NULL;
static size_t capacity = 0, count = 0;
static uint64_t made = 0, releasedByFree = 0;

static void insert_locked(void *pointer) {
    if (count == capacity) {
        size_t larger = capacity ? capacity * 2 : 16;
        void **grown = realloc(alive, larger * sizeof(void *));
        if (!grown) return;  // out of memory: this handle is not tracked, and leaks as without the fix
        alive = grown;
        capacity = larger;
    }
    alive[count++] = pointer;
}

// Removes `pointer` if remembered; returns whether it was.
static int remove_locked(void *pointer) {
    for (size_t i = count; i > 0; i--) {
        if (alive[i - 1] == pointer) {
            alive[i - 1] = alive[--count];
            return 1;
        }
    }
    return 0;
}

static void remember(void *handle) {
    if (!handle) return;
    pthread_mutex_lock(&lock);
    insert_locked(handle);
    made++;
    pthread_mutex_unlock(&lock);
}

static int forget(void *handle) {
    pthread_mutex_lock(&lock);
    int known = remove_locked(handle);
    pthread_mutex_unlock(&lock);
    return known;
}

void *curl_url(void) {
    static url_fn real = NULL;
    if (!real) real = (url_fn)dlsym(RTLD_NEXT, "curl_url");
    void *handle = real();
    remember(handle);
    return handle;
}

void *curl_url_dup(void *original) {
    static url_dup_fn real = NULL;
    if (!real) real = (url_dup_fn)dlsym(RTLD_NEXT, "curl_url_dup");
    void *handle = real(original);
    remember(handle);
    return handle;
}

void curl_url_cleanup(void *handle) {
    static release_fn real = NULL;
    if (!real) real = (release_fn)dlsym(RTLD_NEXT, "curl_url_cleanup");
    if (handle) forget(handle);
    real(handle);
}

void curl_free(void *pointer) {
    static release_fn realFree = NULL, realCleanup = NULL;
    if (!realFree) realFree = (release_fn)dlsym(RTLD_NEXT, "curl_free");
    if (pointer && forget(pointer)) {
        if (!realCleanup) realCleanup = (release_fn)dlsym(RTLD_NEXT, "curl_url_cleanup");
        pthread_mutex_lock(&lock);
        releasedByFree++;
        pthread_mutex_unlock(&lock);
        realCleanup(pointer);
        return;
    }
    realFree(pointer);
}

comfyq_curl_url_counts comfyq_curl_url_counts_now(void) {
    pthread_mutex_lock(&lock);
    comfyq_curl_url_counts counts = {made, releasedByFree, count};
    pthread_mutex_unlock(&lock);
    return counts;
}

const char *comfyq_curl_version(void) {
    typedef const char *(*version_fn)(void);
    version_fn version = (version_fn)dlsym(RTLD_DEFAULT, "curl_version");
    return version ? version() : NULL;
}

#else
#include "CCurlFix.h"
comfyq_curl_url_counts comfyq_curl_url_counts_now(void) {
    comfyq_curl_url_counts counts = {0, 0, 0};
    return counts;
}
const char *comfyq_curl_version(void) { return NULL; }
#endif
