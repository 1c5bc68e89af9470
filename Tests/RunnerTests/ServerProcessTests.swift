import ComfyCore
import Foundation
import Runner
import TestSupport
import Testing

/// The process shell of a supervised server: its log, its pid file, its lock.
@Suite struct ServerProcessTests {
    static func files() throws -> ServerFiles {
        let folder = TestFolder.root.appendingPathComponent("comfyq-server-files-\(UUID())").path
        return ServerFiles(stateFolder: folder, name: "local/1")
    }

    @Test func anInstanceLivesInItsEntrysFolder() {
        let files = ServerFiles(stateFolder: "/state/comfyq", name: "local/1")
        #expect(files.log == "/state/comfyq/servers/local/1.log")
        #expect(files.lock == "/state/comfyq/servers/local/1.lock")
        #expect(files.pid == "/state/comfyq/servers/local/1.pid")
        #expect(ServerFiles.stateFolder(environment: ["XDG_STATE_HOME": "/x"], home: "/home/u") == "/x/comfyq")
        #expect(ServerFiles.stateFolder(environment: [:], home: "/home/u") == "/home/u/.local/state/comfyq")
    }

    @Test func theLogIsCopiedAsideAndEmptiedPastItsLimit() throws {
        let files = try Self.files()
        let process = ServerProcess(files: files)
        process.logLimit = 500  // the log below is 792 bytes
        try FileManager.default.createDirectory(atPath: (files.log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let lines = (1...100).map { "line \($0)" }.joined(separator: "\n") + "\n"
        try lines.write(toFile: files.log, atomically: false, encoding: .utf8)
        process.rotateLogIfNeeded()
        #expect(try String(contentsOfFile: files.log + ".1", encoding: .utf8) == lines)
        #expect(try String(contentsOfFile: files.log, encoding: .utf8).isEmpty)
        process.rotateLogIfNeeded()  // under the limit now: nothing moves
        #expect(try String(contentsOfFile: files.log + ".1", encoding: .utf8) == lines)
    }

    @Test func theTailIsTheLastLines() throws {
        let files = try Self.files()
        try FileManager.default.createDirectory(atPath: (files.log as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try (1...50).map { "line \($0)" }.joined(separator: "\n").write(toFile: files.log, atomically: false, encoding: .utf8)
        #expect(files.logTail(3) == ["line 48", "line 49", "line 50"])
        #expect(ServerFiles(stateFolder: "/nonexistent", name: "x").logTail() == [])
    }

    /// A server whose pid file cannot be written is not left running where no later run could
    /// adopt or stop it: the launch fails, saying why, and the process is gone.
    @Test func aServerWhosePidFileCannotBeWrittenIsStopped() throws {
        let files = try Self.files()
        try FileManager.default.createDirectory(atPath: files.pid, withIntermediateDirectories: true)  // even root cannot write a file there
        let process = ServerProcess(files: files)
        #expect {
            try process.launch(
                ServerDefinition.Launch(argv: ["/bin/sh", "-c", "echo started; exec sleep 60"]), name: "local/1",
                environment: ProcessInfo.processInfo.environment)
        } throws: { error in
            "\(error)".hasPrefix("cannot write \(files.pid) (") && "\(error)".contains("so it was stopped")
        }
        #expect(process.pid == nil)
        let log = try String(contentsOfFile: files.log, encoding: .utf8)
        #expect(log.contains("==== comfyq: stopped it: cannot write \(files.pid)"), "\(log)")
    }

    @Test func aLaunchedServerIsLoggedStoppedAndFoundAgainByItsPidFile() async throws {
        let files = try Self.files()
        let process = ServerProcess(files: files)
        let exited = Exited()
        process.onExit = { exited.mark() }
        try process.launch(
            ServerDefinition.Launch(argv: ["/bin/sh", "-c", "echo started; exec sleep 60"], environment: ["A": "1"]), name: "local/1",
            environment: ProcessInfo.processInfo.environment)
        let pid = try #require(process.pid)
        // A second supervisor (a later run) finds the same process through the pid file.
        let later = ServerProcess(files: files)
        #expect(later.adopt())
        #expect(later.pid == pid)
        #expect(process.poll(now: 0) == nil)  // still running
        try await eventually("the server's first line in its log") {
            ((try? String(contentsOfFile: files.log, encoding: .utf8)) ?? "").contains("\nstarted\n") ? true : nil
        }
        process.stop(graceful: true, now: 0)
        var ended: String?
        for _ in 0..<500 where ended == nil {
            ended = process.poll(now: 0)
            if ended == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(ended == "was killed by signal 15")
        #expect(exited.seen)
        #expect(!FileManager.default.fileExists(atPath: files.pid))
        #expect(!ServerProcess(files: files).adopt())  // gone: nothing to find
        let log = try String(contentsOfFile: files.log, encoding: .utf8)
        #expect(log.hasPrefix("==== comfyq: starting local/1: /bin/sh -c 'echo started; exec sleep 60'"), "\(log)")
        #expect(log.contains("\nstarted\n"))
        #expect(log.contains("==== comfyq: the process was killed by signal 15"))
    }

    @Test func aPidFileOfAnotherProcessIsNotAdopted() throws {
        let files = try Self.files()
        try FileManager.default.createDirectory(atPath: (files.pid as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // This process's pid, with a start time that is not its own: a reused pid.
        try "\(getpid()) 1\n".write(toFile: files.pid, atomically: true, encoding: .utf8)
        #expect(!ServerProcess(files: files).adopt())
        try "garbage\n".write(toFile: files.pid, atomically: true, encoding: .utf8)
        #expect(!ServerProcess(files: files).adopt())
    }

    @Test func oneLockPerServer() throws {
        let files = try Self.files()
        let first = try ServerLock.acquire(files)
        #expect(first != nil)
        // flock locks belong to the open file: a second open in this process is refused too.
        #expect(try ServerLock.acquire(files) == nil)
        _ = first
    }

    final class Exited: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func mark() {
            lock.lock()
            value = true
            lock.unlock()
        }
        var seen: Bool {
            lock.lock()
            defer { lock.unlock() }
            return value
        }
    }
}
