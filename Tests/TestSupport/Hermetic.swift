import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a `comfyq` started by the tests may see of the user running them: nothing. Its home,
/// configuration, state and cache are folders of this test process, and the server it uses when
/// none is given (`COMFYQ_SERVER`, else ComfyUI's 127.0.0.1:8188, where users have theirs) is a
/// port of this process that refuses connections. A test that wants a servers file, hooks or a
/// queue of its own still sets them on top.
public enum Hermetic {
    /// The variables to give every `comfyq` the tests start, in process or as a child.
    public static let environment: [String: String] = {
        let home = TestFolder.root.appendingPathComponent("home")
        for folder in ["", ".config", ".local/state", ".local/share", ".cache"] {
            try? FileManager.default.createDirectory(at: home.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        return [
            "HOME": home.path,
            "XDG_CONFIG_HOME": home.appendingPathComponent(".config").path,
            "XDG_STATE_HOME": home.appendingPathComponent(".local/state").path,
            "XDG_DATA_HOME": home.appendingPathComponent(".local/share").path,
            "XDG_CACHE_HOME": home.appendingPathComponent(".cache").path,
            "COMFYQ_SERVER": "http://127.0.0.1:\(refusingPort)",
        ]
    }()

    /// This process's environment without what would lead a child to the user's queue or
    /// files, with `environment` over it and then `extra`.
    public static func childEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var variables = ProcessInfo.processInfo.environment
        variables["COMFYQ_DB"] = nil
        return variables.merging(environment) { $1 }.merging(extra) { $1 }
    }

    /// A port on 127.0.0.1 that refuses every connection: bound by this process for its whole
    /// life and never listened on.
    public static let refusingPort: Int = {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard descriptor >= 0, bound else { fatalError("cannot bind a refusing port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }()
}

/// A program a test started: both its outputs are read while it runs (a child that writes more
/// than a pipe holds never blocks), and it is killed and reaped when the test lets go of it, so
/// a failing test leaves nothing running and no pipe open.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    /// What the program wrote, and how many of its two outputs are still open.
    private final class Output: Sendable {
        let state = Mutex((out: Data(), err: Data(), open: 2))
        func withLock<T>(_ body: (inout (out: Data, err: Data, open: Int)) -> T) -> T { state.withLock { body(&$0) } }
    }
    private let output = Output()
    private let ended = DispatchSemaphore(value: 0)

    /// Starts `executable` with `arguments` in `environment` (used as it is).
    public init(_ executable: URL, _ arguments: [String], environment: [String: String], currentDirectory: URL? = nil) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.environment = environment
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        process.terminationHandler = { [ended] _ in ended.signal() }
        try process.run()
        for (pipe, isOut) in [(out, true), (err, false)] {
            let handle = pipe.fileHandleForReading
            Thread.detachNewThread { [output] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    output.withLock { if isOut { $0.out += chunk } else { $0.err += chunk } }
                }
                try? handle.close()
                output.withLock { $0.open -= 1 }
            }
        }
    }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var stdout: String { output.withLock { String(decoding: $0.out, as: UTF8.self) } }
    public var stderr: String { output.withLock { String(decoding: $0.err, as: UTF8.self) } }

    /// Waits for the program to end (and its outputs to close, for at most 5 s more: a process it
    /// started may hold them) and returns its exit status; after `timeout` it is killed and the
    /// error says what it had written.
    @discardableResult
    public func exit(timeout: Double = 300) async throws -> Int32 {
        try await eventually("\(process.executableURL?.lastPathComponent ?? "a child") \(process.arguments ?? []) to end", timeout: timeout, interval: 0.01, describe: { self.tail }) {
            self.process.isRunning ? nil : true
        }
        _ = try? await eventually("its outputs to close", timeout: 5, interval: 0.01) { self.output.withLock { $0.open == 0 } ? true : nil }
        return process.terminationStatus
    }

    /// Waits until what the program wrote to standard output satisfies `condition`.
    @discardableResult
    public func waitForOutput(_ what: String, timeout: Double = 30, _ condition: @escaping @Sendable (String) -> Bool) async throws -> String {
        try await eventually(what, timeout: timeout, describe: { self.tail }) {
            let text = self.stdout
            return condition(text) ? text : nil
        }
    }

    /// The last lines written, for failure messages.
    public var tail: String {
        let lines = (stdout + stderr).split(separator: "\n", omittingEmptySubsequences: false).suffix(20)
        return "exited: \(!process.isRunning); output: " + lines.joined(separator: "\n")
    }

    /// Sends `signal` if the program still runs.
    public func signal(_ signal: Int32) {
        if process.isRunning { kill(process.processIdentifier, signal) }
    }

    /// Ends the program: SIGTERM now, SIGKILL in 5 s if it is still running then.
    public func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let process = process
        DispatchQueue.global().asyncAfter(deadline: .now() + 5) { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
    }

    /// Blocks until the program has ended, for at most `timeout` seconds (then SIGKILL): for the
    /// `defer` blocks that stop servers.
    public func waitUntilExit(timeout: Double = 10) {
        guard process.isRunning else { return }
        if ended.wait(timeout: .now() + timeout) == .timedOut {
            kill(process.processIdentifier, SIGKILL)
            _ = ended.wait(timeout: .now() + 5)
        }
        ended.signal()  // for any other waiter
    }

    /// SIGTERM, as `Process.terminate()`.
    public func terminate() { signal(SIGTERM) }

    deinit { stop() }
}
