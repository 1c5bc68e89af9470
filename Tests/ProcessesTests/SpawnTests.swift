import Foundation
import TestSupport
import Processes
import Testing

@Suite struct SpawnTests {
    /// Runs `argv` with its output in a file and returns what it wrote once it has exited.
    static func output(of argv: [String], cwd: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String {
        let path = TestFolder.root.appendingPathComponent("spawn-\(UUID())").path
        let log = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer {
            close(log)
            try? FileManager.default.removeItem(atPath: path)
        }
        let pid = try Spawn.start(argv, environment: environment, cwd: cwd, output: log)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    /// Regression: a server started by `comfyq servers start` kept a socket Foundation's Process
    /// watches for the exit of comfyq itself, so whoever ran comfyq never saw it end.
    @Test func theChildInheritsNoDescriptorsButItsOwn() throws {
        // A descriptor of ours without close-on-exec, as libraries leave them.
        let leaked = open("/dev/null", O_RDONLY)
        defer { close(leaked) }
        let listing = try Self.output(of: ["/bin/sh", "-c", "ls /proc/$$/fd"])
        let descriptors = Set(listing.split(whereSeparator: \.isWhitespace).compactMap { Int($0) })
        #expect(descriptors.isSubset(of: [0, 1, 2, 3, 255]), "\(descriptors.sorted())")  // 3/255: the shell's own
        #expect(!descriptors.contains(Int(leaked)) || leaked <= 3)
    }

    @Test func itRunsInTheFolderItIsGivenAndItsOwnProcessGroup() throws {
        let folder = TestFolder.root.path
        let text = try Self.output(of: ["/bin/sh", "-c", "pwd; echo $$; ps -o pgid= -p $$"], cwd: folder)
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(lines.first == (folder as NSString).resolvingSymlinksInPath || lines.first == folder)
        #expect(lines.count == 3 && lines[1] == lines[2], "\(lines)")  // pid == pgid: a group of its own
    }

    @Test(arguments: [
        (["no-such-program-xyz"], "no-such-program-xyz is not on PATH"),
        (["/opt/none/python"], "no such program: /opt/none/python"),
        ([""], "argv must name a program"),
    ])
    func failuresSayWhy(argv: [String], message: String) {
        #expect(throws: Spawn.Failure.self) { try Spawn.start(argv, environment: ["PATH": "/usr/bin:/bin"], output: 1) }
        do {
            _ = try Spawn.start(argv, environment: ["PATH": "/usr/bin:/bin"], output: 1)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test func aMissingFolderIsNamed() {
        do {
            _ = try Spawn.start(["/bin/true"], environment: [:], cwd: "/no/such/folder", output: 1)
            Issue.record("started in a folder that does not exist")
        } catch {
            #expect(error.description == "no such folder: /no/such/folder")
        }
    }

    @Test(arguments: [(Int32(0), "exited with status 0"), (Int32(1 << 8), "exited with status 1"), (Int32(9), "was killed by signal 9")])
    func statusesReadAsAShellSaysThem(status: Int32, text: String) {
        #expect(Spawn.describe(status: status) == text)
    }
}
