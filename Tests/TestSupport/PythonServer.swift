import Foundation

/// A helper server written in Python, started for one test and stopped after it.
public final class PythonServer: @unchecked Sendable {
    let process = Process()
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
