import COpenSSL

/// The OpenSSL in use (`OpenSSL 3.0.17 1 Jul 2025`), for `comfyq --version --verbose` and `doctor`.
public enum TLSLibrary {
    public static var version: String { String(cString: OpenSSL_version(0)) }
}
