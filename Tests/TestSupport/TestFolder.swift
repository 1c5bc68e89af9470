import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where tests put their files: one folder per test process under the system's temporary folder,
/// removed when the process exits, so a run of the suite leaves nothing behind. Folders left by a
/// process that died without exiting are removed by the next one.
public enum TestFolder {
    /// The folder of this process, made on first use.
    public static let root: URL = {
        let base = FileManager.default.temporaryDirectory
        removeFoldersOfDeadProcesses(in: base)
        let root = base.appendingPathComponent("\(prefix)\(getpid())")
        try? FileManager.default.removeItem(at: root)  // a folder of an earlier process with this pid
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            fatalError("cannot make the tests' folder \(root.path): \(error)")
        }
        atexit { try? FileManager.default.removeItem(at: TestFolder.root) }
        return root
    }()

    /// A new folder under `root`, named `name-UUID`.
    public static func make(_ name: String) throws -> URL {
        let folder = root.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    private static let prefix = "comfyq-tests-"

    private static func removeFoldersOfDeadProcesses(in base: URL) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: base.path) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = pid_t(name.dropFirst(prefix.count)), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(at: base.appendingPathComponent(name))
            }
        }
    }
}
