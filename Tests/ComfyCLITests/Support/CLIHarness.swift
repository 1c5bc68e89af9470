import ComfyCLI
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import TestSupport

/// Runs the router in-process with captured output.
struct CapturedRun {
    var status: ExitCode
    var stdout: String
    var stderr: String
}

final class Capture: Sendable {
    private let out = Mutex("")
    private let err = Mutex("")

    /// Writes into this capture, in the tests' own home (`Hermetic`).
    var console: Console {
        Console(
            writeOut: { text in self.out.withLock { $0 += text } },
            writeError: { text in self.err.withLock { $0 += text } },
            environment: Hermetic.environment)
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

/// Starts the real binary in the background (a server: `serve`, `simulate`, `run --watch`), in
/// the tests' own home (`Hermetic`) with `environment` over it; its output is read as it comes
/// and it is stopped when the test lets go of it (or with `terminate()`).
func startBinary(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
    try ChildProcess(Paths.binary, arguments, environment: Hermetic.childEnvironment(environment))
}

/// Runs the real binary to its end (at most `timeout` seconds), in the tests' own home with
/// `environment` over it, its outputs read while it runs.
func runBinary(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) async throws -> CapturedRun {
    let child = try startBinary(arguments, environment: environment)
    let status = try await child.exit(timeout: timeout)
    return CapturedRun(status: ExitCode(rawValue: status), stdout: child.stdout, stderr: child.stderr)
}

/// One HTTP request (a fresh session, no cookies kept): the status, the body as text, the headers.
func httpRequest(_ url: String, method: String = "GET", body: String? = nil, headers: [String: String] = [:]) async throws
    -> (status: Int, body: String, headers: [String: String])
{
    var request = URLRequest(url: URL(string: url)!)
    request.httpMethod = method
    if let body { request.httpBody = Data(body.utf8) }
    for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
    let (data, response) = try await URLSession(configuration: .ephemeral).data(for: request)
    let http = response as? HTTPURLResponse
    var fields: [String: String] = [:]
    for (name, value) in http?.allHeaderFields ?? [:] { fields["\(name)"] = "\(value)" }
    return (http?.statusCode ?? 0, String(decoding: data, as: UTF8.self), fields)
}
