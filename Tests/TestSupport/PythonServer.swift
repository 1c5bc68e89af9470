import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// A helper server written in Python, started for one test and stopped after it.
public final class PythonServer: @unchecked Sendable {
    let process = Process()
    private let lifeline = Pipe()
    public let port: Int
    private var stopped = false

    /// Debian's interpreter, which has `python3-websockets` (installed by scripts/setup.sh).
    public static let interpreter = "/usr/bin/python3"

    /// Starts `script` (a path; see `Support.path(_:from:)`) and waits for its "PORT <n>" line.
    public init(script: String, arguments: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: Self.interpreter)
        process.arguments = [script] + arguments
        let output = Pipe()
        process.standardOutput = output
        // Its stdin stays open for as long as this process lives: the server exits at EOF, so a
        // test process that dies leaves no server behind holding its output open.
        process.standardInput = lifeline
        try process.run()
        // The first line is "PORT <n>".
        var line = Data()
        let handle = output.fileHandleForReading
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { break }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).prefix { $0.isNumber }) else {
            process.terminate()
            throw CocoaError(.fileReadCorruptFile, userInfo: [NSLocalizedDescriptionKey: "helper server did not start: \(text)"])
        }
        self.port = port
    }

    /// Stops the server and reaps it (`waitUntilExit()` can hang on Linux when called from a task
    /// on the cooperative pool).
    public func stop() {
        let pid = process.processIdentifier
        guard pid > 0, !stopped else { return }
        stopped = true
        // SIGKILL: the child may inherit a mask that blocks SIGTERM from the test runner's thread.
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
    }

    deinit { stop() }
}

/// Locating files that sit beside a test's source.
public enum Support {
    /// `name` in the folder of the file `file` (pass `#filePath`).
    public static func path(_ name: String, besides file: String) -> String {
        URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// Self-signed certificates made with the `openssl` tool, for TLS tests.
public enum TestCertificate {
    /// A certificate for `names` (subjectAltName entries like "IP:127.0.0.1") and its key.
    public static func make(_ names: String) throws -> (cert: String, key: String) {
        let directory = TestFolder.root.appendingPathComponent("comfyq-tls-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cert = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = [
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
            "-subj", "/CN=comfyq-test", "-addext", "subjectAltName=\(names)",
        ]
        process.standardError = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        var status: Int32 = 0
        waitpid(process.processIdentifier, &status, 0)  // Process.isRunning may never turn false here
        guard FileManager.default.fileExists(atPath: cert) else { throw CocoaError(.fileNoSuchFile) }
        return (cert, key)
    }
}

/// Runs blocking work (waiting for a child process, reading its pipe) on a thread of its own,
/// so tests never tie up the two threads of the cooperative pool.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

extension PythonServer {
    /// Starts the server without blocking the cooperative pool while it boots.
    public static func start(script: String, arguments: [String] = []) async throws -> PythonServer {
        try await offPool { try PythonServer(script: script, arguments: arguments) }
    }
}

extension TestCertificate {
    /// Makes a certificate without blocking the cooperative pool on `openssl`.
    public static func generate(_ names: String) async throws -> (cert: String, key: String) {
        let pair = try await offPool { try make(names) }
        return pair
    }
}

/// The result of `body`, or nil if it takes longer than `seconds` (the body is then cancelled).
public func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async -> T?) async -> T? {
    await withTaskGroup(of: T?.self) { group in
        group.addTask { await body() }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}

/// The first line a child process writes to `handle`, read off the cooperative pool.
public func firstLine(of handle: FileHandle) async throws -> String {
    try await offPool {
        var text = ""
        while !text.contains("\n") {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
        }
        return String(text.split(separator: "\n").first ?? "")
    }
}

/// A local HTTP listener that records requests (for hooks that post to webhooks).
public struct HTTPListener: Sendable {
    public let server: PythonServer
    public var url: String { "http://127.0.0.1:\(server.port)" }

    public static func start(status: Int = 204) async throws -> HTTPListener {
        let script = Support.path("http_listener.py", besides: #filePath)
        return HTTPListener(server: try await PythonServer.start(script: script, arguments: ["--status", String(status)]))
    }

    /// The requests recorded so far: method, path, headers, body.
    public func requests() async throws -> [[String: Any]] {
        let session = URLSession(configuration: .ephemeral)
        defer { session.invalidateAndCancel() }
        let (data, _) = try await session.data(from: URL(string: url + "/_requests")!)
        return (try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) ?? []
    }

    public func stop() { server.stop() }
}
