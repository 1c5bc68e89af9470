import ComfyClient
import Foundation
import Hooks
import InputFiles
import QueueStore
import WebSocket

/// What this binary is: its version, the commit and date it was built from (stamped by
/// `scripts/package.sh`; a build from source says so), and the C libraries it runs with, so a
/// bug report says what ran.
enum BuildInfo {
    #if COMFYQ_STAMPED
    static let commit: String? = BuildStamp.commit
    static let date: String? = BuildStamp.date
    #else
    static let commit: String? = nil
    static let date: String? = nil
    #endif

    /// `comfyq 0.1.0 (commit 1a2b3c4d5e6f, built 2026-12-07)`, or `(built from source)`.
    static var versionLine: String {
        guard let commit, let date else { return "comfyq \(ComfyQ.version) (built from source)" }
        return "comfyq \(ComfyQ.version) (commit \(commit), built \(date))"
    }

    /// The C libraries in use, each with its version.
    static var libraries: [(name: String, version: String)] {
        var list: [(String, String)] = [
            ("Lua", LuaRelease.version), ("SQLite", DatabaseLibraries.sqlite), ("libpq", DatabaseLibraries.libpq),
            ("OpenSSL", TLSLibrary.version), ("zlib", ZlibLibrary.version),
        ]
        if let curl = CurlLibrary.version { list.append(("libcurl", curl)) }
        return list
    }

    /// Where the binary is and where it found its libraries (beside it, in a release).
    static var lines: [String] {
        var lines = [versionLine]
        let executable = (Bundle.main.executablePath as NSString?)?.resolvingSymlinksInPath ?? CommandLine.arguments[0]
        lines.append("binary: \(executable)")
        for (name, version) in libraries { lines.append("  \(name): \(version)") }
        return lines
    }
}
