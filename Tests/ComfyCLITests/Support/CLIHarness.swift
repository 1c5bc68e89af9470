import ComfyCLI
import Foundation
import Synchronization

/// Runs the router in-process with captured output.
struct CapturedRun {
    var status: ExitCode
    var stdout: String
    var stderr: String
}

final class Capture: Sendable {
    private let out = Mutex("")
    private let err = Mutex("")

    var console: Console {
        Console(
            writeOut: { text in self.out.withLock { $0 += text } },
            writeError: { text in self.err.withLock { $0 += text } })
    }

    var stdout: String { out.withLock { $0 } }
    var stderr: String { err.withLock { $0 } }
}

func comfyq(_ arguments: String...) async -> CapturedRun {
    let capture = Capture()
    let status = await ComfyQ.main(arguments: arguments, console: capture.console)
    return CapturedRun(status: status, stdout: capture.stdout, stderr: capture.stderr)
}

enum Paths {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func trace(_ name: String) -> String {
        packageRoot.appendingPathComponent("Tests/Fixtures/traces/\(name)").path
    }

    /// The built `comfyq` executable, beside the test bundle.
    static var binary: URL {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("comfyq")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return packageRoot.appendingPathComponent(".build/debug/comfyq")
    }
}

/// Starts the real binary in the background (a server: `serve`, `simulate`), its output dropped;
/// the caller stops it with `terminate()`.
func startBinary(_ arguments: [String], environment: [String: String] = [:]) throws -> Process {
    let process = Process()
    process.executableURL = Paths.binary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    return process
}

/// Runs the real binary and waits for it without blocking the cooperative pool on the exit
/// (`waitUntilExit()` can hang there on Linux).
func runBinary(_ arguments: [String], environment: [String: String] = [:]) async throws -> CapturedRun {
    let process = Process()
    process.executableURL = Paths.binary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let exit = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int32, any Error>) in
        process.terminationHandler = { finished in continuation.resume(returning: finished.terminationStatus) }
        do { try process.run() } catch { continuation.resume(throwing: error) }
    }
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    return CapturedRun(
        status: ExitCode(rawValue: exit), stdout: String(decoding: stdout, as: UTF8.self),
        stderr: String(decoding: stderr, as: UTF8.self))
}
