import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Free space, and telling "the disk is full" apart from other write failures.
public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the filesystem holding `path` (the
    /// nearest existing folder above it); nil when it cannot be asked.
    public static func available(at path: String) -> Int64? {
        var folder = path
        while !folder.isEmpty && !FileManager.default.fileExists(atPath: folder) {
            folder = (folder as NSString).deletingLastPathComponent
        }
        var stats = statvfs()
        guard statvfs(folder.isEmpty ? "/" : folder, &stats) == 0 else { return nil }
        return Int64(stats.f_bavail) * Int64(stats.f_frsize)
    }

    /// Whether `error` (or one it wraps) is ENOSPC or EDQUOT: no space, or over quota.
    public static func isOutOfSpace(_ error: any Error) -> Bool {
        var current: NSError? = error as NSError
        var depth = 0
        while let error = current, depth < 8 {
            if error.domain == NSPOSIXErrorDomain && (error.code == Int(ENOSPC) || error.code == Int(EDQUOT)) { return true }
            if error.domain == NSCocoaErrorDomain && error.code == CocoaError.fileWriteOutOfSpace.rawValue { return true }
            current = error.userInfo[NSUnderlyingErrorKey] as? NSError
            depth += 1
        }
        return false
    }
}
