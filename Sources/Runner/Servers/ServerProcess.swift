import ComfyUIExtension
import ComfyCore
import Foundation
import Processes

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child's wait status, set once by the thread that reaped it.
final class ExitBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int32?

    func set(_ status: Int32) {
        lock.lock()
        value = status
        lock.unlock()
    }

    var status: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}

/// Where comfyq keeps what it knows of a supervised server:
/// `$XDG_STATE_HOME/comfyq/servers/NAME.log` (and `.lock`, `.pid`); an instance `local/1` lives
/// in `servers/local/1.log`.
public struct ServerFiles: Sendable, Equatable {
    public var base: String

    public init(stateFolder: String, name: String) { base = stateFolder + "/servers/" + name }

    /// `$XDG_STATE_HOME/comfyq`, else `~/.local/state/comfyq`.
    public static func stateFolder(environment: [String: String], home: String) -> String {
        UserFolders.state(environment: environment, home: home)
    }

    public var log: String { base + ".log" }
    public var lock: String { base + ".lock" }
    public var pid: String { base + ".pid" }

    /// The last `count` lines of the log (of its last 16 KB).
    public func logTail(_ count: Int = 10) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: log) else { return [] }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        let start = size > 16384 ? size - 16384 : 0
        try? handle.seek(toOffset: start)
        let data = (try? handle.readToEnd()) ?? Data()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        return Array(lines.suffix(count))
    }
}

