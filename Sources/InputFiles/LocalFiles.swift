import ComfyCore
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file system of this machine, as job loading sees it (`FileAccess`).
public enum LocalFiles {
    public static let files = FileAccess(
        status: { path in status(path) },
        list: { path in try? FileManager.default.contentsOfDirectory(atPath: path) },
        readPrefix: { path, count in readPrefix(path, count: count) },
        realPath: { path in
            guard let resolved = realpath(path, nil) else { return nil }
            defer { free(resolved) }
            return String(cString: resolved)
        },
        readText: { path in try String(contentsOfFile: path, encoding: .utf8) })

    /// Size, modification time and kind, following symbolic links.
    public static func status(_ path: String) -> FileAccess.Status? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let kind: FileAccess.Status.Kind
        switch info.st_mode & S_IFMT {
        case S_IFREG: kind = .file
        case S_IFDIR: kind = .directory
        default: kind = .other
        }
        let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1_000_000_000
        return FileAccess.Status(kind: kind, size: Int64(info.st_size), modified: modified, readable: access(path, R_OK) == 0)
    }

    /// Writes `bytes` to `path`, replacing what is there: through a temporary file beside it and
    /// a rename when `atomically` (a reader sees the old file or the new one, never part of one),
    /// else in place, as ComfyUI writes its images. Not flushed to the disk (Foundation's
    /// `Data.write` calls fsync, which on a busy night costs more than the write): outputs are
    /// as durable as the filesystem makes them; the queue's record of them is what is flushed.
    public static func write(_ bytes: [UInt8], to path: String, atomically: Bool) throws(POSIXError) {
        let target = atomically ? temporaryName(beside: path) : path
        let descriptor = open(target, O_WRONLY | O_CREAT | O_CLOEXEC | (atomically ? O_EXCL : O_TRUNC), 0o666)
        guard descriptor >= 0 else { throw Self.error() }
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { systemWrite(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                let failure = Self.error()
                close(descriptor)
                unlink(target)
                throw failure
            }
            written += count
        }
        guard close(descriptor) == 0 else {
            let failure = Self.error()
            unlink(target)
            throw failure
        }
        if atomically && rename(target, path) != 0 {
            let failure = Self.error()
            unlink(target)
            throw failure
        }
    }

    /// `.NAME.RANDOM.tmp` in `path`'s folder: hidden, and never a name another writer picks.
    private static func temporaryName(beside path: String) -> String {
        let folder = (path as NSString).deletingLastPathComponent
        let name = "." + (path as NSString).lastPathComponent + "." + String(UInt64.random(in: 0...UInt64.max), radix: 36) + ".tmp"
        return folder.isEmpty ? name : folder + "/" + name
    }

    private static func error() -> POSIXError { POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }

    static func readPrefix(_ path: String, count: Int) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, count) }
        guard got >= 0 else { return nil }
        return Array(buffer.prefix(got))
    }
}

/// POSIX `write` (inside `LocalFiles`, the name is its own method's).
private func systemWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int { write(descriptor, buffer, count) }
