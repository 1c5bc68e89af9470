import ComfyCore
import Foundation
import InputFiles

/// Whole-file work of the run (hashing inputs, reading them for upload) on a thread of its own:
/// a 2 GB video hashed on the cooperative pool would hold one of its threads (one per core)
/// while every stream and connection in the process waits, and on the runner's executor it
/// would hold the queue's commits and the heartbeat. One file at a time; the runner awaits it.
actor FileWork {
    private nonisolated let executor = BlockingExecutor(label: "comfyq.files")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    /// SHA-256 of a file, read in pieces.
    func sha256(of path: String) throws -> String { try FileHash.sha256(of: path) }

    /// Reads and hashes a file; a mask becomes an alpha mask first.
    func read(_ path: String, asMask: Bool = false) throws -> Runner.PreparedFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw InputReadError(description: "cannot read \(path)")
        }
        var bytes = [UInt8](data)
        let sha256 = FileHash.sha256(bytes)
        if asMask {
            do { bytes = try MaskImage.alphaMask(bytes) } catch { throw InputReadError(description: "\(path): not a usable mask: \(error)") }
        }
        return Runner.PreparedFile(sha256: sha256, bytes: bytes)
    }
}
