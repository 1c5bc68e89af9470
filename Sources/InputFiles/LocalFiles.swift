import ComfyCore
import Foundation

#if canImport(Glibc)
import Glibc
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
