import CLibPQ
import CSQLite

/// The database libraries in use, for `comfyq --version --verbose` and `doctor`.
public enum DatabaseLibraries {
    /// `3.40.1`
    public static var sqlite: String { String(cString: sqlite3_libversion()) }
    /// `15.10` (from `PQlibVersion`, major × 10000 + minor).
    public static var libpq: String {
        let number = Int(PQlibVersion())
        return "\(number / 10000).\(number % 10000)"
    }
}