/// Held while this process supervises a server, so a second `comfyq run` on the machine uses the
/// running server instead of starting another. An advisory `flock`, released by the kernel when
/// the process dies, however it dies.
public final class ServerLock: @unchecked Sendable {
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    /// The lock, or nil when another process holds it.
    public static func acquire(_ files: ServerFiles) throws -> ServerLock? {
        try FileManager.default.createDirectory(atPath: (files.lock as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let descriptor = open(files.lock, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw Spawn.Failure("cannot open \(files.lock): \(String(cString: strerror(errno)))") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return ServerLock(descriptor: descriptor)
    }

    deinit { close(descriptor) }
}

/// The process of one supervised server: started into its own process group with its output
/// appended to the server's log, watched without blocking, stopped with a signal to the group.
/// Its pid is written to a file, so a later supervisor can find and stop a server that was left
/// running (`keep_running`), or one whose supervisor died.
public final class ServerProcess {
    public let files: ServerFiles
    public private(set) var pid: pid_t?
    /// Our own child (reaped with waitpid), or one found through the pid file (probed with kill 0).
    private var isChild = false
    /// After a graceful stop: SIGKILL to the group if it is still there at this time.
    private var killAt: Double?
    /// Called (on a thread of its own) as soon as a process this one started has exited, so
    /// the supervisor hears of a crash at once rather than at its next look.
    public var onExit: (@Sendable () -> Void)?
    /// The exit status of our child, set by its waiter thread.
    private var exitBoxes: [pid_t: ExitBox] = [:]
    /// How long a graceful stop waits before SIGKILL.
    public var gracePeriod: Double = 10
    /// The log is copied to `.log.1` and emptied past this size.
    public var logLimit: UInt64 = 10 * 1024 * 1024

    public init(files: ServerFiles) { self.files = files }

    /// Starts the server. `environment` is comfyq's own; the definition's `env` is added to it.
    public func launch(_ launch: ServerDefinition.Launch, name: String, environment: [String: String]) throws(Spawn.Failure) {
        do {
            try FileManager.default.createDirectory(atPath: (files.log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        } catch {
            throw Spawn.Failure("cannot create \(files.log): \(error.localizedDescription)")
        }
        let log = open(files.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { throw Spawn.Failure("cannot open \(files.log): \(String(cString: strerror(errno)))") }
        defer { close(log) }
        var merged = environment
        for (key, value) in launch.environment { merged[key] = value }
        if let serve = launch.extensionServe, let folder = launch.cwd {
            // Optional: a server that cannot have it still runs (the log says why).
            do {
                let installed = try ComfyUIExtension.install(comfyUI: folder, serve: serve, version: "")
                Self.write("==== comfyq: its ComfyUI extension is in \(installed) (reaching comfyq serve at \(serve))\n", to: log)
            } catch {
                Self.write("==== comfyq: its ComfyUI extension was not installed: \(error)\n", to: log)
            }
        }
        let words = launch.argv.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        Self.write("==== comfyq: starting \(name): \(words)\(launch.cwd.map { " (in \($0))" } ?? "") at \(Self.timestamp())\n", to: log)
        let started = try Spawn.start(launch.argv, environment: merged, cwd: launch.cwd, output: log)
        // The pid file is how a later run adopts and stops it: a server without one would be
        // left to nobody, so one that cannot be recorded is not left running.
        let identity = Self.startTime(of: started).map { "\(started) \($0)" } ?? "\(started)"
        do {
            try (identity + "\n").write(toFile: files.pid, atomically: true, encoding: .utf8)
        } catch {
            kill(started, SIGKILL)
            var status: Int32 = 0
            while waitpid(started, &status, 0) < 0 && errno == EINTR {}
            Self.write("==== comfyq: stopped it: cannot write \(files.pid)\n", to: log)
            throw Spawn.Failure("cannot write \(files.pid) (\(error.localizedDescription)): without it no later run could adopt or stop the server, so it was stopped")
        }
        pid = started
        isChild = true
        killAt = nil
        // One thread per child, blocked in waitpid: it reaps the child the moment it exits.
        let box = ExitBox()
        exitBoxes[started] = box
        let onExit = onExit
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(started, &status, 0) < 0 && errno == EINTR {}
            box.set(status)
            onExit?()
        }
        waiter.name = "comfyq server \(started)"
        waiter.start()
    }

    /// Takes over a server that a previous supervisor started (and left running, or died
    /// without stopping): true when its pid file names a live process that is the same one.
    public func adopt() -> Bool {
        guard let text = try? String(contentsOfFile: files.pid, encoding: .utf8) else { return false }
        let parts = text.split(whereSeparator: \.isWhitespace)
        guard let first = parts.first, let found = pid_t(first), found > 0 else { return false }
        guard kill(found, 0) == 0 || errno == EPERM else { return false }
        // A pid can be reused after a reboot: the start time must match too, where it is known.
        if parts.count > 1, let recorded = UInt64(parts[1]), let now = Self.startTime(of: found), now != recorded { return false }
        pid = found
        isChild = false
        return true
    }

    /// Whether the process is gone; returns how it ended the first time it is seen gone.
    /// Sends SIGKILL when a graceful stop has waited long enough.
    public func poll(now: Double) -> String? {
        guard let pid else { return nil }
        if isChild {
            if let status = exitBoxes[pid]?.status {
                exitBoxes[pid] = nil
                ended()
                let description = Spawn.describe(status: status)
                append("==== comfyq: the process \(description) at \(Self.timestamp())\n")
                return description
            }
        } else if kill(pid, 0) != 0 && errno == ESRCH {
            ended()
            return "ended"
        }
        if let killAt, now >= killAt {
            kill(-pid, SIGKILL)
            self.killAt = nil
        }
        return nil
    }

    /// SIGTERM to the group, then SIGKILL after `gracePeriod`; or SIGKILL at once.
    public func stop(graceful: Bool, now: Double) {
        guard let pid else { return }
        if graceful {
            kill(-pid, SIGTERM)
            killAt = now + gracePeriod
        } else {
            kill(-pid, SIGKILL)
            killAt = nil
        }
    }

    public var isRunning: Bool { pid != nil }

    /// Copies the log to `.log.1` and empties it when it is past `logLimit`. The server keeps
    /// appending to the same file (O_APPEND), so nothing it writes is lost or misplaced.
    public func rotateLogIfNeeded() {
        guard let size = ((try? FileManager.default.attributesOfItem(atPath: files.log))?[.size] as? NSNumber)?.uint64Value, size > logLimit else {
            return
        }
        let old = files.log + ".1"
        try? FileManager.default.removeItem(atPath: old)
        guard (try? FileManager.default.copyItem(atPath: files.log, toPath: old)) != nil else { return }
        truncate(files.log, 0)
    }

    private func ended() {
        pid = nil
        killAt = nil
        try? FileManager.default.removeItem(atPath: files.pid)
    }

    private func append(_ line: String) {
        let log = open(files.log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard log >= 0 else { return }
        Self.write(line, to: log)
        close(log)
    }

    private static func write(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
    }

    private static func timestamp() -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date())
    }

    /// The process's start time in clock ticks since boot (Linux), to tell a reused pid apart.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state is field 3, starttime field 22.
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }
}
