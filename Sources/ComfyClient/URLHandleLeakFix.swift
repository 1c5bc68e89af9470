import CCurlFix

/// What the fix for FoundationNetworking's per-request leak has done so far (see
/// `Sources/CCurlFix/curlfix.c`): URL handles made, released on FoundationNetworking's behalf,
/// alive now. All zero on platforms without the leak (macOS).
public struct URLHandleLeakFix: Sendable, Equatable {
    public var made: UInt64
    public var released: UInt64
    public var alive: UInt64

    public static var counts: URLHandleLeakFix {
        let counts = comfyq_curl_url_counts_now()
        return URLHandleLeakFix(made: counts.made, released: counts.releasedByFree, alive: counts.alive)
    }
}

/// The libcurl behind URLSession (`libcurl/7.88.1 OpenSSL/3.0.17 zlib/1.2.13 …`), nil where it
/// is not found (macOS), for `comfyq --version --verbose` and `doctor`.
public enum CurlLibrary {
    public static var version: String? { comfyq_curl_version().map { String(cString: $0) } }
}
